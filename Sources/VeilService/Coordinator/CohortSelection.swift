import Foundation
import VeilCore
import VeilWire

/// Picks a round's cohort from the connected participants (`Specs/wire.md` §5).
struct CohortSelection {
    struct Candidate {
        let id: String
        let resources: Veil_V1_Resources
        let roundsCompleted: Int
    }

    /// Participants below this battery level (and not on mains power) are not picked by the
    /// resource-aware strategy.
    static let lowBattery = 0.2

    static func select(
        _ candidates: [Candidate], count: Int, strategy: SelectionStrategy, generator: inout some RandomNumberGenerator
    ) -> [String] {
        let ordered = candidates.sorted { $0.id < $1.id }
        switch strategy {
        case .random, .oort:
            // The book draws Oort cohorts itself (OrchestrationBook.select); never reached with it.
            var ids = ordered.map(\.id)
            generator.shuffle(&ids)
            return Array(ids.prefix(count)).sorted()
        case .roundRobin:
            return ordered.sorted { ($0.roundsCompleted, $0.id) < ($1.roundsCompleted, $1.id) }.prefix(count).map(\.id)
                .sorted()
        case .resourceAware:
            // Self-reported resources are not verifiable: they may tilt the odds, never decide.
            // Reports are clamped to plausible ranges and each eligible participant is drawn
            // with weight 1 + s/4 ∈ [1, 2] (weighted sampling without replacement, Efraimidis
            // and Spirakis 2006): one that overstates everything at most doubles its chance,
            // and cannot put itself — or a group of colluders — into every cohort.
            let eligible = ordered.filter { $0.resources.battery < 0 || $0.resources.battery >= lowBattery }
            let reports = eligible.map { Clamped($0.resources) }
            let maxCores = reports.map(\.cores).max() ?? 1
            let maxMemory = reports.map(\.memory).max() ?? 1
            let maxLink = reports.map(\.link).max() ?? 1
            let keyed = zip(eligible, reports).map { candidate, r -> (key: Double, id: String) in
                let score =
                    r.cores / max(maxCores, 1) + r.memory / max(maxMemory, 1) + r.battery + r.link / max(maxLink, 1)
                let weight = 1 + score / 4
                let u = (Double(generator.next() >> 11) + 0.5) * 0x1p-53  // uniform in (0, 1)
                return (pow(u, 1 / weight), candidate.id)
            }
            return keyed.sorted { ($0.key, $1.id) > ($1.key, $0.id) }.prefix(count).map(\.id).sorted()
        }
    }

    /// A report within plausible bounds: 1…1024 cores, at most 16 TiB of memory and
    /// 100 Gb/s of link, battery in [0, 1] (1 on mains power).
    struct Clamped {
        let cores: Double
        let memory: Double
        let battery: Double
        let link: Double

        init(_ r: Veil_V1_Resources) {
            cores = Double(min(max(r.cores, 1), 1024))
            memory = Double(min(r.memoryBytes, 1 << 44))
            battery = r.battery < 0 ? 1 : min(max(r.battery.isFinite ? r.battery : 0, 0), 1)
            link = Double(min(r.linkBitsPerSecond, 100_000_000_000))
        }
    }
}
