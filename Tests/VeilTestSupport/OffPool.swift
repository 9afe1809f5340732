import Foundation
import Synchronization

/// Runs CPU-bound test work on a thread of its own and waits for it without holding a thread
/// of Swift's cooperative pool.
///
/// A synchronous `@Test` runs on the cooperative pool, which has one thread per core: two
/// minutes of training there leave every asynchronous test of the same run (servers, clocks,
/// processes) without a thread to wake on. Work given to this function runs on a new thread;
/// the test awaits it as it would any other asynchronous result.
///
/// At most one such thread per core runs at a time; the others wait their turn (without a
/// thread). Unbounded, the fifteen vector-tampering cases alone started fifteen threads at once,
/// and the pool's two threads, competing with them for two cores, got so little time that a
/// coordinator under test did not reach its first sleep in two minutes (CI, stop 24).
public func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    await OffPoolSlots.shared.acquire()
    defer { OffPoolSlots.shared.release() }
    return try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// A counting semaphore whose waiters are suspended tasks, served first come, first served.
final class OffPoolSlots: Sendable {
    static let shared = OffPoolSlots(ProcessInfo.processInfo.activeProcessorCount)

    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(_ slots: Int) { state = Mutex(State(free: max(1, slots))) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { s -> Bool in
                guard s.free > 0 else {
                    s.waiting.append(continuation)
                    return false
                }
                s.free -= 1
                return true
            }
            if granted { continuation.resume() }
        }
    }

    /// Hands the slot to the longest waiter, or frees it.
    func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiting.isEmpty {
                s.free += 1
                return nil
            }
            return s.waiting.removeFirst()
        }
        next?.resume()
    }
}
