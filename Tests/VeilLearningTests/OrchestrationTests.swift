import Foundation
import Testing
import VeilCore
import VeilSecAgg

@testable import VeilLearning

@Suite struct DeviceFileTests {
    static let one =
        #"{"examples_per_second": 100, "downlink_mbps": 8, "uplink_mbps": 2, "round_trip_ms": 50, "availability": 1}"#

    func parse(_ text: String) throws -> DevicePopulation {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("devices-\(UUID().uuidString).json")
        try Data(text.utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        return try DevicePopulation.load(path.path, participants: 3, seed: 0)
    }

    @Test func aFileGivesEachParticipantItsDeviceInTurn() throws {
        let population = try parse(
            #"{"version": 1, "devices": [\#(Self.one), {"examples_per_second": 5, "downlink_mbps": 1, "uplink_mbps": 0.5, "round_trip_ms": 0, "availability": 0.25}]}"#
        )
        #expect(population.devices.count == 2)
        let first = population.device(ofParticipantAt: 0)
        #expect(first.examplesPerSecond == 100)
        #expect(first.downlinkBitsPerSecond == 8e6)
        #expect(first.uplinkBitsPerSecond == 2e6)
        #expect(first.roundTripSeconds == 0.05)
        #expect(population.device(ofParticipantAt: 1).availability == 0.25)
        #expect(population.device(ofParticipantAt: 2) == first)
    }

    @Test(arguments: [
        (#"{"version": 1, "devices": [], "extra": 1}"#, "unknown key \"extra\""),
        (#"{"version": 2, "devices": []}"#, "version must be 1"),
        (#"{"version": 1, "devices": []}"#, "at least one device"),
        (#"{"version": 1}"#, "missing key devices"),
        (
            #"{"version": 1, "devices": [{"examples_per_second": 1, "downlink_mbps": 1, "uplink_mbps": 1, "round_trip_ms": 1, "availabilty": 1}]}"#,
            "devices[0]: unknown key \"availabilty\""
        ),
        (
            #"{"version": 1, "devices": [{"examples_per_second": 1, "downlink_mbps": 1, "uplink_mbps": 1, "round_trip_ms": 1}]}"#,
            "missing key devices[0].availability"
        ),
        (
            #"{"version": 1, "devices": [{"examples_per_second": true, "downlink_mbps": 1, "uplink_mbps": 1, "round_trip_ms": 1, "availability": 1}]}"#,
            "devices[0].examples_per_second must be a number"
        ),
        (
            #"{"version": 1, "devices": [{"examples_per_second": 1, "downlink_mbps": 1, "uplink_mbps": 1, "round_trip_ms": 1, "availability": 0}]}"#,
            "devices[0].availability must be in (0, 1]"
        ),
        (
            #"{"version": 1, "devices": [{"examples_per_second": 0, "downlink_mbps": 1, "uplink_mbps": 1, "round_trip_ms": 1, "availability": 1}]}"#,
            "devices[0].examples_per_second must be in"
        ),
        (
            #"{"version": 1, "devices": [{"examples_per_second": 1, "downlink_mbps": 1, "uplink_mbps": 1e9, "round_trip_ms": 1, "availability": 1}]}"#,
            "devices[0].uplink_mbps must be in"
        ),
        (
            #"{"version": 1, "devices": [{"examples_per_second": 1, "downlink_mbps": 1, "uplink_mbps": 1, "round_trip_ms": -1, "availability": 1}]}"#,
            "devices[0].round_trip_ms must be in"
        ),
        ("[1, 2]", "the top level must be a JSON object"),
        (#"{"version": 1, "devices": {}}"#, "devices must be a list"),
        ("not json", "not JSON"),
    ])
    func aBadFileIsRefusedByName(text: String, expected: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test func aMissingFileIsRefusedWithItsPath() {
        do {
            _ = try DevicePopulation.load("/nonexistent/devices.json", participants: 1, seed: 0)
            Issue.record("a missing file was accepted")
        } catch {
            #expect(error.description.hasPrefix("cannot read the device file /nonexistent/devices.json"))
        }
    }

    @Test func theBuiltInProfileIsReproducibleAndSpreadOverAnOrderOfMagnitude() {
        let a = DevicePopulation.heterogeneous(participants: 1000, seed: 7)
        #expect(a == DevicePopulation.heterogeneous(participants: 1000, seed: 7))
        #expect(a != DevicePopulation.heterogeneous(participants: 1000, seed: 8))
        func spread(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted[949] / sorted[49]
        }
        // §1.2: 5th–95th percentile spreads of 13.9× (compute) and 26.8× (links), within sampling error.
        #expect((9...20).contains(spread(a.devices.map(\.examplesPerSecond))))
        #expect((17...40).contains(spread(a.devices.map(\.downlinkBitsPerSecond))))
        #expect((17...40).contains(spread(a.devices.map(\.uplinkBitsPerSecond))))
        #expect(a.devices.allSatisfy { (0.5...1).contains($0.availability) })
        let medianCompute = a.devices.map(\.examplesPerSecond).sorted()[500]
        #expect((160...250).contains(medianCompute))
    }
}

@Suite struct SelectionTests {
    @Test func jainsIndex() {
        let table: [([Double], Double)] = [
            ([], 1), ([0, 0], 1), ([1, 1, 1], 1), ([1, 0, 0], 1.0 / 3), ([2, 1], 0.9), ([3, 1, 0, 0], 0.4),
        ]
        for (values, expected) in table { #expect(abs(jainIndex(values) - expected) < 1e-12, "\(values)") }
    }

    @Test func theFloorInvitesTheLongestWaitingFirst() throws {
        let floor = try FairnessFloor(maxGap: 3)
        // Round 10: 0 waited since 2, 1 since 8, 2 never, 3 since 6, 4 since 7 (gap 3).
        let last = [2, 8, 0, 6, 7]
        #expect(floor.due([0, 1, 2, 3, 4], lastSelected: { last[$0] }, round: 10, count: 5) == [2, 0, 3])
        #expect(floor.due([0, 1, 2, 3, 4], lastSelected: { last[$0] }, round: 10, count: 2) == [2, 0])
        #expect(floor.due([1, 3, 4], lastSelected: { last[$0] }, round: 10, count: 5) == [3])
        #expect(throws: LearningError.self) { try FairnessFloor(maxGap: 0) }
    }

    @Test func oortExploresFirstThenPrefersFastParticipantsWithHighLoss() {
        var parameters = OortParameters()
        parameters.exploration = 0
        parameters.explorationFloor = 0
        var oort = OortSelector(parameters: parameters)
        var g = Xoshiro256(seed: 1)
        // Nothing tried: everyone is explored, whatever ε.
        let first = oort.select(Array(0..<10), count: 4, round: 1, generator: &g)
        #expect(first.count == 4 && Set(first).count == 4)
        // Participants 0…9 tried: even ones fast (1 s), odd ones slow (100 s); loss rises with the index.
        oort.observe(
            round: 1,
            (0..<10).map {
                ParticipationObservation(
                    participant: $0, completed: true, seconds: $0 % 2 == 0 ? 1 : 100, loss: Double($0 + 1), examples: 10
                )
            })
        var counts = [Int](repeating: 0, count: 10)
        for round in 2...201 {
            for index in oort.select(Array(0..<10), count: 2, round: round, generator: &g) { counts[index] += 1 }
        }
        // The penalty (T/t)^2 = 10⁻⁴ makes every slow participant lose to any fast one, and among
        // the fast the highest losses (8, 6) pass the cut-off 0.95 of the second best.
        #expect(counts[8] == 200 && counts[6] == 200, "\(counts)")
        #expect(counts.enumerated().allSatisfy { $0.offset == 8 || $0.offset == 6 || $0.element == 0 }, "\(counts)")
    }

    @Test func oortSamplesByScoreAmongThoseAboveTheCutOff() {
        var parameters = OortParameters()
        parameters.exploration = 0
        parameters.explorationFloor = 0
        parameters.cutoff = 0.5
        parameters.staleness = 0
        var oort = OortSelector(parameters: parameters)
        oort.observe(
            round: 1,
            [(0, 0.0), (1, 1), (2, 0.9), (3, 0.8)].map {
                ParticipationObservation(participant: $0.0, completed: true, seconds: 1, loss: $0.1, examples: 1)
            })
        var g = Xoshiro256(seed: 2)
        var counts = [Int](repeating: 0, count: 4)
        for round in 2...2001 {
            for index in oort.select([0, 1, 2, 3], count: 1, round: round, generator: &g) { counts[index] += 1 }
        }
        // Scores 0, 1, 0.9, 0.8 (min–max scaled): 0 is below half the best and never drawn; the
        // others in proportion to their scores, 1 : 0.9 : 0.8 of 2,000 draws ≈ 741, 667, 593.
        #expect(counts[0] == 0)
        #expect(abs(counts[1] - 741) < 80 && abs(counts[2] - 667) < 80 && abs(counts[3] - 593) < 80, "\(counts)")
    }

    @Test func thePacerRaisesThePreferredDurationWhenUtilityFalls() {
        var parameters = OortParameters()
        parameters.pacerWindow = 2
        parameters.pacerPercentile = 50
        parameters.pacerStep = 10
        var oort = OortSelector(parameters: parameters)
        #expect(oort.preferredDuration() == nil)
        func round(_ r: Int, loss: Double) {
            oort.observe(
                round: r,
                [ParticipationObservation(participant: r, completed: true, seconds: Double(r), loss: loss, examples: 1)]
            )
        }
        round(1, loss: 10)
        round(2, loss: 10)
        // Nearest rank: the 50th percentile of {1, 2} is the first.
        #expect(oort.preferredDuration() == 1)
        round(3, loss: 1)
        #expect(oort.percentile == 50)
        round(4, loss: 1)  // rounds 3–4 sum to 2 < 20 of rounds 1–2
        #expect(oort.percentile == 60)
        // The 60th percentile of {1, 2, 3, 4}: ⌈2.4⌉ = the third.
        #expect(oort.preferredDuration() == 3)
        round(5, loss: 1)
        round(6, loss: 1)  // 2, not below 2
        #expect(oort.percentile == 60)
        round(7, loss: 0.5)
        round(8, loss: 0.5)  // 1 < 2
        #expect(oort.percentile == 70)
    }

    @Test func aParticipantSlowerThanThePreferredDurationIsPenalised() {
        var parameters = OortParameters()
        parameters.pacerPercentile = 50
        var oort = OortSelector(parameters: parameters)
        oort.observe(
            round: 1,
            [(0, 1.0, 2.0), (1, 2, 4), (2, 8, 4)].map {
                ParticipationObservation(participant: $0.0, completed: true, seconds: $0.1, loss: $0.2, examples: 1)
            })
        // P = the 2nd smallest of {1, 2, 8} = 2; utilities 2, 4, 4 scale to 0, 1, 1; at round 3
        // the staleness bonus is √(0.1 · ln 3 / 1); participant 2 (8 s) is multiplied by (2/8)².
        let scores = oort.scores(of: [0, 1, 2], round: 3)
        let bonus = (0.1 * log(3.0)).squareRoot()
        #expect(abs(scores[0]! - bonus) < 1e-12)
        #expect(abs(scores[1]! - (1 + bonus)) < 1e-12)
        #expect(abs(scores[2]! - (1 + bonus) / 16) < 1e-12)
    }

    @Test func oortExplorationDecaysToItsFloor() {
        let oort = OortSelector()
        #expect(abs(oort.exploration(at: 1) - 0.9) < 1e-12)
        #expect(abs(oort.exploration(at: 2) - 0.882) < 1e-12)
        #expect(oort.exploration(at: 200) == 0.2)
    }
}

@Suite struct SimulatedTimeTests {
    func configuration(devices: String, rounds: Int = 5) throws -> FederatedConfiguration {
        var c = FederatedConfiguration()
        c.rounds = rounds
        c.evaluateEvery = 1
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("devices-\(UUID().uuidString).json")
        try Data(devices.utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        c.devices = try DevicePopulation.load(path.path, participants: c.clients, seed: 0)
        return c
    }

    static let alwaysOnline =
        #"{"version": 1, "devices": [{"examples_per_second": 100, "downlink_mbps": 8, "uplink_mbps": 2, "round_trip_ms": 50, "availability": 1}]}"#

    @Test func devicesThatAreAlwaysOnlineChangeTheClockNotTheLearning() throws {
        var plain = PlainSum()
        var without = FederatedConfiguration()
        without.rounds = 5
        let reference = try FederatedSimulation(configuration: without).run(secureSum: &plain)
        let c = try configuration(devices: Self.alwaysOnline)
        let simulation = try FederatedSimulation(configuration: c)
        let timed = try simulation.run(secureSum: &plain)
        #expect(timed.map(\.accuracy) == reference.map(\.accuracy))
        #expect(reference.allSatisfy { $0.simulatedSeconds == nil })
        // §1.3 by hand, plain sum, one exchange: every participant of the 10 takes part; the
        // round lasts as long as the participant with the most examples.
        let d = simulation.model.parameterCount
        let n = Double(simulation.data.clients.map(\.count).max()!)
        let payload = d + 1  // FedAvg's payload: the weighted update and its weight
        let expected = Double(64 * d) / 8e6 + n / 100 + Double(8 * payload * 8) / 2e6 + 0.05
        for report in timed { #expect(abs(report.simulatedSeconds! - expected) < 1e-9, "\(report.simulatedSeconds!)") }
    }

    @Test func secAggsUploadCostGrowsWithTheCohortAndTakesFiveExchanges() throws {
        let cost = SecAggSecureSum().uploadCost(elements: 100, bitWidth: try BitWidth(32), cohort: 11)
        #expect(cost == UploadCost(bytes: 400 + 128 + 1200 + 64 + 400, exchanges: 5))
        #expect(PlainSum().uploadCost(elements: 100, bitWidth: try BitWidth(20), cohort: 11).bytes == 300)
    }

    @Test func aDeadlineNobodyMeetsEndsTheRoundWithoutASum() throws {
        var c = try configuration(devices: Self.alwaysOnline, rounds: 2)
        c.deadline = 0.01
        var plain = PlainSum()
        let reports = try FederatedSimulation(configuration: c).run(secureSum: &plain)
        #expect(reports.allSatisfy { $0.survivors == 0 && $0.selected == 10 && $0.simulatedSeconds == 0.01 })
    }

    @Test func overcommitmentSumsTheFirstToArrive() throws {
        var c = try configuration(devices: Self.alwaysOnline, rounds: 3)
        c.clients = 20
        c.fraction = 0.25
        c.overcommit = 1.6
        var plain = PlainSum()
        let simulation = try FederatedSimulation(configuration: c)
        let reports = try simulation.run(secureSum: &plain)
        for report in reports {
            #expect(report.selected == 8 && report.survivors == 5)
            // Same device for all: the five with the fewest examples arrive first, and the
            // round ends at the fifth (§1.3, plain sum: one exchange).
            let d = simulation.model.parameterCount
            let fixed = Double(64 * d) / 8e6 + Double(8 * (d + 1) * 8) / 2e6 + 0.05
            let sizes = report.invited.map { simulation.data.clients[$0].count }.sorted()
            #expect(abs(report.simulatedSeconds! - (fixed + Double(sizes[4]) / 100)) < 1e-9)
        }
    }

    @Test func availabilityIsDrawnPerRoundAndParticipant() throws {
        var c = FederatedConfiguration()
        c.clients = 50
        c.fraction = 1
        c.rounds = 20
        c.evaluateEvery = 20
        c.devices = DevicePopulation.heterogeneous(participants: 50, seed: 3)
        c.seed = 3
        var plain = PlainSum()
        let reports = try FederatedSimulation(configuration: c).run(secureSum: &plain)
        // Everyone online is invited (the cohort is all 50): the invitations are exactly the
        // coins of §1.3, drawn from the stream (availability, r, k).
        for report in reports {
            let online = (0..<50).filter { index in
                var coin = Xoshiro256(seed: 3, purpose: .availability, round: report.round, participant: index + 1)
                return coin.unit() < c.devices!.device(ofParticipantAt: index).availability
            }
            #expect(report.invited == online, "round \(report.round)")
        }
        #expect(Set(reports.map(\.selected)).count > 1)
        #expect(reports.allSatisfy { $0.survivors == $0.selected })
    }

    @Test func theFloorBoundsEveryParticipantsWait() throws {
        var c = try configuration(devices: Self.alwaysOnline, rounds: 40)
        c.clients = 20
        c.fraction = 0.25
        c.selection = .oort(OortParameters())
        c.fairness = try FairnessFloor(maxGap: 9)
        var plain = PlainSum()
        let reports = try FederatedSimulation(configuration: c).run(secureSum: &plain)
        // Invited at the latest when r − L = 10, so no two invitations (counting round 0 and the
        // round after the last) are more than 10 rounds apart: five places a round leave room.
        for participant in 0..<20 {
            let rounds = [0] + reports.filter { $0.invited.contains(participant) }.map(\.round) + [41]
            let longest = zip(rounds.dropFirst(), rounds).map { $0 - $1 }.max()!
            #expect(longest <= 10, "participant \(participant) waited \(longest) rounds")
        }
        let summary = OrchestrationSummary(reports: reports, participants: 20, targetAccuracy: nil)
        #expect(summary.participation.allSatisfy { $0 >= 4 })
    }

    @Test func orchestrationRefusesWhatItCannotHonour() throws {
        var c = FederatedConfiguration()
        c.overcommit = 1.5
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }
        c = FederatedConfiguration()
        c.selection = .oort(OortParameters())
        c.privacy = PrivacyConfiguration(mode: .central, epsilon: 1, delta: 1e-5, clip: 1)
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }
        c = FederatedConfiguration()
        c.devices = DevicePopulation.heterogeneous(participants: 10, seed: 0)
        c.algorithm = .fedBuff(buffer: 2, concurrency: 4)
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }
        var p = OortParameters()
        p.cutoff = 0
        c = FederatedConfiguration()
        c.selection = .oort(p)
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }
    }
}

/// `Specs/orchestration.md` §6 and §7, by hand.
@Suite struct ReputationAndCreditTests {
    let parameters = ReputationParameters()

    func score(_ events: [(ParticipationOutcome, Double, Int)], at round: Int) -> Double {
        var reputation = Reputation()
        for (outcome, timeliness, r) in events {
            reputation.record(outcome, timeliness: timeliness, round: r, parameters: parameters)
        }
        return reputation.score(at: round, parameters: parameters)
    }

    @Test func theScoreIsTheDecayedBetaReputation() {
        #expect(score([], at: 7) == 0.5)
        // (1 + P) / (2 + P + N), P += 1/2 + τ/2.
        #expect(abs(score([(.contributed, 1, 1)], at: 1) - 2.0 / 3) < 1e-15)
        #expect(abs(score([(.contributed, 0, 1)], at: 1) - 1.5 / 2.5) < 1e-15)
        #expect(abs(score([(.contributed, 0.5, 1)], at: 1) - 1.75 / 2.75) < 1e-15)
        #expect(abs(score([(.dropped, 1, 1)], at: 1) - 1.0 / 3) < 1e-15)
        #expect(abs(score([(.declined, 1, 1)], at: 1) - 1.0 / 2.5) < 1e-15)
        #expect(abs(score([(.faulted, 1, 1)], at: 1) - 1.0 / 6) < 1e-15)
        #expect(score([(.excused, 1, 1)], at: 1) == 0.5)
        // A timeliness outside [0, 1], or not a number, is clamped.
        #expect(score([(.contributed, 7, 1)], at: 1) == score([(.contributed, 1, 1)], at: 1))
        #expect(score([(.contributed, .nan, 1)], at: 1) == score([(.contributed, 0, 1)], at: 1))
        // One half-life (20 rounds) halves the evidence: P = 1 → 1/2.
        #expect(abs(score([(.contributed, 1, 1)], at: 21) - 1.5 / 2.5) < 1e-15)
        // Two contributions 20 rounds apart: P = 1·(1/2) + 1 = 1.5 at round 21.
        #expect(abs(score([(.contributed, 1, 1), (.contributed, 1, 21)], at: 21) - 2.5 / 3.5) < 1e-15)
        // A fault 40 rounds ago weighs 4/4 = 1, as much as a fresh drop.
        #expect(abs(score([(.faulted, 1, 1)], at: 41) - score([(.dropped, 1, 1)], at: 1)) < 1e-12)
        // Long unseen, anyone returns to 1/2.
        #expect(abs(score([(.faulted, 1, 1)], at: 2001) - 0.5) < 1e-12)
    }

    @Test func countsAreKeptUndecayed() {
        var reputation = Reputation()
        for (outcome, round) in [(ParticipationOutcome.contributed, 1), (.dropped, 2), (.contributed, 90)] {
            reputation.record(outcome, timeliness: 1, round: round, parameters: parameters)
        }
        #expect(reputation.counts == [.contributed: 2, .dropped: 1])
    }

    @Test func badParametersAreRefused() {
        var p = ReputationParameters()
        p.halfLife = 0
        #expect(throws: LearningError.self) { try p.validate() }
        p = ReputationParameters()
        p.faulted = -1
        #expect(throws: LearningError.self) { try p.validate() }
        #expect(throws: Never.self) { try ReputationParameters().validate() }
    }

    @Test func theCreditRule() {
        #expect(CreditRule.credits(reputation: 0.5, examples: 100, meanExamples: 100) == 0.5)
        #expect(CreditRule.credits(reputation: 0.5, examples: 150, meanExamples: 100) == 0.5 * 1.25)
        // Overstating the count gains at most ×1.5 over the mean.
        #expect(CreditRule.credits(reputation: 0.5, examples: 1_000_000, meanExamples: 100) == 0.75)
        #expect(CreditRule.credits(reputation: 0.5, examples: 0, meanExamples: 100) == 0.25)
        #expect(CreditRule.credits(reputation: 0.8, examples: 0, meanExamples: 0) == 0.8)
        #expect(CreditRule.factor(marginal: nil) == 1)
        #expect(CreditRule.factor(marginal: .nan) == 1)
        #expect(abs(CreditRule.factor(marginal: 0.01) - 1.1) < 1e-15)
        #expect(abs(CreditRule.factor(marginal: -0.02) - 0.8) < 1e-15)
        #expect(CreditRule.factor(marginal: 0.3) == 1.5)
        #expect(CreditRule.factor(marginal: -1) == 0.5)
    }

    @Test func theMarginalEstimateIsTheDifferenceOfMeanGains() {
        let accuracy = [0.50, 0.53, 0.54, 0.58, 0.59, 0.61, 0.61]
        // a is in rounds 1, 3, 5 (gains 0.03, 0.04, 0.02); b in rounds 1, 2; c in every round.
        let members: [Set<String>] = [["a", "b", "c"], ["b", "c"], ["a", "c"], ["c"], ["a", "c"], ["c"]]
        let rounds = members.indices.map {
            CohortRound(
                round: $0 + 1, contributors: members[$0], accuracyBefore: accuracy[$0], accuracyAfter: accuracy[$0 + 1])
        }
        let estimates = MarginalEstimate.estimate(rounds, participants: ["a", "b", "c", "d"])
        // a: mean(0.03, 0.04, 0.02) − mean(0.01, 0.01, 0.00) = 0.03 − 0.00667.
        #expect(abs(estimates["a"]!.marginal! - (0.03 - 0.02 / 3)) < 1e-12)
        #expect(estimates["a"]!.roundsWith == 3 && estimates["a"]!.roundsWithout == 3)
        // b has only two rounds with it, c none without, d none with: no estimate.
        #expect(estimates["b"]!.marginal == nil && estimates["b"]!.roundsWith == 2)
        #expect(estimates["c"]!.marginal == nil && estimates["c"]!.roundsWithout == 0)
        #expect(estimates["d"]!.marginal == nil && estimates["d"]!.roundsWith == 0)
    }

    @Test func weightsMultiplyOortScores() {
        var oort = OortSelector()
        oort.observe(
            round: 1,
            (0..<4).map {
                ParticipationObservation(participant: $0, completed: true, seconds: 1, loss: 1, examples: 10)
            })
        let plain = oort.scores(of: [0, 1, 2, 3], round: 2)
        let weighted = oort.scores(of: [0, 1, 2, 3], round: 2, weights: [1: 0.25, 3: 0])
        #expect(weighted[0] == plain[0] && weighted[2] == plain[2])
        #expect(weighted[1] == plain[1]! * 0.25 && weighted[3] == 0)
        // A weight of 0 is never drawn while others are admitted.
        var generator = Xoshiro256(seed: 1, purpose: .cohortSelection)
        for round in 2..<40 {
            let chosen = oort.select(
                [0, 1, 2, 3], count: 2, round: round, weights: [3: 0], generator: &generator)
            #expect(!chosen.contains(3))
        }
    }
}

/// `--local-test`: the spread of the global model's accuracy over the participants' own rows.
@Suite struct AccuracySpreadTests {
    @Test func theSpreadSummarisesAsQFedAvgReportsIt() throws {
        let values = (1...20).map { Double($0) / 20 }
        let spread = try #require(AccuracySpread(values))
        #expect(abs(spread.mean - 10.5 / 20) < 1e-15)
        // ⌈20/10⌉ = 2 on each side.
        #expect(abs(spread.worst10 - 1.5 / 20) < 1e-15 && abs(spread.best10 - 19.5 / 20) < 1e-15)
        #expect(abs(spread.standardDeviation - (399.0 / 12).squareRoot() / 20) < 1e-12)
        // Eleven values: ⌈11/10⌉ = 2.
        let eleven = try #require(AccuracySpread([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5]))
        #expect(eleven.worst10 == 0.25 && eleven.best10 == 1)
        #expect(AccuracySpread([]) == nil)
        #expect(
            AccuracySpread([0.7]).map { [$0.mean, $0.worst10, $0.best10, $0.standardDeviation] } == [0.7, 0.7, 0.7, 0])
    }

    @Test func localTestSetsAreKeptAndTheSpreadIsReported() throws {
        var c = FederatedConfiguration()
        c.clients = 8
        c.rounds = 3
        c.localTest = true
        let simulation = try FederatedSimulation(configuration: c)
        #expect(simulation.data.clientTests.count == 8)
        for (train, test) in zip(simulation.data.clients, simulation.data.clientTests) {
            let share = Double(test.count) / Double(train.count + test.count)
            #expect(share > 0.1 && share < 0.35, "\(train.count) + \(test.count)")
        }
        var plain = PlainSum()
        let reports = try simulation.run(secureSum: &plain)
        let spread = try #require(reports.last?.participantAccuracy)
        #expect(spread.worst10 <= spread.mean && spread.mean <= spread.best10 && spread.standardDeviation >= 0)
        #expect(spread.mean > 0.5)

        c.localTest = false
        let without = try FederatedSimulation(configuration: c)
        #expect(without.data.clientTests.isEmpty)
        var again = PlainSum()
        #expect(try without.run(secureSum: &again).allSatisfy { $0.participantAccuracy == nil })

        c.localTest = true
        c.dataset = .synthetic(alpha: 1, beta: 1)
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }
    }
}
