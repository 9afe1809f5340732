import Foundation
import VeilPaillier
import VeilSecAgg
import VeilWire

/// Who is connected to the coordinator: each participant's stream (one per id; a newer one
/// replaces the older, which is told so and closed), the key holders' streams and the key they
/// announced, and each holder's message budget. Streams are outboxes; nothing here blocks.
struct ConnectionRegistry {
    struct Connection {
        let identity: FederationIdentity
        let outbox: AsyncStream<Veil_V1_CoordinatorMessage>.Continuation
        let hello: Veil_V1_Hello
        /// Tells this stream from an earlier or later one under the same id.
        let generation: Int
        /// Asynchronous federations: the model version the update this participant holds was
        /// trained from, as it announced (nil: it holds none, or has not said so on this stream).
        var heldBase: UInt64?
        /// The digest of the offer that update was trained on, as it announced.
        var heldOffer: [UInt8] = []
        /// The last model version offered on this stream: a participant that announces a stale
        /// update again is not sent the whole model again for it.
        var offered: UInt64?

        /// The masking policy the participant declared.
        var policy: SecAggPolicy? { hello.hasPolicy ? hello.policy.declared : nil }
        var member: RoundMember { RoundMember(identity: identity, policy: policy) }
    }

    enum Registration {
        case participant(generation: Int)
        /// A key holder, with the fingerprint of the key it announced.
        case keyHolder(generation: Int, fingerprint: String)
        /// The Hello was refused (and the stream told why and closed).
        case refused
    }

    /// A threshold key and the ids of its holders, holder i at index i − 1 (`serve.json`'s
    /// `threshold_key` and `key_holders`).
    struct ThresholdConfiguration {
        let key: ThresholdPaillierPublicKey
        let holders: [String]
    }

    private(set) var participants: [String: Connection] = [:]
    /// The key holders' streams, by id.
    private(set) var keyHolders: [String: Connection] = [:]
    /// The key the connected key holder announced, signed by the key its certificate binds.
    private(set) var paillierKey: KeyHolderKey?
    /// Threshold mode: each holder that announced its share, by number (a round names those
    /// connected when it is planned).
    private(set) var thresholdHolders: [Int: ThresholdHolderKey] = [:]
    let threshold: ThresholdConfiguration?
    /// Each holder's token bucket, by id: kept across reconnections, so that reconnecting does
    /// not refill it.
    private var buckets: [String: TokenBucket] = [:]
    /// Each holder's budget of answers to its refused messages (``TokenBucket/refusalReplies(now:)``).
    private var replyBuckets: [String: TokenBucket] = [:]
    private var generations = 0
    let messagesPerSecond: Double
    let messageBurst: Double

    init(messagesPerSecond: Double, messageBurst: Double, threshold: ThresholdConfiguration? = nil) {
        self.messagesPerSecond = messagesPerSecond
        self.messageBurst = messageBurst
        self.threshold = threshold
    }

    /// Who would decrypt a round planned now, or nil while too few key holders are connected.
    var keyHolding: KeyHolding? {
        guard let threshold else {
            guard let key = paillierKey, keyHolders[key.identity.id] != nil else { return nil }
            return .single(key)
        }
        // The holders connected now: one that has left (or whose certificate has since expired
        // and who cannot reconnect) is not named, so that participants are not asked to check
        // it (review, helper-22).
        let connected = thresholdHolders.filter { keyHolders[$0.value.identity.id] != nil }
        guard connected.count >= threshold.key.threshold else { return nil }
        return .threshold(threshold.key, holders: connected)
    }

    /// Why ``keyHolding`` is nil, for the registration failure.
    var keyHoldingShortfall: String {
        guard let threshold else { return "the key holder is not connected" }
        return "\(keyHolders.count) of the \(threshold.key.threshold) threshold key holders needed are connected"
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
        guard let statement = announcement(identity, hello) else {
            let expected =
                threshold == nil
                ? "its Paillier key, signed by its certified key"
                : "its share of the configured threshold key, under its number in key_holders, signed by its certified key"
            outbox.yield(.failure(.failureMalformed, "the key holder's Hello must carry \(expected)"))
            outbox.finish()
            return .refused
        }
        if let old = keyHolders[identity.id] {
            old.outbox.yield(
                .failure(.failureDuplicateConnection, "a newer connection of the key holder replaced this one"))
            old.outbox.finish()
        }
        keyHolders[identity.id] = connection
        return .keyHolder(generation: generations, fingerprint: statement)
    }

