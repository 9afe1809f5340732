import Logging
import VeilService
import VeilWire

/// One authenticated participant's stream, whatever carries it (gRPC over mutual TLS, or the
/// WebSocket binding): the Hello first, then every message admitted by the sender's token
/// bucket before it is decoded, and everything the coordinator says written back in order.
/// Both transports run this, so that the coordinator's checks are the same for both kinds of
/// participant (`Specs/wire.md` §1.1).
struct ParticipantStream {
    let coordinator: Coordinator
    let identity: FederationIdentity
    let logger: Logger

    /// Runs until the peer ends its side or the coordinator closes the stream's outbox.
    /// - Parameter decode: a message's bytes as the transport carries them (protobuf, or its
    ///   JSON mapping), decoded only after the sender's budget admitted them.
    func run<Messages: AsyncSequence<[UInt8], any Error> & Sendable>(
        messages: Messages, decode: @escaping @Sendable ([UInt8]) throws -> Veil_V1_ParticipantMessage,
        write: @escaping @Sendable (Veil_V1_CoordinatorMessage) async throws -> Void
    ) async throws {
        let (outbox, continuation) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        let (coordinator, identity, logger) = (coordinator, identity, logger)
        try await withThrowingTaskGroup(of: StreamSide.self) { group in
            group.addTask {
                for await message in outbox { try await write(message) }
                return StreamSide.writer
            }
            group.addTask {
                var generation: Int?
                // Answers to refused messages, as the coordinator budgets them (`Specs/wire.md` §8).
                var replies = TokenBucket.refusalReplies()
                do {
                    for try await bytes in messages {
                        guard await coordinator.admitMessage(from: identity.id, generation: generation ?? -1) else {
                            // A registered stream is told by the coordinator; an unregistered one here.
                            if generation == nil, replies.take() {
                                continuation.yield(.failure(.failureRateLimited, "this id's message budget is spent"))
                            }
                            continue
                        }
                        let message: Veil_V1_ParticipantMessage
                        do { message = try decode(bytes) } catch {
                            coordinator.metrics.increment(
                                "veil_refused_messages_total", labels: ["reason": RefusalReason.malformed.rawValue])
                            if replies.take() {
                                // Bounded, one line: a JSON error can quote the sender's text.
                                continuation.yield(
                                    .failure(
                                        .failureMalformed, "a message that does not parse: \(loggable("\(error)"))"))
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
                    logger.info("stream ended", metadata: ["id": "\(identity.id)", "error": "\(loggable("\(error)"))"])
                }
                if let generation { await coordinator.disconnect(id: identity.id, generation: generation) }
                continuation.finish()
                return StreamSide.reader
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

/// Which half of a stream's task group ended.
private enum StreamSide { case writer, reader }
