import Dispatch
import Foundation
import VeilCore
import VeilCrypto

/// Folds many masks into one vector, on every core: each worker accumulates a share of the
/// masks into its own vector, and the partial vectors are added at the end. Addition in
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
        let workers = min(workers, jobs.count)
        guard workers > 1 else {
            var failed: [Int] = []
            vector.withUnsafeMutableElements { buffer in
                for (index, job) in jobs.enumerated() {
                    guard let expander = job.expander() else {
                        failed.append(index)
                        continue
                    }
                    expander.apply(job.mode, to: buffer)
                }
            }
            return failed
        }
        var failures = [[Int]](repeating: [], count: workers)
        var partials = (1..<workers).map { _ in ModularVector(zeros: vector.count, bitWidth: vector.bitWidth) }
        vector.withUnsafeMutableElements { main in
            partials.withUnsafeMutableBufferPointer { extra in
                failures.withUnsafeMutableBufferPointer { failed in
                    // Each worker touches only its own vector and failure list; the buffers
                    // outlive the parallel section.
                    nonisolated(unsafe) let mainBuffer = main
                    nonisolated(unsafe) let extraBuffers = extra
                    nonisolated(unsafe) let failedBuffers = failed
                    nonisolated(unsafe) let jobs = jobs
                    DispatchQueue.concurrentPerform(iterations: workers) { worker in
                        func run(_ buffer: UnsafeMutableBufferPointer<UInt64>) {
                            for index in stride(from: worker, to: jobs.count, by: workers) {
                                guard let expander = jobs[index].expander() else {
                                    failedBuffers[worker].append(index)
                                    continue
                                }
                                expander.apply(jobs[index].mode, to: buffer)
                            }
                        }
                        if worker == 0 {
                            run(mainBuffer)
                        } else {
                            extraBuffers[worker - 1].withUnsafeMutableElements(run)
                        }
                    }
                }
            }
        }
        for partial in partials { try! vector.add(partial) }  // same ring and length by construction
        return failures.flatMap { $0 }.sorted()
    }
}
