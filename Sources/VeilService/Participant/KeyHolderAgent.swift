import Foundation
import Logging
import Synchronization
import VeilCore
import VeilCrypto
import VeilPaillier
import VeilWire
import X509

/// `veil keyholder`: holds the Paillier secret key of a federation whose rounds are summed by
/// Paillier encryption (`Specs/paillier.md` §6.1). It connects to the coordinator like a
/// participant (its certificate has the key-holder role), announces its public key signed by
/// its certified signing key, is never in a cohort, and decrypts a round's aggregate only when
/// it can check for itself that it is the product over the whole announced roster: a signed
/// receipt from every member, a roster of at least `minimumContributors` certified
/// participants, and a round it has not decrypted before — which it records before answering.
/// The coordinator's word counts for nothing; a partial product would decrypt to masked noise.
///
/// A threshold key holder (`Specs/paillier.md` §6.3) holds one share of a dealt key instead,
/// makes the same checks, and answers with a proved partial decryption of each ciphertext,
/// which tells nothing without t − 1 others.
public struct KeyHolderAgent: Sendable {
    public private(set) var configuration: KeyHolderConfiguration
    public let identity: FederationIdentity
    let ca: Certificate
    private let signingKey: Ed25519.PrivateKey
    private let secret: Secret
    let record: DecryptionRecord
    let logger: Logger

    /// The whole secret key, or one share of a threshold key.
    private enum Secret: Sendable {
        case whole(PaillierPrivateKey)
        case share(ThresholdKeyShare)
    }

