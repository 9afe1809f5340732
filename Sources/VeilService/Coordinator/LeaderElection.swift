import Foundation
import Synchronization

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
    /// once it has not been renewed for its whole length — the store unreachable, or a renewal
    /// stuck (the writers' lock held elsewhere): by then a standby may lead, and this process
    /// must stop.
    public func keepLeading(_ lease: CoordinatorStore.Lease) async throws {
        var lease = lease
        let clock = ContinuousClock()
        // Counted from before each renewal was asked for: never later than the store's own end.
        var validUntil = clock.now + .seconds(seconds)
        while true {
            try await Task.sleep(for: .seconds(seconds / 3))
            let asked = clock.now
            switch await renewal(of: lease, before: validUntil, clock: clock) {
            case .renewed(let renewed):
                lease = renewed
                validUntil = asked + .seconds(seconds)
            case .failed(let lost as LeadershipLost):
                throw lost
            case .failed:
                if clock.now >= validUntil { throw LeadershipLost(epoch: lease.epoch, current: nil, holder: nil) }
            case .timedOut:
                throw LeadershipLost(epoch: lease.epoch, current: nil, holder: nil)
            }
        }
    }

    private enum Renewal: Sendable {
        case renewed(CoordinatorStore.Lease)
        case failed(any Error)
        case timedOut
    }

    /// One renewal, raced against the lease's end: the store's call blocks its thread, so it
    /// runs detached, and is abandoned (not awaited) when the lease ends first.
    private func renewal(
        of lease: CoordinatorStore.Lease, before end: ContinuousClock.Instant, clock: ContinuousClock
    ) async -> Renewal {
        let (store, seconds) = (store, self.seconds)
        let answered = Mutex(false)
        return await withCheckedContinuation { continuation in
            let answer: @Sendable (Renewal) -> Void = { outcome in
                let first = answered.withLock { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: outcome) }
            }
            Task.detached {
                do { answer(.renewed(try store.renewLeadership(lease, seconds: seconds))) } catch {
                    answer(.failed(error))
                }
            }
            Task.detached {
                try? await Task.sleep(until: end, clock: clock)
                answer(.timedOut)
            }
        }
    }
}
