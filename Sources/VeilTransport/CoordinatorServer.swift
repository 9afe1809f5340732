import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals
import VeilService

/// `veil serve`: the coordinator behind gRPC over HTTP/2 with mutual TLS, and its metrics
/// port, run as a swift-service-lifecycle group. The federation ending shuts the group down
/// gracefully; so does SIGTERM or SIGINT (with `stopOnSignals`): the round in flight is
/// recorded as interrupted, every stream is told the federation is over, the gRPC server
/// drains its streams, the store is closed.
public enum CoordinatorServer {
    /// Where the coordinator listens, once it does.
    public struct Endpoints: Sendable {
        public let grpcPort: Int
        public let metricsPort: Int?
    }

    /// Serves the federation until it has run all its rounds or is stopped; `ready` is called
    /// with the bound ports as soon as the server listens.
    public static func run(
        _ coordinator: Coordinator, logger: Logger = Logger(label: "veil.serve"), stopOnSignals: Bool = false,
        dashboardToken: String? = nil, holdAfterFederation: Duration = .zero,
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
                // Participants ping every 10 s to notice a coordinator that stopped answering
                // (GRPCCoordinatorLink); pings as often as every 5 s are welcome, not a reason to
                // close the connection (gRFC A8's default allows one in 5 minutes).
                $0.connection.keepalive.clientBehavior = .init(
                    minPingIntervalWithoutCalls: .seconds(5), allowWithoutCalls: true)
            })
        let service = FederationService(coordinator: coordinator, ca: coordinator.ca, logger: logger)
        let server = GRPCServer(transport: transport, services: [service])
        // Alerts go to the webhooks from the hub, whatever the HTTP port does.
        let notifier = WebhookNotifier(
            webhooks: c.monitoring?.webhooks ?? [], federation: c.federation, metrics: coordinator.metrics,
            logger: logger)
        coordinator.hub.onAlert { notifier.post($0) }
        var metricsServer: MonitoringServer?
        if let port = c.metricsPort {
            let cache = SnapshotCache(coordinator: coordinator)
            metricsServer = try await MonitoringServer.start(
                host: c.host, port: port,
                content: .init(
                    metrics: coordinator.metrics, token: try dashboardToken ?? c.monitoring?.loadToken(),
                    hub: coordinator.hub, snapshot: { await cache.json() }))
        }
        let gateway = try await BrowserGateway.start(coordinator: coordinator, logger: logger)
        let federation = FederationRun(
            coordinator: coordinator, server: server, metricsPort: metricsServer?.port, logger: logger, ready: ready,
            progress: progress, hold: holdAfterFederation)
        // Shut down in reverse order: the federation first (it tells every stream), then the
        // gRPC server (its streams drain), then the metrics port.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metricsServer { services.append(.init(service: MetricsService(server: metricsServer))) }
        if let gateway { services.append(.init(service: BrowserGatewayService(gateway: gateway))) }
        services.append(.init(service: GRPCServerService(server: server)))
        services.append(
            .init(
                service: federation, successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup))
        var configuration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: stopOnSignals ? [.sigterm, .sigint] : [], logger: logger)
        // Every stream has been told the federation is over when the gRPC server shuts down;
        // a peer that then neither reads nor closes its connection gets this long.
        configuration.maximumGracefulShutdownDuration = drainTimeout
        let group = ServiceGroup(configuration: configuration)
        // The group's run, unstructured: a connection that ignores even cancellation (a peer
        // frozen mid-stream) must not keep the process from ending once the federation has.
        let running = Task { try await group.run() }
        // Whichever comes first: the group's end, or the federation's end plus the drain time.
        let finished: Result<Void, any Error>? = await withCheckedContinuation { continuation in
            let resumed = Mutex(false)
            let finish: @Sendable (Result<Void, any Error>?) -> Void = { result in
                let first = resumed.withLock { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: result) }
            }
            Task { finish(await running.result) }
            Task {
                await federation.waitUntilEnded()
                try? await Task.sleep(for: drainTimeout * 2)
                finish(nil)
            }
        }
        // The federation's last alerts still go out, for a bounded time.
        await notifier.drain(within: .seconds(10))
        notifier.stop()
        switch finished {
        case .failure(let error)?: throw error
        case .success?: break
        case nil: logger.warning("a connection did not close after the federation ended; not waiting for it")
        }
        guard let summary = federation.summary else {
            throw ConfigurationError("the coordinator stopped before its federation ran")
        }
        return summary
    }

    /// How long a graceful shutdown waits for the gRPC streams to close.
    static let drainTimeout = Duration.seconds(5)
}

