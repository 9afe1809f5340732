import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import VeilCrypto
import VeilService

/// The coordinator's HTTP port (`Specs/wire.md` §9): `GET /metrics` (Prometheus text, open
/// to the scraper), `GET /healthz` (the process is up), `GET /readyz` (it leads: 503 while a
/// standby, §6.2), `GET /` (the dashboard page, which holds no data), and the
/// dashboard's data — `GET /api/snapshot` (JSON) and `GET /api/events` (server-sent events,
/// one snapshot after each change) — only for a request that carries the configured bearer
/// token. Anything else is 404 (or 405 for another method).
public final class MonitoringServer: Sendable {
    private let channel: any Channel
    private let streams: StreamRegistry
    /// The bound port (useful when asked for port 0).
    public let port: Int

    /// What the server serves.
    public struct Content: Sendable {
        public var metrics: Metrics
        /// The dashboard's token (nil: every data request is refused).
        public var token: String?
        public var hub: MonitoringHub
        /// The current snapshot as JSON.
        public var snapshot: @Sendable () async -> Data?
        /// Whether this process leads its federation (false: a standby, which takes no
        /// participant — `/readyz` says 503, so that a load balancer sends them elsewhere).
        public var leading: Bool

        public init(
            metrics: Metrics, token: String?, hub: MonitoringHub, snapshot: @escaping @Sendable () async -> Data?,
            leading: Bool = true
        ) {
            self.metrics = metrics
            self.token = token
            self.hub = hub
            self.snapshot = snapshot
            self.leading = leading
        }

        /// A standby's: health and readiness (503), empty metrics, no dashboard data.
        public static var standby: Content {
            Content(metrics: Metrics(), token: nil, hub: MonitoringHub(), snapshot: { nil }, leading: false)
        }
    }

    /// At most this many live streams at once: each holds a connection and re-reads the
    /// snapshot after every change.
    static let maxStreams = 32
    /// A fresh snapshot on every open stream at least this often, changed or not: the page's
    /// clock-driven values (the coordinator's CPU, uptime, "last seen") stay current, proxies
    /// keep the stream open, and a browser that went away is noticed.
    static let refresh = Duration.seconds(5)
    /// At most this many connections at once (streams included): each holds a descriptor, and
    /// the port is open to anyone who can reach it — a flood of idle connections must not take
    /// the descriptors the federation needs.
    public static let maxConnections = 128
    /// A request must arrive whole within this time of its connection, or the connection is closed.
    static let requestTimeout = TimeAmount.seconds(10)
    /// A stream whose client has not taken what was sent for this long is closed.
    static let stalledStream = Duration.seconds(60)

