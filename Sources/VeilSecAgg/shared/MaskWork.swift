import Dispatch
import Foundation
import VeilCore
import VeilCrypto

/// Folds many masks into one vector, on every core: each worker accumulates a share of the
/// masks into its own vector, and the partial vectors are added at the end. Addition in
/// Z_(2^b) is commutative, so the result does not depend on the split.
enum MaskWork {
    struct Job {
        let expander: MaskExpander
        let mode: MaskExpander.Mode
    }

    /// The number of workers to use: the active processor count.
    static var availableWorkers: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    static func apply(_ jobs: [Job], to vector: inout ModularVector, workers: Int = availableWorkers) {
        let workers = min(workers, jobs.count)
        guard workers > 1 else {
            vector.withUnsafeMutableElements { buffer in for job in jobs { job.expander.apply(job.mode, to: buffer) } }
            return
        }
        var partials = (1..<workers).map { _ in ModularVector(zeros: vector.count, bitWidth: vector.bitWidth) }
        vector.withUnsafeMutableElements { main in
            partials.withUnsafeMutableBufferPointer { extra in
                // Each worker touches only its own vector; the buffers outlive the parallel section.
                nonisolated(unsafe) let mainBuffer = main
                nonisolated(unsafe) let extraBuffers = extra
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    let mine = stride(from: worker, to: jobs.count, by: workers).map { jobs[$0] }
                    if worker == 0 {
                        for job in mine { job.expander.apply(job.mode, to: mainBuffer) }
                    } else {
                        extraBuffers[worker - 1].withUnsafeMutableElements { buffer in
                            for job in mine { job.expander.apply(job.mode, to: buffer) }
                        }
                    }
                }
            }
        }
        for partial in partials { try! vector.add(partial) }  // same ring and length by construction
    }
}
