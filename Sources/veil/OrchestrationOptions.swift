import ArgumentParser
import VeilLearning

/// `veil simulate`'s devices and cohort selection (`Specs/orchestration.md`).
struct OrchestrationOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "heterogeneous (the built-in profile) or a device file: each participant's compute speed, link and availability, and simulated seconds per round (Specs/orchestration.md §1).",
            valueName: "FILE|heterogeneous"))
    var devices: String?

    @Option(help: "random or oort (utility-guided, Specs/orchestration.md §2).")
    var selection = "random"

    @Option(help: "Invite this many times the cohort and sum the first cohort-many to arrive (with --devices).")
    var overcommit = 1.0

    @Option(help: "Simulated seconds after which a contribution is not summed (with --devices).")
    var deadline: Double?

    @Option(
        help: ArgumentHelp(
            "The fairness floor: an online participant not selected for G rounds is selected first.", valueName: "G"))
    var maxGap: Int?

    @Option(help: "Report the simulated seconds (with --devices) and rounds to reach this test accuracy.")
    var targetAccuracy: Double?

    @Flag(
        help:
            "Keep 20% of each participant's rows as its own test set and report the spread of the global model's accuracy over the participants (digits and csv)."
    )
    var localTest = false

    func validate() throws {
        guard ["random", "oort"].contains(selection) else {
            throw ValidationError("--selection must be random or oort")
        }
        if let targetAccuracy, !(0...1).contains(targetAccuracy) {
            throw ValidationError("--target-accuracy must be in [0, 1]")
        }
    }

    /// Whether any option asks for more than random selection of everyone online.
    var isSet: Bool { devices != nil || selection != "random" || maxGap != nil || overcommit != 1 || deadline != nil }

    /// Puts the options into `c` (after its clients and seed are set).
    func apply(to c: inout FederatedConfiguration) throws {
        if let devices {
            do { c.devices = try DevicePopulation.load(devices, participants: c.clients, seed: c.seed) } catch {
                throw ValidationError("--devices: \(error.description)")
            }
        }
        c.selection = selection == "oort" ? .oort(OortParameters()) : .random
        c.overcommit = overcommit
        c.deadline = deadline
        c.localTest = localTest
        if let maxGap {
            do { c.fairness = try FairnessFloor(maxGap: maxGap) } catch { throw ValidationError(error.description) }
        }
    }
}
