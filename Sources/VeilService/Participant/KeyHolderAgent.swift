import Foundation
import Logging
import VeilCore
import VeilPaillier
import VeilWire
import X509

/// `veil keyholder`: holds the Paillier secret key of a federation whose rounds are summed by
/// Paillier encryption. It connects to the coordinator like a participant (its certificate has
/// the key-holder role), is never in a cohort, and decrypts only rerandomised aggregates of at
/// least `minimumContributors` contributions (`Specs/paillier.md`, two-party mode: it rests on
/// the coordinator and the key holder not colluding).
public struct KeyHolderAgent: Sendable {
    public private(set) var configuration: KeyHolderConfiguration
    public let identity: FederationIdentity
    private let privateKey: PaillierPrivateKey
    let logger: Logger

    public init(configuration: KeyHolderConfiguration, logger: Logger? = nil) throws {
        self.configuration = configuration
        identity = try configuration.tls.credentials(role: .keyHolder).identity
        guard let data = FileManager.default.contents(atPath: configuration.secretKey) else {
            throw ConfigurationError("cannot read the Paillier secret key \(configuration.secretKey)")
        }
        privateKey = try PaillierKeyFiles.privateKey(from: data)
        self.logger = logger ?? Logger(label: "veil.keyholder")
    }

    /// The coordinator's port (a coordinator that picked a free port tells it late).
    public var port: Int {
        get { configuration.port }
        set { configuration.port = newValue }
    }

    /// Serves decryption requests until the coordinator finishes; returns how many it answered.
    public func run() async throws -> Int {
        var failures = 0
        var answered = 0
        while true {
            do {
                let (count, finished) = try await session()
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

    func session() async throws -> (answered: Int, finished: Bool) {
        let c = configuration
        var hello = Veil_V1_Hello()
        hello.protocolVersion = 1
        let holder = self
        return try await FederationStream.open(
            tls: c.tls, host: c.host, port: c.port, coordinator: c.coordinator, hello: hello
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

    /// Decrypts an aggregate, or says why not.
    public func answer(_ request: Veil_V1_DecryptRequest) -> Veil_V1_DecryptResult {
        var result = Veil_V1_DecryptResult()
        result.round = request.round
        let c = configuration
        do {
            guard Int(request.contributors) >= c.minimumContributors else {
                throw ConfigurationError(
                    "\(request.contributors) contributions; this key holder decrypts sums of at least \(c.minimumContributors)"
                )
            }
            guard Int(request.bits) == c.bits, Int(request.maxAddends) <= c.maxAddends else {
                throw ConfigurationError(
                    "the packing (b = \(request.bits), K = \(request.maxAddends)) is not the one this key holder accepts"
                )
            }
            let key = privateKey.publicKey
            let packing = try PaillierPacking(
                bitWidth: BitWidth(Int(request.bits)), maxAddends: Int(request.maxAddends), keyBits: key.bits)
            let holder = PaillierKeyHolder(
                privateKey: privateKey, packing: packing, minimumContributors: c.minimumContributors)
            let aggregate = EncryptedAggregate(
                ciphertexts: try request.ciphertexts.map { try key.ciphertext(bigEndian: Array($0)) },
                dimension: Int(request.dimension),
                contributors: (0..<Int(request.contributors)).map { ParticipantID(UInt32($0 + 1)) })
            result.sum = try holder.decrypt(aggregate).sum.elements
            logger.info(
                "decrypted", metadata: ["round": "\(request.round)", "contributors": "\(request.contributors)"])
        } catch {
            result.refusal = "\(error)"
            logger.warning("refused to decrypt", metadata: ["round": "\(request.round)", "reason": "\(error)"])
        }
        return result
    }
}