    public init(configuration: KeyHolderConfiguration, logger: Logger? = nil) throws {
        self.configuration = configuration
        (ca, identity, signingKey) = try configuration.tls.credentials(role: .keyHolder)
        func read(_ path: String, _ what: String) throws -> Data {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("cannot read the \(what) \(path)")
            }
            return data
        }
        if let path = configuration.secretKey {
            secret = .whole(try PaillierKeyFiles.privateKey(from: try read(path, "Paillier secret key")))
        } else if let keyPath = configuration.thresholdKey, let sharePath = configuration.share {
            let key = try PaillierThresholdFiles.key(from: try read(keyPath, "threshold key"))
            guard key.publicKey.s == 1, key.hasIntersectingQuorums else {
                throw ConfigurationError(
                    "the threshold key is \(key.threshold) of \(key.holders) with s = \(key.publicKey.s); masked sessions run under s = 1 with 2t > ℓ (Specs/paillier.md §6.3)"
                )
            }
            // The holder's own check of the dealing: its share must match the dealer's v_i.
            secret = .share(try PaillierThresholdFiles.share(from: try read(sharePath, "key share"), key: key))
        } else {
            throw ConfigurationError("give secret_key, or threshold_key and share")
        }
        record = try DecryptionRecord(path: configuration.record)
        self.logger = logger ?? Logger(label: "veil.keyholder")
    }

    private var publicKey: PaillierPublicKey {
        switch secret {
        case .whole(let key): key.publicKey
        case .share(let share): share.thresholdKey.publicKey
        }
    }

    /// The key's fingerprint, which participants may pin: the public key's, or the threshold
    /// key's (`Specs/paillier.md` §6.3).
    public var fingerprint: String {
        switch secret {
        case .whole(let key): PaillierKeyStatement.fingerprint(key.publicKey)
        case .share(let share): share.thresholdKey.fingerprint
        }
    }

    /// The coordinator's port (a coordinator that picked a free port tells it late).
    public var port: Int {
        get { configuration.port }
        set { configuration.port = newValue }
    }

    /// Serves decryption requests over `link` until the coordinator finishes; returns how many
    /// it answered.
    package func run(over link: some CoordinatorLink) async throws -> Int {
        // Decryption is CPU-bound: off the cooperative pool (``ComputeThreads``).
        try await withTaskExecutorPreference(ComputeThreads.shared.taskExecutor()) { try await runSessions(link) }
    }

    private func runSessions(_ link: some CoordinatorLink) async throws -> Int {
        var failures = 0
        var answered = 0
        while true {
            do {
                let (count, finished) = try await session(link)
                answered += count
                if finished { return answered }
                failures = 0
            } catch {
                failures += 1
                logger.info("connection lost", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                if failures > configuration.reconnectAttempts { throw error }
            }
            try await Task.sleep(for: .milliseconds(min(5000, 200 * (1 << min(failures, 5)))))
        }
    }

    /// Hello, with the signed public key (or the signed statement of the share held).
    func hello() -> Veil_V1_Hello {
        .with {
            $0.protocolVersion = 1
            switch secret {
            case .whole(let key):
                let statement = PaillierKeyStatement(signing: key.publicKey, with: signingKey)
                $0.paillierKey = .with {
                    $0.modulus = Data(statement.publicKey.bigEndianBytes)
                    $0.signature = Data(statement.signature)
                }
            case .share(let share):
                let statement = ThresholdShareStatement(signing: share, with: signingKey)
                $0.thresholdShare = .with {
                    $0.key = Data(share.thresholdKey.canonicalEncoding)
                    $0.holder = UInt32(share.holder)
                    $0.signature = Data(statement.signature)
                }
            }
        }
    }

    func session(_ link: some CoordinatorLink) async throws -> (answered: Int, finished: Bool) {
        let c = configuration
        let holder = self
        return try await link.open(
            tls: c.tls, host: c.host, port: c.port, coordinator: c.coordinator, hello: hello()
        ) { messages, send in
            var answered = 0
            for try await message in messages {
                switch message.kind {
                case .decrypt(let request):
                    send(.with { $0.decrypted = holder.answer(request) })
                    answered += 1
                case .finished:
                    return (answered, true)
                case .failure(let failure):
                    holder.logger.warning("coordinator says", metadata: ["message": "\(failure.message)"])
                    if failure.code == .failureNotAParticipant { throw ParticipantError.refused(failure.message) }
                default:
                    break
                }
            }
            return (answered, false)
        }
    }

    /// Decrypts a round's aggregate, or says why not.
    public func answer(_ request: Veil_V1_DecryptRequest) -> Veil_V1_DecryptResult {
        var result = Veil_V1_DecryptResult()
        result.round = request.round
        result.nonce = request.nonce
        do {
            let (session, members) = try self.session(of: request)
            let digest = PaillierSession.aggregateDigest(request.ciphertexts.map { Array($0) })
            let aggregateDigest = Hex.encode(digest)
            // Once per round: two sums of one round over different rosters (or with fresh noise)
            // would give away their difference. The very same request again — its answer lost
            // with a connection — gets the very same sum, which tells nothing new.
            let repeated: Bool
            if let earlier = record.entry(round: request.round) {
                guard earlier.session == Hex.encode(session.id), earlier.aggregate == aggregateDigest else {
                    throw ConfigurationError(
                        "round \(request.round) was decrypted already, in another session or for another aggregate: this key holder decrypts once per round"
                    )
                }
                repeated = true
            } else {
                repeated = false
            }
            guard request.ciphertexts.count == session.plaintextCount else {
                throw ConfigurationError(
                    "\(request.ciphertexts.count) ciphertexts; the session's packing takes \(session.plaintextCount)")
            }
            let key = publicKey
            let aggregate = try request.ciphertexts.map { try key.ciphertext(bigEndian: Array($0)) }
            // Asked by the coordinator itself — its signing key, not merely its certificate.
            guard
                session.coordinator.isValidSignature(
                    Array(request.coordinatorSignature), for: session.decryptionRequest(aggregate))
            else {
                throw ConfigurationError("the request is not signed by the coordinator \(configuration.coordinator)")
            }
            let receipts = request.receipts.map {
                PaillierReceipt(
                    position: ParticipantID($0.position), ciphertextDigest: Array($0.ciphertextDigest),
                    signature: Array($0.signature))
            }
            let answer: (sum: ModularVector?, partials: [[UInt8]])
            switch secret {
            case .whole(let privateKey):
                let holder = PaillierKeyHolder(
                    privateKey: privateKey, packing: session.packing,
                    minimumContributors: configuration.minimumContributors)
                answer = (
                    try holder.decrypt(aggregate, session: session, receipts: receipts, identity: identity.signingKey)
                        .sum, []
                )
            case .share(let share):
                let holder = ThresholdSessionHolder(
                    share: share, packing: session.packing, minimumContributors: configuration.minimumContributors)
                answer = (
                    nil,
                    try holder.partiallyDecrypt(
                        aggregate, session: session, receipts: receipts, identity: identity.signingKey)
                )
            }
            // Recorded (and on disk) before the answer leaves: a crash cannot give a second chance.
            if !repeated {
                try record.append(
                    .init(
                        round: request.round, session: Hex.encode(session.id), members: members,
                        aggregate: aggregateDigest, decryptedAt: ISO8601DateFormatter().string(from: Date())))
            }
            if let sum = answer.sum {
                result.sum = sum.elements
                result.signature = Data(
                    signingKey.signature(for: session.decryptionResult(aggregateDigest: digest, sum: sum.elements)))
            } else if case .share(let share) = secret {
                // A repeated request gets fresh proofs of the very same partials (c^(2Δ·s_i) is
                // fixed by the aggregate): nothing new is revealed.
                result.holder = UInt32(share.holder)
                result.partials = answer.partials.map { Data($0) }
                result.signature = Data(
                    signingKey.signature(
                        for: session.partialDecryptionResult(
                            aggregateDigest: digest, holder: share.holder, partials: answer.partials)))
            }
            logger.info(
                repeated ? "decrypted again (the same request)" : "decrypted",
                metadata: ["round": "\(request.round)", "members": "\(members.count)"])
        } catch {
            result.refusal = "\(error)"
            logger.warning("refused to decrypt", metadata: ["round": "\(request.round)", "reason": "\(error)"])
        }
        return result
    }

    /// The session a request claims, checked: this key holder's packing, the configured
    /// coordinator, every member a distinct certified participant.
    func session(of request: Veil_V1_DecryptRequest) throws -> (PaillierSession, [String]) {
        let c = configuration
        guard Int(request.bits) <= c.bits, Int(request.maxAddends) <= c.maxAddends else {
            throw ConfigurationError(
                "the packing (b = \(request.bits), K = \(request.maxAddends)) is not the one this key holder accepts"
            )
        }
        let coordinator = try FederationIdentity(der: Array(request.coordinatorCertificate), ca: ca)
            .requiring(.coordinator)
        guard coordinator.id == c.coordinator else {
            throw ConfigurationError("the session names coordinator \(coordinator.id), not \(c.coordinator)")
        }
        var ids: [String] = []
        var roster: [Ed25519.PublicKey] = []
        for der in request.rosterCertificates {
            let member = try FederationIdentity(der: Array(der), ca: ca).requiring(.participant)
            guard !ids.contains(member.id) else { throw ConfigurationError("\(member.id) appears twice in the roster") }
            ids.append(member.id)
            roster.append(member.signingKey)
        }
        let packing = try PaillierPacking(
            bitWidth: BitWidth(Int(request.bits)), maxAddends: Int(request.maxAddends), keyBits: publicKey.bits)
        let decryptors: PaillierDecryptors
        switch secret {
        case .whole:
            guard request.thresholdHolders.isEmpty else {
                throw ConfigurationError("a threshold session; this key holder holds a whole key")
            }
            decryptors = .keyHolder(identity.signingKey)
        case .share(let share):
            // The holders the session names, each a certified key holder that signed its share
            // of this key; this one among them under its own number.
            var signingKeys: [Int: Ed25519.PublicKey] = [:]
            for entry in request.thresholdHolders {
                let holder = try FederationIdentity(der: Array(entry.certificate), ca: ca).requiring(.keyHolder)
                let number = Int(entry.holder)
                guard signingKeys[number] == nil,
                    ThresholdShareStatement(key: share.thresholdKey, holder: number, signature: Array(entry.signature))
                        .isSigned(by: holder.signingKey)
                else {
                    throw ConfigurationError(
                        "threshold holder \(number) is named twice, or did not sign its share of this key")
                }
                signingKeys[number] = holder.signingKey
            }
            guard signingKeys[share.holder] == identity.signingKey else {
                throw ConfigurationError("the session does not name this key holder as holder \(share.holder)")
            }
            decryptors = .threshold(ThresholdKeyHolders(key: share.thresholdKey, signingKeys: signingKeys))
        }
        let session = try PaillierSession(
            publicKey: publicKey, packing: packing, dimension: Int(request.dimension), round: request.round,
            nonce: Array(request.nonce), decryptors: decryptors, coordinator: coordinator.signingKey,
            roster: roster, context: Array(request.planDigest))
        return (session, ids)
    }
}

