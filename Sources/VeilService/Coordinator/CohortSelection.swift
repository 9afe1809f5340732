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
        case .random:
            var ids = ordered.map(\.id)
            generator.shuffle(&ids)
            return Array(ids.prefix(count)).sorted()
        case .roundRobin:
            return ordered.sorted { ($0.roundsCompleted, $0.id) < ($1.roundsCompleted, $1.id) }.prefix(count).map(\.id)
                .sorted()
        case .resourceAware:
            let eligible = ordered.filter { $0.resources.battery < 0 || $0.resources.battery >= lowBattery }
            let maxCores = Double(eligible.map(\.resources.cores).max() ?? 1)
            let maxMemory = Double(eligible.map(\.resources.memoryBytes).max() ?? 1)
            let maxLink = Double(eligible.map(\.resources.linkBitsPerSecond).max() ?? 1)
            func score(_ c: Candidate) -> Double {
                let r = c.resources
                let battery = r.battery < 0 ? 1 : r.battery
                return Double(r.cores) / max(maxCores, 1) + Double(r.memoryBytes) / max(maxMemory, 1) + battery
                    + Double(r.linkBitsPerSecond) / max(maxLink, 1)
            }
            return eligible.sorted { (score($0), $1.id) > (score($1), $0.id) }.prefix(count).map(\.id).sorted()
        }
    }
}
