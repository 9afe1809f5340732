import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import SwiftProtobuf
import VeilCrypto
import VeilService
import VeilWire

/// The coordinator's WebSocket binding (`Specs/wire.md` §1.1), for participants that cannot
/// present a TLS client certificate: HTTPS with the server's certificate only; the participant
/// page at `/participate` (when serve.json's `browser.page` names its folder); and at
/// `/participate/ws` a WebSocket whose text frames carry the stream's messages in their JSON
/// mapping. The first frame is the coordinator's challenge; the participant's signed answer
/// authenticates the stream, which then runs exactly as a gRPC stream does
/// (``ParticipantStream``).
public final class BrowserGateway: Sendable {
    private let channel: any Channel
    /// The bound port (useful when asked for port 0).
    public let port: Int

    /// The challenge must be answered within this; so must each HTTP request (TLS handshake
    /// included) arrive, from the connection's opening or the previous answer.
    static let authenticationTimeout = TimeAmount.seconds(10)
    /// What a connection may send before its participant is authenticated (the upgrade request
    /// and the challenge's answer are about 2 KiB): a peer nobody has authenticated cannot make
    /// the coordinator buffer a large frame.
    static let unauthenticatedBytes = 64 << 10
    /// Frames received and not yet read by the coordinator, at most: a peer that sends faster
    /// than its budget admits loses its connection, not the coordinator's memory.
    static let maxPendingFrames = 256

