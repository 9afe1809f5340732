import Foundation
import VeilPaillier
import VeilSecAgg
import VeilWire

/// Who is connected to the coordinator: each participant's stream (one per id; a newer one
/// replaces the older, which is told so and closed), the key holder's stream and the key it
/// announced, and each holder's message budget. Streams are outboxes; nothing here blocks.
struct ConnectionRegistry {
    struct Connection {
        let identity: FederationIdentity
        let outbox: AsyncStream<Veil_V1_CoordinatorMessage>.Continuation
        let hello: Veil_V1_Hello
        /// Tells this stream from an earlier or later one under the same id.
        let generation: Int

        /// The masking policy the participant declared.
        var policy: SecAggPolicy? { hello.hasPolicy ? hello.policy.declared : nil }
        var member: RoundMember { RoundMember(identity: identity, policy: policy) }
    }

    enum Registration {
        case participant(generation: Int)
        case keyHolder(generation: Int, key: PaillierKeyStatement)
        /// The Hello was refused (and the stream told why and closed).
        case refused
    }

    private(set) var participants: [String: Connection] = [:]
    private(set) var keyHolder: Connection?
    /// The key the connected key holder announced, signed by the key its certificate binds.
    private(set) var paillierKey: PaillierKeyStatement?
    /// Each holder's token bucket, by id: kept across reconnections, so that reconnecting does
    /// not refill it.
    private var buckets: [String: TokenBucket] = [:]
    private var generations = 0
    let messagesPerSecond: Double
    let messageBurst: Double

    init(messagesPerSecond: Double, messageBurst: Double) {
        self.messagesPerSecond = messagesPerSecond
        self.messageBurst = messageBurst
    }

    /// Registers a stream after its Hello; the one it replaces is told and closed.
    mutating func register(
        _ identity: FederationIdentity, hello: Veil_V1_Hello,
        outbox: AsyncStream<Veil_V1_CoordinatorMessage>.Continuation
    ) -> Registration {
        generations += 1
        let connection = Connection(identity: identity, outbox: outbox, hello: hello, generation: generations)
        guard identity.role == .keyHolder else {
            if let old = participants[identity.id] {
                old.outbox.yield(
                    .failure(.failureDuplicateConnection, "a newer connection under the same id replaced this one"))
                old.outbox.finish()
            }
            participants[identity.id] = connection
            return .participant(generation: generations)
        }
        // The key participants will encrypt under: the key holder's own, signed by the key its
        // certificate binds (participants check the same signature).
        guard let key = try? PaillierPublicKey(bigEndian: Array(hello.paillierKey.modulus)),
            case let statement = PaillierKeyStatement(publicKey: key, signature: Array(hello.paillierKey.signature)),
            statement.isSigned(by: identity.signingKey)
        else {
            outbox.yield(
                .failure(
                    .failureMalformed, "the key holder's Hello must carry its Paillier key, signed by its certified key"
                ))
            outbox.finish()
            return .refused
        }
        if let old = keyHolder {
            old.outbox.yield(
                .failure(.failureDuplicateConnection, "a newer connection of the key holder replaced this one"))
            old.outbox.finish()
        }
        keyHolder = connection
        paillierKey = statement
        return .keyHolder(generation: generations, key: statement)
    }

    enum Departure {
        case participant
        case keyHolder
        /// An older stream that was already replaced: nothing changes.
        case stale
    }

    /// A stream ended.
    mutating func unregister(id: String, generation: Int) -> Departure {
        if let holder = keyHolder, holder.identity.id == id, holder.generation == generation {
            keyHolder = nil
            paillierKey = nil
            holder.outbox.finish()
            return .keyHolder
        }
        guard let connection = participants[id], connection.generation == generation else { return .stale }
        participants[id] = nil
        connection.outbox.finish()
        return .participant
    }

    /// The live stream of `id` with this generation, if it is still the current one.
    func connection(_ id: String, generation: Int) -> Connection? {
        if let holder = keyHolder, holder.identity.id == id, holder.generation == generation { return holder }
        guard let connection = participants[id], connection.generation == generation else { return nil }
        return connection
    }

    /// Takes a token from `id`'s bucket, before its message is even decoded; false when there
    /// is none (the live stream, if any, is told).
    mutating func admit(_ id: String, generation: Int, now: ContinuousClock.Instant) -> Bool {
        var bucket = buckets[id] ?? TokenBucket(rate: messagesPerSecond, burst: messageBurst, now: now)
        defer { buckets[id] = bucket }
        guard bucket.take(now: now) else {
            connection(id, generation: generation)?.outbox.yield(
                .failure(.failureRateLimited, "more than \(messagesPerSecond) messages a second"))
            return false
        }
        return true
    }

    /// Sends to a participant, if it is connected.
    func send(_ message: Veil_V1_CoordinatorMessage, to id: String) {
        participants[id]?.outbox.yield(message)
    }

    /// Tells every stream the federation is over and closes it.
    func finishAll(_ finished: Veil_V1_Finished) {
        for connection in Array(participants.values) + (keyHolder.map { [$0] } ?? []) {
            connection.outbox.yield(.with { $0.finished = finished })
            connection.outbox.finish()
        }
    }
}
