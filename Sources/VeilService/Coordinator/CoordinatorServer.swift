import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging

/// `veil serve`: the coordinator behind gRPC over HTTP/2 with mutual TLS, and its metrics port.
public enum CoordinatorServer {
    /// Where the coordinator listens, once it does.
    public struct Endpoints: Sendable {
        public let grpcPort: Int
        public let metricsPort: Int?
    }

    /// Serves the federation until it has run all its rounds; `ready` is called with the bound
    /// ports as soon as the server listens.
    public static func run(
        _ coordinator: Coordinator, logger: Logger = Logger(label: "veil.serve"),
        ready: @escaping @Sendable (Endpoints) -> Void = { _ in },
        progress: @escaping @Sendable (RoundSummary) -> Void = { _ in }
    ) async throws -> FederationSummary {
        let c = coordinator.configuration
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: c.host, port: c.port),
            transportSecurity: .mTLS(
                certificateChain: [.file(path: c.tls.certificate, format: .pem)],
                privateKey: .file(path: c.tls.key, format: .pem)
            ) {
                // Only certificates issued by the federation's CA, valid now, complete the handshake.
                $0.trustRoots = .certificates([.file(path: c.tls.ca, format: .pem)])
                $0.clientCertificateVerification = .noHostnameVerification
            },
            config: .defaults {
                $0.rpc.maxRequestPayloadSize = c.maxMessageBytes
            })
        let service = FederationService(coordinator: coordinator, ca: coordinator.ca, logger: logger)
        let server = GRPCServer(transport: transport, services: [service])
        return try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard let address = try await server.listeningAddress?.ipv4 else {
                throw ConfigurationError("the server did not start listening on \(c.host):\(c.port)")
            }
            var metricsServer: MetricsServer?
            if let port = c.metricsPort {
                metricsServer = try await MetricsServer.start(
                    host: c.host, port: port, metrics: coordinator.metrics,
                    status: { [coordinator] in
                        // The status page reads a snapshot the coordinator refreshes after each event.
                        StatusBoard.shared.text(for: coordinator)
                    })
            }
            logger.info(
                "listening",
                metadata: [
                    "grpc": "\(c.host):\(address.port)",
                    "metrics": "\(metricsServer.map { "\(c.host):\($0.port)" } ?? "off")",
                ])
            ready(Endpoints(grpcPort: address.port, metricsPort: metricsServer?.port))
            let summary = try await coordinator.run { summary in
                progress(summary)
                Task { await StatusBoard.shared.refresh(coordinator) }
            }
            // Let the final messages drain before closing.
            try? await Task.sleep(for: .milliseconds(200))
            server.beginGracefulShutdown()
            try? await metricsServer?.stop()
            return summary
        }
    }
}

/// The latest status text of each coordinator, for the synchronous HTTP handler.
final class StatusBoard: @unchecked Sendable {
    static let shared = StatusBoard()
    private let lock = NSLock()
    private var texts: [ObjectIdentifier: String] = [:]

    func text(for coordinator: Coordinator) -> String {
        lock.withLock { texts[ObjectIdentifier(coordinator)] } ?? "starting"
    }

    func refresh(_ coordinator: Coordinator) async {
        let text = await coordinator.status()
        lock.withLock { texts[ObjectIdentifier(coordinator)] = text }
    }
}