    /// Checks a key holder's announcement and keeps it; returns the announced key's fingerprint.
    private mutating func announcement(_ identity: FederationIdentity, _ hello: Veil_V1_Hello) -> String? {
        guard let threshold else {
            // The key participants will encrypt under: the key holder's own, signed by the key
            // its certificate binds (participants check the same signature).
            guard !hello.hasThresholdShare,
                let key = try? PaillierPublicKey(bigEndian: Array(hello.paillierKey.modulus)),
                case let statement = PaillierKeyStatement(publicKey: key, signature: Array(hello.paillierKey.signature)),
                statement.isSigned(by: identity.signingKey)
            else { return nil }
            paillierKey = KeyHolderKey(identity: identity, statement: statement)
            return PaillierKeyStatement.fingerprint(key)
        }
        // A threshold holder: the configured key, under its own number, signed by its certified key.
        let share = hello.thresholdShare
        let number = Int(share.holder)
        guard hello.hasThresholdShare, Array(share.key) == threshold.key.canonicalEncoding,
            (1...threshold.holders.count).contains(number), threshold.holders[number - 1] == identity.id,
            case let statement = ThresholdShareStatement(
                key: threshold.key, holder: number, signature: Array(share.signature)),
            statement.isSigned(by: identity.signingKey)
        else { return nil }
        thresholdHolders[number] = ThresholdHolderKey(identity: identity, statement: statement)
        return threshold.key.fingerprint
    }

    enum Departure {
        case participant
        case keyHolder
        /// An older stream that was already replaced: nothing changes.
        case stale
    }

    /// A stream ended.
    mutating func unregister(id: String, generation: Int) -> Departure {
        if let holder = keyHolders[id], holder.generation == generation {
            keyHolders[id] = nil
            if paillierKey?.identity.id == id { paillierKey = nil }
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
        if let holder = keyHolders[id], holder.generation == generation { return holder }
        guard let connection = participants[id], connection.generation == generation else { return nil }
        return connection
    }

    /// Takes a token from `id`'s bucket, before its message is even decoded; false when there
    /// is none (the live stream, if any, is told).
    mutating func admit(_ id: String, generation: Int, now: ContinuousClock.Instant) -> Bool {
        var bucket = buckets[id] ?? TokenBucket(rate: messagesPerSecond, burst: messageBurst, now: now)
        defer { buckets[id] = bucket }
        guard bucket.take(now: now) else {
            if let connection = connection(id, generation: generation) {
                refuse(connection, .failureRateLimited, "more than \(messagesPerSecond) messages a second", now: now)
            }
            return false
        }
        return true
    }

    /// Tells `connection` why its message was refused, while its reply budget lasts; after
    /// that refusals are only counted.
    mutating func refuse(
        _ connection: Connection, _ code: Veil_V1_FailureCode, _ why: String, now: ContinuousClock.Instant = .now
    ) {
        let id = connection.identity.id
        var bucket = replyBuckets[id] ?? .refusalReplies(now: now)
        defer { replyBuckets[id] = bucket }
        if bucket.take(now: now) { connection.outbox.yield(.failure(code, why)) }
    }

    /// Records what `id` holds (asynchronous federations), on its current stream only.
    mutating func setHeldBase(_ base: UInt64?, offer: [UInt8] = [], of id: String) {
        participants[id]?.heldBase = base
        participants[id]?.heldOffer = offer
    }

    /// Records that `id`'s current stream was offered `version`.
    mutating func setOffered(_ version: UInt64, to id: String) {
        participants[id]?.offered = version
    }

    /// Sends to a participant, if it is connected.
    func send(_ message: Veil_V1_CoordinatorMessage, to id: String) {
        participants[id]?.outbox.yield(message)
    }

    /// Sends to a key holder, if it is connected.
    func sendToKeyHolder(_ message: Veil_V1_CoordinatorMessage, id: String) {
        keyHolders[id]?.outbox.yield(message)
    }

    /// Tells every stream the federation is over and closes it.
    /// Ends every stream without a word: the participants reconnect (to the next leader).
    func closeAll() {
        for connection in Array(participants.values) + Array(keyHolders.values) { connection.outbox.finish() }
    }

    func finishAll(_ finished: Veil_V1_Finished) {
        for connection in Array(participants.values) + Array(keyHolders.values) {
            connection.outbox.yield(.with { $0.finished = finished })
            connection.outbox.finish()
        }
    }
}