    public static func start(
        coordinator: Coordinator, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> BrowserGateway? {
        let c = coordinator.configuration
        guard let settings = c.browser else { return nil }
        let certificatePath = settings.certificate ?? c.tls.certificate
        let keyPath = settings.key ?? c.tls.key
        let context: NIOSSLContext
        do { context = try ServerSupport.tlsContext(certificate: certificatePath, key: keyPath) } catch {
            throw ConfigurationError("browser: the TLS files \(certificatePath), \(keyPath): \(error)")
        }
        let site = try ParticipantPage(folder: settings.page)
        // A JSON message is longer than its protobuf encoding: base64 for bytes, decimal text
        // for numbers.
        let maxFrame = 4 * c.maxMessageBytes
        let gate = Gate(coordinator: coordinator, site: site, origins: Set(settings.origins), logger: logger)
        let limit = ConnectionLimit(
            total: settings.maxConnections, perAddress: max(1, settings.maxConnections / 4))
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                if let refused = limit.admit(channel) { return refused }
                return channel.eventLoop.makeCompletedFuture {
                    let guardian = ConnectionGuard()
                    let page = PageHandler(gate: gate, guardian: guardian)
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: maxFrame, automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(gate.mayUpgrade(head) ? HTTPHeaders() : nil)
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandlers(
                                    FrameRules(),
                                    NIOWebSocketFrameAggregator(
                                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16,
                                        maxAccumulatedFrameSize: maxFrame),
                                    WebSocketSession(gate: gate, guardian: guardian))
                            }
                        })
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(guardian)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                // The page's handler speaks HTTP; after the upgrade, frames flow.
                                context.pipeline.syncOperations.removeHandler(page, promise: nil)
                            }
                        ), withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(page)
                }
            }
            .bind(host: c.host, port: settings.port).get()
        let port = channel.localAddress?.port ?? settings.port
        logger.info(
            "browser participants",
            metadata: [
                "endpoint": "wss://\(c.host):\(port)/participate/ws",
                "page": "\(site.files.isEmpty ? "none" : "https://\(c.host):\(port)/participate")",
            ])
        return BrowserGateway(channel: channel, port: port)
    }

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    public func stop() async throws { try await channel.close() }

    /// What every connection shares: the coordinator, the page, the origins allowed.
    final class Gate: Sendable {
        let coordinator: Coordinator
        let site: ParticipantPage
        let origins: Set<String>
        let logger: Logger

        init(coordinator: Coordinator, site: ParticipantPage, origins: Set<String>, logger: Logger) {
            self.coordinator = coordinator
            self.site = site
            self.origins = origins
            self.logger = logger
        }

        /// A WebSocket to `/participate/ws` from a page of this endpoint's own origin (the
        /// browser's `Origin` against its `Host`), of an origin configured, or from a client
        /// that is no browser (no `Origin`: nothing ambient to abuse, it must sign the
        /// challenge like anyone).
        func mayUpgrade(_ head: HTTPRequestHead) -> Bool {
            guard head.method == .GET, ServerSupport.path(of: head.uri) == "/participate/ws" else { return false }
            guard let origin = head.headers.first(name: "Origin") else { return true }
            if origins.contains(origin) { return true }
            guard let host = head.headers.first(name: "Host"), let own = WebOrigin.canonical("https://\(host)") else {
                return false
            }
            return origin == own
        }

        /// Runs one authenticated connection: the challenge, its answer, then the stream.
        func serve(_ session: WebSocketSession.Link, peer: String) async {
            let nonce = SecureBytes.random(count: BrowserAuthentication.nonceLength).unsafeExposedBytes()
            do {
                try await session.send(.with { $0.challenge = .with { $0.nonce = Data(nonce) } })
                let identity: FederationIdentity
                do {
                    guard let first = try await session.first.get() else {
                        return await session.close(code: .normalClosure)
                    }
                    let message = try Veil_V1_ParticipantMessage(jsonUTF8Bytes: first, options: Self.decoding)
                    guard case .authenticate(let answer) = message.kind else {
                        throw CredentialError.unauthenticated("the first message must answer the challenge")
                    }
                    identity = try BrowserAuthentication.verify(
                        answer, nonce: nonce, coordinator: coordinator.id, ca: coordinator.ca)
                } catch {
                    coordinator.metrics.increment(
                        "veil_refused_messages_total", labels: ["reason": RefusalReason.certificate.rawValue])
                    // Bounded, one line: a JSON error can quote the sender's text.
                    let why = loggable("\(error)")
                    logger.info("browser participant refused", metadata: ["peer": "\(peer)", "reason": "\(why)"])
                    try? await session.send(.failure(.failureNotAParticipant, why))
                    return await session.close(code: .policyViolation)
                }
                logger.info("browser participant authenticated", metadata: ["id": "\(identity.id)", "peer": "\(peer)"])
                try await ParticipantStream(coordinator: coordinator, identity: identity, logger: logger).run(
                    messages: session.rest,
                    decode: { try Veil_V1_ParticipantMessage(jsonUTF8Bytes: $0, options: Self.decoding) },
                    write: { try await session.send($0) })
                await session.close(code: .normalClosure)
            } catch {
                logger.info(
                    "browser connection ended", metadata: ["peer": "\(peer)", "error": "\(loggable("\(error)"))"])
                await session.close(code: .unexpectedServerError)
            }
        }

        /// Strict: an unknown field is an error, as in the protobuf encoding's decoder.
        static let decoding: JSONDecodingOptions = {
            var options = JSONDecodingOptions()
            options.ignoreUnknownFields = false
            options.messageDepthLimit = 32
            return options
        }()
    }

    /// A WebSocket connection after the upgrade: text frames in, each to the challenge's
    /// answer first and then to the stream, and messages out as text frames.
    final class WebSocketSession: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame
        let gate: Gate
        let guardian: ConnectionGuard
        private var first: EventLoopPromise<[UInt8]?>?
        private var rest: AsyncThrowingStream<[UInt8], any Error>.Continuation?
        private var closing = false

        init(gate: Gate, guardian: ConnectionGuard) {
            self.gate = gate
            self.guardian = guardian
        }

        /// What the connection's task holds: the first frame, the others, and a way to answer.
        struct Link: Sendable {
            let first: EventLoopFuture<[UInt8]?>
            let rest: AsyncThrowingStream<[UInt8], any Error>
            let channel: any Channel

            func send(_ message: Veil_V1_CoordinatorMessage) async throws {
                let json: Data = try message.jsonUTF8Data()
                let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: json))
                try await channel.writeAndFlush(frame)
            }

            /// Says goodbye with `code` and closes.
            func close(code: WebSocketErrorCode) async {
                try? await channel.writeAndFlush(WebSocketFrame.closing(code))
                try? await channel.close()
            }
        }

        func handlerAdded(context: ChannelHandlerContext) {
            let first = context.eventLoop.makePromise(of: [UInt8]?.self)
            let (stream, continuation) = AsyncThrowingStream.makeStream(
                of: [UInt8].self, bufferingPolicy: .bufferingOldest(BrowserGateway.maxPendingFrames))
            self.first = first
            self.rest = continuation
            let link = Link(first: first.futureResult, rest: stream, channel: context.channel)
            // The challenge's own deadline (below) takes over from the request deadline.
            guardian.disarmDeadline()
            let guardian = guardian
            first.futureResult.whenSuccess { answer in if answer != nil { guardian.lift() } }
            let peer = context.channel.remoteAddress?.ipAddress ?? "?"
            context.eventLoop.scheduleTask(in: BrowserGateway.authenticationTimeout) {
                first.fail(CredentialError.unauthenticated("the challenge was not answered in time"))
            }
            let gate = gate
            Task { await gate.serve(link, peer: peer) }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            switch frame.opcode {
            case .text:
                let bytes = Array(frame.unmaskedData.readableBytesView)
                if let promise = first {
                    first = nil
                    promise.succeed(bytes)
                } else if case .dropped = rest?.yield(bytes) {
                    refuse(context: context, .policyViolation)
                }
            case .binary, .continuation:
                // The binding carries the JSON mapping only (§1.1): one encoding, one parser.
                refuse(context: context, .unacceptableData)
            case .ping:
                var pong = frame.unmaskedData
                let answer = WebSocketFrame(fin: true, opcode: .pong, data: pong.readSlice(length: pong.readableBytes)!)
                context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
            case .connectionClose:
                refuse(context: context, .normalClosure)  // the peer's goodbye, answered
            default:
                break
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            end()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            end()
            context.close(promise: nil)
        }

        private func end() {
            first?.succeed(nil)
            first = nil
            rest?.finish()
            rest = nil
        }

        /// Ends the stream and closes the connection with `code`, once.
        private func refuse(context: ChannelHandlerContext, _ code: WebSocketErrorCode) {
            end()
            guard !closing else { return }
            closing = true
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.closing(code))).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Plain HTTP on the same port: the page and its modules, and a health check.
    final class PageHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let gate: Gate
        let guardian: ConnectionGuard
        private var head: HTTPRequestHead?

        init(gate: Gate, guardian: ConnectionGuard) {
            self.gate = gate
            self.guardian = guardian
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break  // nothing here takes a body
            case .end:
                guard let head else { return }
                self.head = nil
                let answer = gate.site.answer(method: head.method, path: ServerSupport.path(of: head.uri))
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: answer.contentType)
                headers.add(name: "Content-Length", value: "\(answer.body.count)")
                for (name, value) in ParticipantPage.securityHeaders { headers.add(name: name, value: value) }
                if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
                context.write(
                    wrapOutboundOut(
                        .head(HTTPResponseHead(version: head.version, status: answer.status, headers: headers))),
                    promise: nil)
                if head.method != .HEAD, !answer.body.isEmpty {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: answer.body)))), promise: nil)
                }
                let channel = context.channel
                let keepAlive = head.isKeepAlive
                let guardian = guardian
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                    // The next request has its own time.
                    if keepAlive { guardian.answered() } else { channel.close(promise: nil) }
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A WebSocket upgrade refused (an origin not allowed, another path) is passed on as a
            // plain request, which is answered; anything else ends the connection.
            if error is NIOWebSocketUpgradeError { return }
            context.close(promise: nil)
        }
    }
}