/// The federation's rounds, as a service: waits for the gRPC server to listen, runs the
/// coordinator, and on graceful shutdown interrupts the round in flight.
final class FederationRun: Service, Sendable {
    let coordinator: Coordinator
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let metricsPort: Int?
    let logger: Logger
    let ready: @Sendable (CoordinatorServer.Endpoints) -> Void
    let progress: @Sendable (RoundSummary) -> Void
    /// How long the dashboard stays up after the federation's end (`veil simulate --dashboard-hold`).
    let hold: Duration
    private let result = Mutex<FederationSummary?>(nil)
    private let (ended, endedContinuation) = AsyncStream.makeStream(of: Void.self)

    init(
        coordinator: Coordinator, server: GRPCServer<HTTP2ServerTransport.Posix>, metricsPort: Int?, logger: Logger,
        ready: @escaping @Sendable (CoordinatorServer.Endpoints) -> Void,
        progress: @escaping @Sendable (RoundSummary) -> Void, hold: Duration
    ) {
        self.hold = hold
        self.coordinator = coordinator
        self.server = server
        self.metricsPort = metricsPort
        self.logger = logger
        self.ready = ready
        self.progress = progress
    }

    var summary: FederationSummary? { result.withLock { $0 } }

    /// Returns once ``run()`` has returned or thrown.
    func waitUntilEnded() async {
        for await _ in ended {}
    }

    func run() async throws {
        defer { endedContinuation.finish() }
        let c = coordinator.configuration
        guard let address = try await server.listeningAddress?.ipv4 else {
            throw ConfigurationError("the server did not start listening on \(c.host):\(c.port)")
        }
        logger.info(
            "listening",
            metadata: [
                "grpc": "\(c.host):\(address.port)", "metrics": "\(metricsPort.map { "\(c.host):\($0)" } ?? "off")",
            ])
        ready(CoordinatorServer.Endpoints(grpcPort: address.port, metricsPort: metricsPort))
        let coordinator = coordinator
        let progress = progress
        let summary: FederationSummary
        do {
            summary = try await withGracefulShutdownHandler {
                try await coordinator.run { summary in progress(summary) }
            } onGracefulShutdown: {
                Task { await coordinator.stop(interrupting: true) }
            }
        } catch {
            await coordinator.closeStore()
            throw error
        }
        if hold > .zero {
            // The store stays open meanwhile: the dashboard reads it. A signal ends the wait.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.hold) }
        }
        logger.debug("federation over; closing the store")
        await coordinator.closeStore()
        logger.debug("store closed")
        result.withLock { $0 = summary }
    }
}

/// The gRPC server as a service: graceful shutdown stops accepting streams and waits for the
/// open ones to finish.
struct GRPCServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
        Logger(label: "veil.serve").debug("gRPC server stopped")
    }
}

/// The WebSocket binding as a service: open until the group shuts down (its streams are told
/// the federation is over by the coordinator, like gRPC's).
struct BrowserGatewayService: Service {
    let gateway: BrowserGateway

    func run() async throws {
        try? await gracefulShutdown()
        try await gateway.stop()
    }
}

/// The metrics and dashboard port as a service: open until the group shuts down.
struct MetricsService: Service {
    let server: MonitoringServer

    func run() async throws {
        try? await gracefulShutdown()
        try await server.stop()
    }
}
