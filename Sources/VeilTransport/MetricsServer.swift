import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import VeilService

/// A small HTTP/1.1 server for the coordinator's observability: `GET /metrics` (Prometheus
/// text) and `GET /` (a status page that refreshes itself). Anything else is 404.
public final class MetricsServer: Sendable {
    private let channel: any Channel
    /// The bound port (useful when asked for port 0).
    public let port: Int

    public static func start(
        host: String, port: Int, metrics: Metrics, status: @escaping @Sendable () -> String,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> MetricsServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(metrics: metrics, status: status))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsServer(channel: channel, port: channel.localAddress?.port ?? port)
    }

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    public func stop() async throws { try await channel.close() }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let metrics: Metrics
        let status: @Sendable () -> String
        var path: String?

        init(metrics: Metrics, status: @escaping @Sendable () -> String) {
            self.metrics = metrics
            self.status = status
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): path = head.method == .GET ? head.uri : nil
            case .body: break
            case .end:
                let (code, type, body): (HTTPResponseStatus, String, String) =
                    switch path?.split(separator: "?").first {
                    case "/metrics": (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
                    case "/": (.ok, "text/html; charset=utf-8", dashboard())
                    default: (.notFound, "text/plain", "not found\n")
                    }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: type)
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                headers.add(name: "Connection", value: "close")
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: code, headers: headers))),
                    promise: nil)
                context.write(
                    wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            }
        }

        func dashboard() -> String {
            let escaped = status().replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(
                of: "<", with: "&lt;")
            return """
                <!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
                <title>Veil coordinator</title><style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}</style>
                </head><body><h1>Veil coordinator</h1><pre>\(escaped)</pre><p><a href="/metrics">/metrics</a></p></body></html>
                """
        }
    }
}
