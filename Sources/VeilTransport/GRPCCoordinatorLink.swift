import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import VeilService
import VeilWire
import X509

/// A client's `Participate` stream, gRPC over HTTP/2 with mutual TLS: sends Hello, then hands
/// the coordinator's messages to `body` with a way to send.
package struct GRPCCoordinatorLink: CoordinatorLink {
    /// The largest message either way: 64 MiB, the coordinator's default `max_message_bytes`.
    static let maximumMessageBytes = 64 << 20

    package init() {}

    package func open<Result: Sendable>(
        tls: TLSFiles, host: String, port: Int, coordinator: String, hello: Veil_V1_Hello,
        body: @escaping Session<Result>
    ) async throws -> Result {
        let ca = try FederationCA.loadCertificate(tls.ca)
        let transport = try HTTP2ClientTransport.Posix(
            target: .dns(host: host, port: port),
            transportSecurity: .mTLS(
                certificateChain: [.file(path: tls.certificate, format: .pem)],
                privateKey: .file(path: tls.key, format: .pem)
            ) {
                $0.trustRoots = .certificates([.file(path: tls.ca, format: .pem)])
                // The server must be *the* coordinator: its certificate issued by the federation's
                // CA, valid, with the coordinator role and the configured id as its subject. A
                // host name alone proves nothing — another holder's certificate may list
                // "coordinator" as a host, or an address the client connects to.
                $0.customVerificationCallback = { certificates, promise in
                    promise.succeed(
                        Self.isCoordinator(certificates.first, id: coordinator, ca: ca)
                            ? .certificateVerified(.init(nil)) : .failed)
                }
            },
            config: .defaults {
                // TLS server name: the coordinator's id, which its certificate names.
                $0.http2.authority = coordinator
                $0.http2.maxFrameSize = 1 << 20
                // A coordinator that stops answering (paused, cut off) is noticed within about
                // 15 s, not when the kernel gives up on the connection: the participant then
                // tries the next address (Specs/wire.md §6.2).
                $0.connection.keepalive = .init(time: .seconds(10), timeout: .seconds(5), allowWithoutCalls: true)
            })
        return try await withGRPCClient(transport: transport) { client in
            let federation = Veil_V1_Federation.Client(wrapping: client)
            let (outbound, continuation) = AsyncStream.makeStream(of: Veil_V1_ParticipantMessage.self)
            continuation.yield(.with { $0.hello = hello })
            let request = StreamingClientRequest<Veil_V1_ParticipantMessage> { writer in
                for await message in outbound { try await writer.write(message) }
            }
            // The server's limit on what a participant sends is max_message_bytes; what a
            // participant or key holder receives (a model, a roster's certificates, an
            // aggregate) may be as large.
            var options = CallOptions.defaults
            options.maxRequestMessageBytes = Self.maximumMessageBytes
            options.maxResponseMessageBytes = Self.maximumMessageBytes
            return try await federation.participate(request: request, options: options) { response in
                defer { continuation.finish() }
                return try await body(response.messages, { continuation.yield($0) })
            }
        }
    }

    /// Whether `leaf` is the federation's coordinator `id`: issued by `ca`, valid now, with
    /// Veil's extensions and the coordinator role, subject CN = `id`.
    static func isCoordinator(_ leaf: NIOSSLCertificate?, id: String, ca: Certificate) -> Bool {
        guard let leaf, let der = try? leaf.toDERBytes(), let certificate = try? Certificate(derEncoded: der),
            let identity = try? FederationIdentity(certificate: certificate, ca: ca)
        else { return false }
        return identity.role == .coordinator && identity.id == id
    }
}

extension ParticipantAgent {
    /// Takes part in the federation over gRPC with mutual TLS (``GRPCCoordinatorLink``).
    public func run() async throws -> ParticipantSummary { try await run(over: GRPCCoordinatorLink()) }
}

extension KeyHolderAgent {
    /// Serves the federation's decryptions over gRPC with mutual TLS (``GRPCCoordinatorLink``).
    public func run() async throws -> Int { try await run(over: GRPCCoordinatorLink()) }
}
