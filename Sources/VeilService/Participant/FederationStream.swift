import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import VeilWire

/// A client's `Participate` stream over mutual TLS: sends Hello, then hands the coordinator's
/// messages to `body` with a way to send.
enum FederationStream {
    /// The largest message either way: 64 MiB, the coordinator's default `max_message_bytes`.
    static let maximumMessageBytes = 64 << 20

    static func open<Result: Sendable>(
        tls: TLSFiles, host: String, port: Int, coordinator: String, hello: Veil_V1_Hello,
        body:
            @escaping @Sendable (
                RPCAsyncSequence<Veil_V1_CoordinatorMessage, any Error>, @escaping (Veil_V1_ParticipantMessage) -> Void
            ) async throws -> Result
    ) async throws -> Result {
        let transport = try HTTP2ClientTransport.Posix(
            target: .dns(host: host, port: port),
            transportSecurity: .mTLS(
                certificateChain: [.file(path: tls.certificate, format: .pem)],
                privateKey: .file(path: tls.key, format: .pem)
            ) {
                $0.trustRoots = .certificates([.file(path: tls.ca, format: .pem)])
            },
            config: .defaults {
                // TLS server name: the coordinator's id, which its certificate names.
                $0.http2.authority = coordinator
                $0.http2.maxFrameSize = 1 << 20
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
            options.maxRequestMessageBytes = maximumMessageBytes
            options.maxResponseMessageBytes = maximumMessageBytes
            return try await federation.participate(request: request, options: options) { response in
                defer { continuation.finish() }
                return try await body(response.messages, { continuation.yield($0) })
            }
        }
    }
}
