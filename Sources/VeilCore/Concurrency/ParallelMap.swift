import Dispatch
import Foundation

extension Array where Element: Sendable {
    /// `map` on every core: `transform` runs concurrently on the elements, results in order.
    /// For heavy, independent work (one Paillier encryption per element); the first error
    /// thrown wins.
    public func parallelMap<T: Sendable>(_ transform: @Sendable (Element) throws -> T) throws -> [T] {
        guard count > 1 else { return try map(transform) }
        let results = UnsafeMutableBufferPointer<Result<T, any Error>?>.allocate(capacity: count)
        results.initialize(repeating: nil)
        defer {
            results.deinitialize()
            results.deallocate()
        }
        nonisolated(unsafe) let slots = results  // each index is written by exactly one iteration
        let items = self
        DispatchQueue.concurrentPerform(iterations: count) { i in
            slots[i] = Result { try transform(items[i]) }
        }
        // concurrentPerform returns after every iteration has written its slot.
        return try results.map { try $0!.get() }
    }
}
