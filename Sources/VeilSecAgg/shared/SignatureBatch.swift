import Dispatch
import VeilCrypto

/// Ed25519 verifications spread over the cores. A round's share endorsements are many and
/// independent — the server checks one per revealed share, n·(k + 1) in a round
/// (`Specs/secagg.md` §7) — and libsodium has no batch verification, so they are divided
/// among the workers instead.
enum SignatureBatch {
    struct Item: Sendable {
        let key: Ed25519.PublicKey
        let message: [UInt8]
        let signature: [UInt8]
    }

    /// Whether each item's signature verifies, in the items' order.
    static func verify(_ items: [Item], workers: Int = MaskWork.availableWorkers) -> [Bool] {
        let workers = min(workers, items.count)
        guard workers > 1 else { return items.map { $0.key.isValidSignature($0.signature, for: $0.message) } }
        var results = [Bool](repeating: false, count: items.count)
        results.withUnsafeMutableBufferPointer { buffer in
            // Each worker writes only its own stride of the buffer, which outlives the section.
            nonisolated(unsafe) let output = buffer
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for index in stride(from: worker, to: items.count, by: workers) {
                    output[index] = items[index].key.isValidSignature(items[index].signature, for: items[index].message)
                }
            }
        }
        return results
    }
}
