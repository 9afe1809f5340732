import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import VeilService

/// Posts the coordinator's alert notifications to the configured webhooks (`Specs/wire.md`
/// §9.4): one JSON POST per notification and receiver, retried with backoff, each attempt
/// bounded by the receiver's timeout. Notifications wait in a bounded queue worked by one
/// task per receiver, so a slow or dead receiver delays only its own notifications — never a
/// round, never another receiver.
public final class WebhookNotifier: Sendable {
    private let receivers: [Receiver]
    private let metrics: Metrics

    /// Notifications a receiver may have waiting; beyond, the oldest is dropped (and counted
    /// as failed): a receiver down for hours must not hold the coordinator's memory.
    static let queueLimit = 1000

    public init(
        webhooks: [ServiceMonitoring.Webhook], federation: String, metrics: Metrics,
        logger: Logger = Logger(label: "veil.alerts")
    ) {
        self.metrics = metrics
        receivers = webhooks.map { Receiver(webhook: $0, federation: federation, metrics: metrics, logger: logger) }
    }

    /// Queues a notification for every receiver.
    public func post(_ notice: AlertBook.Notice) {
        for receiver in receivers { receiver.enqueue(notice) }
    }

    /// Stops the workers (notifications still queued are dropped).
    public func stop() {
        for receiver in receivers { receiver.stop() }
    }

