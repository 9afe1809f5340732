import Foundation

/// Runs CPU-bound test work on a thread of its own and waits for it without holding a thread
/// of Swift's cooperative pool.
///
/// A synchronous `@Test` runs on the cooperative pool, which has one thread per core: two
/// minutes of training there leave every asynchronous test of the same run (servers, clocks,
/// processes) without a thread to wake on. Work given to this function runs on a new thread;
/// the test awaits it as it would any other asynchronous result.
public func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
