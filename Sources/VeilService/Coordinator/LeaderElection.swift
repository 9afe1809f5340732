import Foundation

/// One `veil serve` among several on one PostgreSQL store (`Specs/wire.md` §6.2): it waits as
/// a standby until it can take the lease, then leads — renewing the lease a third of its
/// length at a time — until the federation ends or the lease is lost.
public struct LeaderElection: Sendable {
    public let store: CoordinatorStore
    public let holder: String
    /// The lease's length; it is renewed every third of it.
    public let seconds: Double

    public init(store: CoordinatorStore, holder: String, seconds: Double) {
        self.store = store
        self.holder = holder
        self.seconds = seconds
    }

    /// This process's name as a holder: its host and process id.
    public static var defaultHolder: String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Waits until this holder leads, asking every third of a lease; `waiting` is told who
    /// leads, once per epoch. A store that cannot be reached is asked again a third of a lease
    /// later (`unreachable` is told why, once per outage): a standby outlives a database restart.
    public func lead(
        waiting: @Sendable (CoordinatorStore.Lease, Double) -> Void, unreachable: @Sendable (any Error) -> Void
    ) async throws -> CoordinatorStore.Lease {
        var lastHeld: Int? = nil
        var reachable = true
        while true {
            let attempt: CoordinatorStore.LeaseAttempt
            do {
                attempt = try store.acquireLeadership(holder: holder, seconds: seconds)
                reachable = true
            } catch {
                if reachable { unreachable(error) }
                reachable = false
                try await Task.sleep(for: .seconds(seconds / 3))
                continue
            }
            switch attempt {
            case .leading(let lease):
                return lease
            case .held(let lease, let remaining):
                if lastHeld != lease.epoch { waiting(lease, remaining) }
                lastHeld = lease.epoch
                try await Task.sleep(for: .seconds(min(seconds / 3, max(remaining, 0.05))))
            }
        }
    }

    /// Renews `lease` until cancelled; throws ``LeadershipLost`` once another epoch holds it, or
    /// once it has not been renewed for its whole length (the store unreachable): by then a
    /// standby may lead, and this process must stop.
    public func keepLeading(_ lease: CoordinatorStore.Lease) async throws {
        var lease = lease
        let clock = ContinuousClock()
        // Counted from before each renewal was asked for: never later than the store's own end.
        var validUntil = clock.now + .seconds(seconds)
        while true {
            try await Task.sleep(for: .seconds(seconds / 3))
            let asked = clock.now
            do {
                lease = try store.renewLeadership(lease, seconds: seconds)
                validUntil = asked + .seconds(seconds)
            } catch let lost as LeadershipLost {
                throw lost
            } catch {
                if clock.now >= validUntil { throw LeadershipLost(epoch: lease.epoch, current: nil, holder: nil) }
            }
        }
    }
}