/// What a key holder has decrypted, one JSON object per line, appended and synced before each
/// answer; read back at start, so that a round is never decrypted twice, across restarts too.
final class DecryptionRecord: Sendable {
    struct Entry: Codable {
        let round: UInt64
        /// The session id, hex.
        let session: String
        /// The roster's participant ids, by position.
        let members: [String]
        /// SHA-256 of the aggregate's ciphertexts, hex.
        let aggregate: String
        let decryptedAt: String
    }

    let path: String
    private let rounds: Mutex<[UInt64: Entry]>

    init(path: String) throws {
        self.path = path
        var rounds: [UInt64: Entry] = [:]
        if let data = FileManager.default.contents(atPath: path) {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            // One strict-JSON object per line, no blank line (`Specs/audit.md` §7.3): auditors
            // read this file too, and must all read it alike.
            var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            if lines.last?.isEmpty == true { lines.removeLast() }
            for (number, line) in lines.enumerated() {
                do {
                    try ConfigurationKeys.check([UInt8](line), rules: .audit)
                    let entry = try decoder.decode(Entry.self, from: Data(line))
                    guard entry.round >= 1, Self.isDigest(entry.session), Self.isDigest(entry.aggregate) else {
                        throw ConfigurationError(
                            "round below 1, or a session or aggregate that is not 32 bytes of lower-case hex")
                    }
                    rounds[entry.round] = entry
                } catch {
                    throw ConfigurationError(
                        "the decryption record \(path), line \(number + 1), is not a record: \(error)")
                }
            }
        }
        self.rounds = Mutex(rounds)
    }

    func entry(round: UInt64) -> Entry? { rounds.withLock { $0[round] } }

    private static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Every decryption recorded, by round.
    var entries: [Entry] { rounds.withLock { $0.values.sorted { $0.round < $1.round } } }

    func append(_ entry: Entry) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = try encoder.encode(entry) + Data("\n".utf8)
        try rounds.withLock { rounds in
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw ConfigurationError("cannot create the decryption record \(path)")
                }
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
            try handle.synchronize()
            rounds[entry.round] = entry
        }
    }
}