/// What a connection may cost before its participant is authenticated: at most
/// ``BrowserGateway/unauthenticatedBytes`` received, and each request (TLS handshake included)
/// within ``BrowserGateway/authenticationTimeout`` of the opening or of the previous answer —
/// so that neither a large frame nor a connection that never finishes its handshake or request
/// holds the coordinator's memory or a connection slot. An authenticated WebSocket is bound by
/// the participant's own budget instead (`Specs/wire.md` §8): the guard then leaves the
/// pipeline, so its stream's reads pay nothing for it.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var received = 0
    private var deadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        arm()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        guard received <= BrowserGateway.unauthenticatedBytes else {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    /// An HTTP answer was written: the next request gets its own time (and bytes).
    func answered() {
        guard context != nil else { return }
        received = 0
        arm()
    }

    /// The upgrade is done: the challenge's deadline applies instead.
    func disarmDeadline() {
        deadline?.cancel()
        deadline = nil
    }

    /// The participant is authenticated: no more limits of this guard's.
    func lift() {
        disarmDeadline()
        if let context { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }

    private func arm() {
        deadline?.cancel()
        guard let context else { return }
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: BrowserGateway.authenticationTimeout) {
            channel.close(promise: nil)
        }
    }
}

/// RFC 6455 §5.1–§5.2, which the frame decoder leaves to its user: every frame from a client is
/// masked, and no reserved bit is set (no extension is negotiated). Otherwise: 1002.
final class FrameRules: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        let frame = unwrapInboundIn(data)
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            refused = true
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.closing(.protocolError))).whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        context.fireChannelRead(data)
    }
}