    public static func start(
        host: String, port: Int, content: Content, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> MonitoringServer {
        let streams = StreamRegistry()
        let gate = Gate(content: content, streams: streams)
        let limit = ConnectionLimit(total: maxConnections)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A stream's unsent data beyond 1 MiB makes it unwritable: snapshots are then skipped
            // (the next carries the newest state) instead of queueing in memory.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { channel in
                if let refused = limit.admit(channel) { return refused }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(Handler(gate: gate))
                }
            }
            .bind(host: host, port: port).get()
        return MonitoringServer(channel: channel, streams: streams, port: channel.localAddress?.port ?? port)
    }

    private init(channel: any Channel, streams: StreamRegistry, port: Int) {
        self.channel = channel
        self.streams = streams
        self.port = port
    }

    /// Closes the listening socket and every live stream.
    public func stop() async throws {
        streams.closeAll()
        try await channel.close()
    }

    /// The live streams' tasks, cancelled when the server stops.
    final class StreamRegistry: Sendable {
        private let state = Mutex<(tasks: [ObjectIdentifier: Task<Void, Never>], closed: Bool)>(([:], false))

        /// Registers a stream's task; false when the limit is reached or the server stopped.
        func add(_ key: ObjectIdentifier, _ task: () -> Task<Void, Never>) -> Bool {
            state.withLock { state in
                guard !state.closed, state.tasks.count < MonitoringServer.maxStreams else { return false }
                state.tasks[key] = task()
                return true
            }
        }

        /// The stream's connection closed: its task ends (it would otherwise wait for the next change).
        func remove(_ key: ObjectIdentifier) { state.withLock { $0.tasks.removeValue(forKey: key) }?.cancel() }

        func closeAll() {
            let tasks = state.withLock { state in
                state.closed = true
                defer { state.tasks = [:] }
                return Array(state.tasks.values)
            }
            for task in tasks { task.cancel() }
        }
    }

    /// The routing and the token check, apart from NIO's handler.
    struct Gate: Sendable {
        let content: Content
        let streams: StreamRegistry
        /// SHA-256 of the token: requests are compared with it in constant time (a digest, so
        /// the comparison's length does not depend on the guess).
        let tokenDigest: SecureBytes?

        init(content: Content, streams: StreamRegistry) {
            self.content = content
            self.streams = streams
            tokenDigest = content.token.map { SecureBytes(copying: Array(SHA256.hash(data: Array($0.utf8)))) }
        }

        enum Route {
            case page, metrics, health, readiness, snapshot, events, notFound, notAllowed, unauthorised(String)
        }

        func route(method: HTTPMethod, uri: String, authorization: String?) -> Route {
            let path = ServerSupport.path(of: uri)
            let known = ["/", "/metrics", "/healthz", "/readyz", "/api/snapshot", "/api/events"]
            guard known.contains(path) else { return .notFound }
            guard method == .GET else { return .notAllowed }
            switch path {
            case "/": return .page
            case "/metrics": return .metrics
            case "/healthz": return .health
            case "/readyz": return .readiness
            default:
                guard let tokenDigest else {
                    return .unauthorised("this coordinator has no dashboard token (monitoring.token_file)")
                }
                // The scheme's name is case-insensitive (RFC 9110 §11.1); the token is not.
                guard let header = authorization, header.count > 7, header.prefix(7).lowercased() == "bearer ",
                    SecureBytes(copying: Array(SHA256.hash(data: Array(header.dropFirst(7).utf8)))) == tokenDigest
                else { return .unauthorised("a bearer token is required") }
                return path == "/api/events" ? .events : .snapshot
            }
        }
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let gate: Gate
        var head: HTTPRequestHead?
        /// Whether a whole request has arrived (one per connection: every answer closes it,
        /// a stream's included when it ends).
        var requested = false

        init(gate: Gate) { self.gate = gate }

        func handlerAdded(context: ChannelHandlerContext) {
            let channel = context.channel
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: MonitoringServer.requestTimeout) {
                if !handler.value.requested { channel.close(promise: nil) }
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !requested else { return }  // anything after the request is ignored
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break  // no route takes a body; its bytes are dropped as they come
            case .end:
                guard let head else { return }
                self.head = nil
                requested = true
                respond(to: head, context: context)
            }
        }

        /// A request NIO could not parse was answered 400 by its error handler; then it closes.
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
            let content = gate.content
            switch gate.route(
                method: head.method, uri: head.uri, authorization: head.headers.first(name: "Authorization"))
            {
            case .page:
                send(
                    .ok, "text/html; charset=utf-8", DashboardPage.live, context: context,
                    extra: [
                        (
                            "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
                        ), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
                    ])
            case .metrics:
                content.metrics.sampleProcess()
                send(
                    .ok, "text/plain; version=0.0.4; charset=utf-8", Array(content.metrics.render().utf8),
                    context: context)
            case .health:
                send(.ok, "text/plain; charset=utf-8", Array("ok\n".utf8), context: context)
            case .readiness:
                if content.leading {
                    send(.ok, "text/plain; charset=utf-8", Array("leading\n".utf8), context: context)
                } else {
                    send(.serviceUnavailable, "text/plain; charset=utf-8", Array("standby\n".utf8), context: context)
                }
            case .notFound:
                send(.notFound, "text/plain; charset=utf-8", Array("not found\n".utf8), context: context)
            case .notAllowed:
                send(
                    .methodNotAllowed, "text/plain; charset=utf-8", Array("only GET\n".utf8), context: context,
                    extra: [("Allow", "GET")])
            case .unauthorised(let why):
                send(
                    .unauthorized, "text/plain; charset=utf-8", Array((why + "\n").utf8), context: context,
                    extra: [("WWW-Authenticate", #"Bearer realm="veil""#)])
            case .snapshot:
                let channel = context.channel
                let loop = context.eventLoop
                let handler = NIOLoopBound(self, eventLoop: loop)
                Task {
                    let json = await content.snapshot()
                    loop.execute {
                        guard let context = try? channel.pipeline.syncOperations.context(handler: handler.value)
                        else { return }
                        if let json {
                            handler.value.send(.ok, "application/json", Array(json), context: context)
                        } else {
                            handler.value.send(
                                .serviceUnavailable, "text/plain; charset=utf-8",
                                Array("the snapshot could not be made\n".utf8), context: context)
                        }
                    }
                }
            case .events:
                startStream(context: context)
            }
        }

        /// Opens a server-sent-event stream: a `snapshot` event now and after each change (at
        /// most four a second), a comment every `heartbeat`; it ends when the client goes away
        /// or the server stops.
        private func startStream(context: ChannelHandlerContext) {
            let channel = context.channel
            let content = gate.content
            let key = ObjectIdentifier(channel)
            let streams = gate.streams
            let admitted = streams.add(key) {
                Task {
                    let sent = StreamProgress()
                    let beating = Task {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: MonitoringServer.refresh)
                            if Task.isCancelled { break }
                            if sent.stalled(channel) {
                                channel.close(promise: nil)
                                break
                            }
                            if let json = await content.snapshot() { sent.offer(Self.event(json), to: channel) }
                        }
                    }
                    defer { beating.cancel() }
                    for await _ in content.hub.changes() {
                        guard channel.isActive else { break }
                        if let json = await content.snapshot() { sent.offer(Self.event(json), to: channel) }
                        try? await Task.sleep(for: .milliseconds(250))
                        if Task.isCancelled { break }
                    }
                    channel.close(promise: nil)
                }
            }
            guard admitted else {
                send(
                    .serviceUnavailable, "text/plain; charset=utf-8",
                    Array("too many dashboard streams are open\n".utf8), context: context, extra: [("Retry-After", "5")]
                )
                return
            }
            channel.closeFuture.whenComplete { _ in streams.remove(key) }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/event-stream")
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "X-Accel-Buffering", value: "no")
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil
            )
        }

        private static func event(_ json: Data) -> String {
            "event: snapshot\ndata: " + String(decoding: json, as: UTF8.self) + "\n\n"
        }

        /// What a stream has managed to send: an event is written only while the connection
        /// is writable (its client takes what it is sent), else skipped — the next carries the
        /// newest state — and a client that takes nothing for ``stalledStream`` is let go.
        final class StreamProgress: Sendable {
            private let lastWritable = Mutex(ContinuousClock.now)

            func offer(_ text: String, to channel: any Channel) {
                guard channel.isWritable else { return }
                lastWritable.withLock { $0 = .now }
                let buffer = channel.allocator.buffer(string: text)
                channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
            }

            func stalled(_ channel: any Channel) -> Bool {
                if channel.isWritable { lastWritable.withLock { $0 = .now } }
                return ContinuousClock.now - lastWritable.withLock({ $0 }) > MonitoringServer.stalledStream
            }
        }

        func send(
            _ status: HTTPResponseStatus, _ type: String, _ body: [UInt8], context: ChannelHandlerContext,
            extra: [(String, String)] = []
        ) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.count))
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "X-Content-Type-Options", value: "nosniff")
            headers.add(name: "Connection", value: "close")
            for (name, value) in extra { headers.add(name: name, value: value) }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// The snapshot as JSON, made at most once per change (and once a second) whatever the number
/// of streams.
actor SnapshotCache {
    private let coordinator: Coordinator
    private var cached: (version: Int, json: Data, made: ContinuousClock.Instant)?

    init(coordinator: Coordinator) { self.coordinator = coordinator }

    func json() async -> Data? {
        let version = coordinator.hub.version
        // Unchanged and under a second old: every stream shares it.
        if let cached, cached.version == version, ContinuousClock.now - cached.made < .seconds(1) {
            return cached.json
        }
        let snapshot = await coordinator.monitoringSnapshot()
        guard let json = try? snapshot.json() else { return nil }
        cached = (version, json, .now)
        return json
    }
}
