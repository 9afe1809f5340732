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
        let (outbox, continuation) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        enum Side { case writer, reader }
        try await withThrowingTaskGroup(of: Side.self) { group in
            group.addTask {
                for await message in outbox { try await response.write(message) }
                return .writer
            }
            group.addTask {
                var generation: Int?
                // Answers to refused messages, as the coordinator budgets them (`Specs/wire.md` §8).
                var replies = TokenBucket.refusalReplies()
                do {
                    for try await bytes in request {
                        guard await coordinator.admitMessage(from: identity.id, generation: generation ?? -1) else {
                            // A registered stream is told by the coordinator; an unregistered one here.
                            if generation == nil, replies.take() {
                                continuation.yield(.failure(.failureRateLimited, "this id's message budget is spent"))
                            }
                            continue
                        }
                        let message: Veil_V1_ParticipantMessage
                        do { message = try Veil_V1_ParticipantMessage(serializedBytes: bytes) } catch {
                            coordinator.metrics.increment(
                                "veil_refused_messages_total", labels: ["reason": RefusalReason.malformed.rawValue])
                            if replies.take() {
                                continuation.yield(
                                    .failure(.failureMalformed, "a message that does not parse: \(error)"))
                            }
                            continue
                        }
                        if let generation {
                            await coordinator.receive(message, from: identity.id, generation: generation)
                            continue
                        }
                        guard case .hello(let hello) = message.kind else {
                            continuation.yield(.failure(.failureNotRegistered, "the first message must be Hello"))
                            break
                        }
                        guard hello.protocolVersion == 1 else {
                            continuation.yield(
                                .failure(
                                    .failureProtocolVersion,
                                    "protocol version \(hello.protocolVersion); this coordinator speaks 1"))
                            break
                        }
                        generation = await coordinator.connect(identity: identity, hello: hello, outbox: continuation)
                    }
                } catch {
                    logger.info("stream ended", metadata: ["id": "\(identity.id)", "error": "\(error)"])
                }
                if let generation { await coordinator.disconnect(id: identity.id, generation: generation) }
                continuation.finish()
                return .reader
            }
            // When the coordinator closes the outbox (the federation is over, or a newer stream
            // replaced this one) everything it said has been written: the stream ends without
            // waiting for the peer to hang up, so that a graceful shutdown drains promptly.
            while let side = try await group.next() {
                if side == .writer { group.cancelAll() }
            }
        }
    }
}