extension WebSocketFrame {
    /// A close frame with `code`.
    static func closing(_ code: WebSocketErrorCode) -> WebSocketFrame {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }
}

/// The participant page's files, read once at start: requests name a file, never a path, so
/// nothing outside the folder can be reached, and a file changed later is not served half-new.
struct ParticipantPage: Sendable {
    struct File: Sendable {
        let body: [UInt8]
        let contentType: String
    }

    struct Answer {
        let status: HTTPResponseStatus
        let body: [UInt8]
        let contentType: String
    }

    let files: [String: File]

    static let contentTypes = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "wasm": "application/wasm", "sha256": "text/plain; charset=utf-8", "json": "application/json",
        "svg": "image/svg+xml",
    ]
    static let maxFileBytes = 16 << 20

    /// The page runs only its own scripts (and the WebAssembly module they instantiate), is
    /// framed by nobody, and connects to its own origin and to HTTPS/WSS endpoints (the CA's
    /// enrolment endpoint is another origin).
    static let securityHeaders = [
        (
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self' https: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-cache"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]

    /// Reads every file of `folder` whose name is a plain name with a known extension.
    init(folder: String?) throws {
        guard let folder else {
            files = [:]
            return
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw ConfigurationError("browser.page: cannot read the folder \(folder): \(error)")
        }
        var files: [String: File] = [:]
        for name in names.sorted() {
            guard Self.isPlainName(name), let type = Self.contentTypes[String(name.split(separator: ".").last!)] else {
                continue
            }
            let path = URL(fileURLWithPath: folder).appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("browser.page: cannot read \(path)")
            }
            guard data.count <= Self.maxFileBytes else {
                throw ConfigurationError("browser.page: \(path) is over \(Self.maxFileBytes) bytes")
            }
            files[name] = File(body: Array(data), contentType: type)
        }
        guard files["participate.html"] != nil else {
            throw ConfigurationError("browser.page: \(folder) has no participate.html")
        }
        self.files = files
    }

    /// Letters, digits, '-', '_' and one inner '.' at least: no path, no hidden file.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128 && name.first != "." && name.contains(".")
            && name.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                    || "-_.".unicodeScalars.contains($0)
            }
    }

    func answer(method: HTTPMethod, path: String) -> Answer {
        if path == "/healthz" { return Answer(status: .ok, body: Array("ok\n".utf8), contentType: "text/plain") }
        if path == "/participate/ws" {
            // Reached only when the upgrade was refused (§1.1).
            return Answer(
                status: .forbidden,
                body: Array("a WebSocket upgrade from this page's origin only, or from one in browser.origins\n".utf8),
                contentType: "text/plain")
        }
        let name: String
        switch path {
        case "/participate", "/participate/": name = "participate.html"
        default:
            guard path.hasPrefix("/participate/") else { return Self.notFound }
            name = String(path.dropFirst("/participate/".count))
        }
        guard let file = files[name] else { return Self.notFound }
        guard method == .GET || method == .HEAD else {
            return Answer(status: .methodNotAllowed, body: Array("GET only\n".utf8), contentType: "text/plain")
        }
        return Answer(status: .ok, body: file.body, contentType: file.contentType)
    }

    static let notFound = Answer(status: .notFound, body: Array("not found\n".utf8), contentType: "text/plain")
}
