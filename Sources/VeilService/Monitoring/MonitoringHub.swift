import Foundation
import Synchronization

/// Where the coordinator tells its observers that something changed (the dashboard's live
/// streams re-read the snapshot) and hands over alert notifications (to the webhooks). The
/// coordinator never waits on either: a slow browser or a dead receiver cannot hold a round.
public final class MonitoringHub: Sendable {
    private struct State {
        var version = 0
        var streams: [Int: AsyncStream<Int>.Continuation] = [:]
        var nextStream = 0
        var alertSink: (@Sendable (AlertBook.Notice) -> Void)?
    }

    private let state = Mutex(State())

    public init() {}

    /// Yields a version number after each change; only the newest is buffered, so a reader
    /// that falls behind skips to the latest state instead of queueing every change.
    public func changes() -> AsyncStream<Int> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
        let key = state.withLock { state in
            defer { state.nextStream += 1 }
            state.streams[state.nextStream] = continuation
            continuation.yield(state.version)
            return state.nextStream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.streams.removeValue(forKey: key) }
        }
        return stream
    }

    /// Increases with every change.
    public var version: Int { state.withLock { $0.version } }

    /// The number of open change streams (dashboard connections).
    public var watchers: Int { state.withLock { $0.streams.count } }

    func changed() {
        state.withLock { state in
            state.version += 1
            for continuation in state.streams.values { continuation.yield(state.version) }
        }
    }

    /// Ends every change stream (the coordinator is stopping).
    public func finish() {
        let streams = state.withLock { state in
            defer { state.streams = [:] }
            return Array(state.streams.values)
        }
        for continuation in streams { continuation.finish() }
    }

    /// Sets who receives alert notifications (the webhook notifier).
    public func onAlert(_ sink: @escaping @Sendable (AlertBook.Notice) -> Void) {
        state.withLock { $0.alertSink = sink }
    }

    func alert(_ notice: AlertBook.Notice) {
        state.withLock { $0.alertSink }?(notice)
    }
}
