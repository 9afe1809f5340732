import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import Logging
import SwiftProtobuf
import VeilService
import VeilWire
import X509

/// The gRPC side of the coordinator: authenticates each stream by its TLS client certificate,
/// reads the participant's Hello, and pumps messages between the stream and the ``Coordinator``.
///
/// The method is registered by hand, taking each request message as raw bytes: the sender's
/// token bucket is consulted before a message is decoded, so a flood of large messages costs
/// the coordinator their reception, not their parsing (`Specs/wire.md` §8).
struct FederationService: RegistrableRPCService {
    let coordinator: Coordinator
    let ca: Certificate
    let logger: Logger

    /// Hands the message's bytes over undecoded.
    struct RawBytes: MessageDeserializer {
        func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
            serializedMessageBytes.withUnsafeBytes { Array($0) }
        }
    }

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Veil_V1_Federation.Method.Participate.descriptor, deserializer: RawBytes(),
            serializer: ProtobufSerializer<Veil_V1_CoordinatorMessage>()
        ) { request, context in
            StreamingServerResponse { writer in
                try await participate(request: request.messages, response: writer, context: context)
                return [:]
            }
        }
    }

    func participate(
        request: RPCAsyncSequence<[UInt8], any Error>, response: RPCWriter<Veil_V1_CoordinatorMessage>,
        context: ServerContext
    ) async throws {
        // A stream's pumping must not wait behind CPU-bound work elsewhere in the process.
        try await withTaskExecutorPreference(ComputeThreads.streams.taskExecutor()) {
            try await pump(request: request, response: response, context: context)
        }
    }

    private func pump(
        request: RPCAsyncSequence<[UInt8], any Error>, response: RPCWriter<Veil_V1_CoordinatorMessage>,
        context: ServerContext
    ) async throws {
        // The transport verified the chain to the CA; the certificate must also carry Veil's
        // extensions and the participant role. Its subject is the id, whatever the messages say.
        let identity: FederationIdentity
        do {
            guard let posix = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
                let certificate = posix.peerCertificate
            else { throw CredentialError.notIssuedByFederation("a peer without a certificate") }
            let holder = try FederationIdentity(certificate: certificate, ca: ca)
            switch holder.role {
            case .participant: identity = holder
            case .keyHolder where coordinator.configuration.keyHolderIDs.contains(holder.id): identity = holder
            default:
                throw CredentialError.wrongRole(expected: .participant, actual: holder.role.rawValue)
            }
        } catch {
            coordinator.metrics.increment(
                "veil_refused_messages_total", labels: ["reason": RefusalReason.certificate.rawValue])
            try await response.write(.failure(.failureNotAParticipant, "\(error)"))
            throw RPCError(code: .permissionDenied, message: "\(error)")
        }
        try await ParticipantStream(coordinator: coordinator, identity: identity, logger: logger).run(
            messages: request, decode: { try Veil_V1_ParticipantMessage(serializedBytes: $0) },
            write: { try await response.write($0) })
    }
}
