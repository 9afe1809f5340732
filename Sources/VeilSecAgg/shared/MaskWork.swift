import Dispatch
import Foundation
import VeilCore
import VeilCrypto

/// Folds many masks into one vector, on every core: the expanders are derived first (a
/// pairwise one costs an X25519), the jobs split among the workers; then each worker folds
/// every mask into its own run of whole chunks of the vector (``MaskExpander/apply(_:to:from:)``),
/// a few kilobytes at a time, so that each piece stays in its core's cache while all k masks
/// pass over it. Addition in
/// Z_(2^b) is commutative, so the result does not depend on the split.
enum MaskWork {
    /// One mask to fold in. Pairwise jobs carry their key agreement, so that the X25519
    /// work runs on the workers too.
    struct Job {
        let mode: MaskExpander.Mode
        let expander: () -> MaskExpander?

        init(expander: MaskExpander, mode: MaskExpander.Mode) {
            self.mode = mode
            self.expander = { expander }
        }

        init(mode: MaskExpander.Mode, deriving expander: @escaping () -> MaskExpander?) {
            self.mode = mode
            self.expander = expander
        }
    }

    /// The number of workers to use: the active processor count.
    static var availableWorkers: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Folds every job's mask into `vector`.
    /// - Returns: the indices of jobs whose expander could not be derived (their masks are
    ///   not applied); empty on success.
    @discardableResult
    static func apply(_ jobs: [Job], to vector: inout ModularVector, workers: Int = availableWorkers) -> [Int] {
        let expanders = derive(jobs, workers: workers)
        let failed = expanders.indices.filter { expanders[$0] == nil }
        let masks = zip(expanders, jobs).compactMap { expander, job in expander.map { ($0, job.mode) } }
        precondition(masks.allSatisfy { $0.0.bitWidth == vector.bitWidth }, "a mask over another ring")
        let chunk = MaskExpander.elementsPerChunk
        let chunks = (vector.count + chunk - 1) / chunk
        let workers = min(workers, chunks)
        vector.withUnsafeMutableElements { buffer in
            guard workers > 1 else { return MaskExpander.apply(masks, to: buffer, from: 0) }
            // Each worker writes only its own elements; the buffer outlives the parallel section.
            nonisolated(unsafe) let elements = buffer
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let lower = chunks * worker / workers * chunk
                let upper = min(elements.count, chunks * (worker + 1) / workers * chunk)
                MaskExpander.apply(
                    masks, to: UnsafeMutableBufferPointer(rebasing: elements[lower..<upper]), from: lower)
            }
        }
        return failed
    }

    /// Every job's expander (nil where it cannot be derived), derived on `workers` threads.
    private static func derive(_ jobs: [Job], workers: Int) -> [MaskExpander?] {
        let workers = min(workers, jobs.count)
        guard workers > 1 else { return jobs.map { $0.expander() } }
        var expanders = [MaskExpander?](repeating: nil, count: jobs.count)
        expanders.withUnsafeMutableBufferPointer { results in
            // Each worker writes only its own indices; the buffer outlives the parallel section.
            nonisolated(unsafe) let slots = results
            nonisolated(unsafe) let jobs = jobs
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for index in stride(from: worker, to: jobs.count, by: workers) { slots[index] = jobs[index].expander() }
            }
        }
        return expanders
    }
}
