import Foundation
import NIOCore
import NIOPosix

/// Where the service's CPU-bound work runs: threads of its own, not Swift's cooperative pool.
///
/// Training, mask expansion and unmasking take milliseconds to seconds. On the cooperative
/// pool (one thread per core) they would starve every other task of the process — gRPC
/// streams, deadlines, other participants in the same process — which is what made the test
/// suite time out unless it ran serially. A coordinator actor runs on a thread of
/// ``coordinators`` (``serialExecutor()``), each participant's session prefers one of
/// ``shared`` (``taskExecutor()``).
/// The threads are event loops that carry no network I/O.
public final class ComputeThreads: Sendable {
    /// One thread per core, for the whole process: the CPU-bound work.
    public static let shared = ComputeThreads(threads: System.coreCount)
    /// Threads for the coordinator's stream pumps: light work that must not wait behind
    /// the unmasking or training that occupies ``shared``.
    public static let streams = ComputeThreads(threads: System.coreCount)
    /// Threads for coordinator actors. A coordinator's own work (unmasking) is CPU-bound, but
    /// it must never queue behind participants' training: in `veil simulate` and in the tests,
    /// participants train in the coordinator's process, and a round's deadlines and the
    /// registration timeout are served by the coordinator's thread.
    public static let coordinators = ComputeThreads(threads: System.coreCount)

    private let loops: MultiThreadedEventLoopGroup

    public init(threads: Int) {
        loops = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
    }

    /// A serial executor for an actor: the next thread, round-robin.
    public func serialExecutor() -> any SerialExecutor {
        // MultiThreadedEventLoopGroup's loops are NIOSerialEventLoopExecutors.
        loops.next().executor
    }

    /// A task executor for a task tree (`withTaskExecutorPreference`): the next thread.
    public func taskExecutor() -> any TaskExecutor {
        EventLoopTaskExecutor(loop: loops.next())
    }
}

/// Runs a task's jobs on one event loop.
final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// The processor time the calling thread has used, in seconds (`CLOCK_THREAD_CPUTIME_ID`);
/// 0 if the clock cannot be read (it always can on Linux: the call's result is checked all
/// the same).
func threadCPUSeconds() -> Double {
    var time = timespec()
    guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time) == 0 else { return 0 }
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
