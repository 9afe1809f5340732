import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import UnixSignals
import VeilService

/// `veil ca enrol`: the federation CA's enrolment endpoint (`Specs/wire.md` §2.3), run by the
/// CA operator — never by the coordinator — over TLS with the operator's server certificate.
/// `POST /enrol` takes `{"token", "request"}` and answers `{"certificate", "ca"}` (200) or
/// `{"error"}` (400, 403, 409, 413, 500); `OPTIONS /enrol` answers a browser's preflight for
/// the origins allowed; `GET /healthz` answers `ok`. Anything else is 404 (405 for another
/// method). One request per connection, at most ``maxConnections`` at once, each within
/// ``requestTimeout``.
public final class EnrolmentServer: Sendable {
    private let channel: any Channel
    /// The bound port (useful when asked for port 0).
    public let port: Int

    public static let maxConnections = 64
    /// At most this many from one address: one client cannot hold every connection (a
    /// distributed one still can, §2.3).
    public static let maxConnectionsPerAddress = 8
    static let requestTimeout = TimeAmount.seconds(10)

    /// What the server needs: the enrolment, the TLS files, the origins whose pages may call it.
    public struct Settings: Sendable {
        public var enrolment: Enrolment
        public var certificatePath: String
        public var keyPath: String
        /// Browser origins (`https://host[:port]`) allowed to call `/enrol` from their pages;
        /// none: only pages of the endpoint's own origin.
        public var allowedOrigins: Set<String>

        public init(enrolment: Enrolment, certificatePath: String, keyPath: String, allowedOrigins: Set<String>) {
            self.enrolment = enrolment
            self.certificatePath = certificatePath
            self.keyPath = keyPath
            self.allowedOrigins = allowedOrigins
        }
    }

    public static func start(
        host: String, port: Int, settings: Settings, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> EnrolmentServer {
        let context: NIOSSLContext
        do {
            context = try ServerSupport.tlsContext(certificate: settings.certificatePath, key: settings.keyPath)
        } catch {
            throw ConfigurationError(
                "the enrolment endpoint's TLS files \(settings.certificatePath), \(settings.keyPath): \(error)")
        }
        let gate = Gate(settings: settings, logger: logger)
        let limit = ConnectionLimit(total: maxConnections, perAddress: maxConnectionsPerAddress)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                if let refused = limit.admit(channel) { return refused }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(Handler(gate: gate))
                }
            }
            .bind(host: host, port: port).get()
        return EnrolmentServer(channel: channel, port: channel.localAddress?.port ?? port)
    }

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    public func stop() async throws { try await channel.close() }

    /// The routes, and the enrolments one at a time: whether an id is certified and the
    /// writing of its certificate must not interleave between two requests.
    final class Gate: Sendable {
        let settings: Settings
        let logger: Logger
        private let serial = Mutex(())

        init(settings: Settings, logger: Logger) {
            self.settings = settings
            self.logger = logger
        }

        struct Answer {
            var status: HTTPResponseStatus
            var body: [UInt8]
            var headers: [(String, String)] = []
            var json = true
        }

        func answer(method: HTTPMethod, path: String, origin: String?, body: [UInt8], peer: String) -> Answer {
            var cors: [(String, String)] = []
            if let origin, settings.allowedOrigins.contains(origin) { cors = [("Access-Control-Allow-Origin", origin)] }
            switch (method, path) {
            case (.GET, "/healthz"):
                return Answer(status: .ok, body: Array("ok\n".utf8), json: false)
            case (.OPTIONS, "/enrol"):
                guard !cors.isEmpty else { return error(.forbidden, "this origin may not enrol here") }
                return Answer(
                    status: .noContent, body: [],
                    headers: cors + [
                        ("Access-Control-Allow-Methods", "POST"), ("Access-Control-Allow-Headers", "Content-Type"),
                        ("Access-Control-Max-Age", "600"),
                    ])
            case (.POST, "/enrol"):
                let outcome = serial.withLock { _ in
                    Result { () throws(EnrolmentError) in try settings.enrolment.enrol(body: body) }
                }
                switch outcome {
                case .success(let issued):
                    logger.info("enrolled", metadata: ["id": "\(issued.id)", "peer": "\(peer)"])
                    return Answer(status: .ok, body: issued.json, headers: cors)
                case .failure(let refusal):
                    logger.info("enrolment refused", metadata: ["reason": "\(refusal)", "peer": "\(peer)"])
                    var answer = error(HTTPResponseStatus(statusCode: refusal.status), "\(refusal)")
                    answer.headers += cors
                    return answer
                }
            case (_, "/enrol"), (_, "/healthz"):
                var answer = error(.methodNotAllowed, "method not allowed")
                answer.headers.append(("Allow", path == "/enrol" ? "POST, OPTIONS" : "GET"))
                return answer
            default:
                return error(.notFound, "not found")
            }
        }

        func error(_ status: HTTPResponseStatus, _ why: String) -> Answer {
            let body = (try? JSONSerialization.data(withJSONObject: ["error": why])) ?? Data()
            return Answer(status: status, body: Array(body))
        }
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let gate: Gate
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        var answered = false

        init(gate: Gate) { self.gate = gate }

        func handlerAdded(context: ChannelHandlerContext) {
            let channel = context.channel
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: EnrolmentServer.requestTimeout) {
                if !handler.value.answered { channel.close(promise: nil) }
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
            case .body(var chunk):
                // Refused as soon as it is too long, not after it has all been read.
                guard body.count + chunk.readableBytes <= Enrolment.maxBodyBytes else {
                    respond(
                        gate.error(.payloadTooLarge, "the body is over \(Enrolment.maxBodyBytes) bytes"),
                        context: context)
                    return
                }
                body += chunk.readBytes(length: chunk.readableBytes) ?? []
            case .end:
                guard let head else { return }
                respond(
                    gate.answer(
                        method: head.method, path: ServerSupport.path(of: head.uri),
                        origin: head.headers.first(name: "Origin"), body: body,
                        peer: context.channel.remoteAddress?.ipAddress ?? "?"),
                    context: context)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

        private func respond(_ answer: Gate.Answer, context: ChannelHandlerContext) {
            answered = true
            body = []
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: answer.json ? "application/json" : "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: "\(answer.body.count)")
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "X-Content-Type-Options", value: "nosniff")
            // The answer depends on the Origin (its CORS header): a cache must not share it.
            headers.add(name: "Vary", value: "Origin")
            headers.add(name: "Connection", value: "close")
            for (name, value) in answer.headers { headers.add(name: name, value: value) }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))),
                promise: nil)
            if !answer.body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: answer.body)))), promise: nil)
            }
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

extension EnrolmentServer {
    /// Returns on the first SIGINT or SIGTERM.
    public static func waitForStopSignal() async {
        for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { return }
    }
}