    /// Waits until every receiver has delivered (or given up on) what it has queued, or
    /// `limit` has passed — the federation's last alerts are posted before the process ends.
    public func drain(within limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline, receivers.contains(where: \.isBusy) {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The notification's body: the alert with its state, and an id that names the transition
    /// (a receiver that got a retried POST twice can tell).
    public static func body(_ notice: AlertBook.Notice, federation: String, sent: Double) throws -> [UInt8] {
        struct Body: Encodable {
            let version = 1
            let federation: String
            let notification: String
            let status: String
            let alert: AlertBook.Alert
            let sent: Double
        }
        let alert = notice.alert
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(
            try encoder.encode(
                Body(
                    federation: federation,
                    notification: "\(alert.id)|\(alert.sinceRound)|\(alert.state.rawValue)",
                    status: alert.state.rawValue,
                    alert: alert, sent: sent)))
    }

    final class Receiver: Sendable {
        let webhook: ServiceMonitoring.Webhook
        let federation: String
        let metrics: Metrics
        let logger: Logger
        private let queue = Mutex<
            (items: [AlertBook.Notice], waiting: CheckedContinuation<Void, Never>?, stopped: Bool, delivering: Bool)
        >(([], nil, false, false))

        /// Whether it has a notification queued or in delivery.
        var isBusy: Bool { queue.withLock { !$0.stopped && (!$0.items.isEmpty || $0.delivering) } }
        private let worker = Mutex<Task<Void, Never>?>(nil)

        init(webhook: ServiceMonitoring.Webhook, federation: String, metrics: Metrics, logger: Logger) {
            self.webhook = webhook
            self.federation = federation
            self.metrics = metrics
            self.logger = logger
            worker.withLock { $0 = Task { [self] in await self.work() } }
        }

        func enqueue(_ notice: AlertBook.Notice) {
            let (waiting, dropped) = queue.withLock { q -> (CheckedContinuation<Void, Never>?, Bool) in
                guard !q.stopped else { return (nil, false) }
                q.items.append(notice)
                var dropped = false
                if q.items.count > WebhookNotifier.queueLimit {
                    q.items.removeFirst()
                    dropped = true
                }
                defer { q.waiting = nil }
                return (q.waiting, dropped)
            }
            if dropped {
                metrics.increment("veil_alert_notifications_total", labels: ["outcome": "failed"])
                logger.error("alert notification dropped: the queue is full", metadata: ["url": "\(redacted)"])
            }
            waiting?.resume()
        }

        func stop() {
            let waiting = queue.withLock { q in
                q.stopped = true
                q.items = []
                defer { q.waiting = nil }
                return q.waiting
            }
            waiting?.resume()
            worker.withLock { $0?.cancel() }
        }

        /// The receiver's scheme, host and port, for logs: its path, query and user information
        /// may hold a secret (many services put the token in the path).
        var redacted: String {
            guard let parts = URLComponents(string: webhook.url), let scheme = parts.scheme, let host = parts.host
            else { return "?" }
            return "\(scheme)://\(host)\(parts.port.map { ":\($0)" } ?? "")/…"
        }

        private func next() async -> AlertBook.Notice? {
            while true {
                let item = queue.withLock { q -> AlertBook.Notice?? in
                    if q.stopped { return .some(nil) }
                    q.delivering = !q.items.isEmpty
                    return q.items.isEmpty ? nil : .some(q.items.removeFirst())
                }
                if let item { return item }
                await withCheckedContinuation { continuation in
                    let ready = queue.withLock { q -> Bool in
                        if q.stopped || !q.items.isEmpty { return true }
                        q.waiting = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
        }

        private func work() async {
            while let notice = await next() {
                guard
                    let body = try? WebhookNotifier.body(
                        notice, federation: federation, sent: Date().timeIntervalSince1970)
                else { continue }
                var delivered = false
                var failure = ""
                for attempt in 0...webhook.retries {
                    if attempt > 0 { try? await Task.sleep(for: .seconds(min(1 << (attempt - 1), 30))) }
                    if Task.isCancelled { return }
                    do {
                        let status = try await HTTPPost.send(
                            body, to: webhook.url, timeout: .milliseconds(Int64(webhook.timeoutSeconds * 1000)))
                        if (200..<300).contains(status) {
                            delivered = true
                            break
                        }
                        failure = "HTTP \(status)"
                    } catch {
                        failure = "\(error)"
                    }
                }
                metrics.increment(
                    "veil_alert_notifications_total", labels: ["outcome": delivered ? "delivered" : "failed"])
                if !delivered {
                    logger.error(
                        "alert notification failed",
                        metadata: [
                            "url": "\(redacted)", "alert": "\(notice.alert.id)", "attempts": "\(webhook.retries + 1)",
                            "error": "\(failure)",
                        ])
                }
            }
        }
    }
}

/// One HTTP/1.1 POST of a JSON body over NIO (TLS for https, with the system's trust roots);
/// returns the response status. The whole exchange is bounded by `timeout`.
enum HTTPPost {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func send(_ body: [UInt8], to url: String, timeout: Duration) async throws -> Int {
        guard let parts = URLComponents(string: url), let host = parts.host, let scheme = parts.scheme else {
            throw Failure(description: "not a URL")
        }
        let secure = scheme == "https"
        let port = parts.port ?? (secure ? 443 : 80)
        var path = parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath
        if let query = parts.percentEncodedQuery { path += "?" + query }
        let tls = try secure ? NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let status = StatusBox()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(
                .milliseconds(
                    Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
            )
            .channelInitializer { channel in
                do {
                    if let tls {
                        // SNI carries names only: a receiver given by its address gets none.
                        let named = !host.allSatisfy { $0.isNumber || $0 == "." } && !host.contains(":")
                        let handler = try NIOSSLClientHandler(context: tls, serverHostname: named ? host : nil)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler(status: status))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(host: host, port: port).get()
        let deadline = Task {
            try await Task.sleep(for: timeout)
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: parts.port == nil ? host : "\(host):\(port)")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "User-Agent", value: "veil-alerts/1")
        headers.add(name: "Connection", value: "close")
        channel.write(
            HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)),
            promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        try await channel.closeFuture.get()
        guard let code = status.value else { throw Failure(description: "no response within \(timeout)") }
        return code
    }

    final class StatusBox: Sendable {
        private let state = Mutex<Int?>(nil)
        var value: Int? { state.withLock { $0 } }
        func set(_ code: Int) { state.withLock { $0 = code } }
    }

    final class ResponseHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPClientResponsePart
        let status: StatusBox

        init(status: StatusBox) { self.status = status }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): status.set(Int(head.status.code))
            case .body: break
            case .end: context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }
}
