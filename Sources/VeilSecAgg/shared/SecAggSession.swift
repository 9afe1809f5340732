import VeilCore
import VeilCrypto

/// One run of the protocol: its parameters, the roster of identity keys, and the session id
/// that binds every message to both.
///
///     session id = SHA-256("veil/v1/secagg/session" ‖ 0x00 ‖ nonce (32) ‖ LE_4(n) ‖ LE_4(t) ‖ LE_4(k)
///                          ‖ LE_1(b) ‖ LE_4(d) ‖ LE_1(adversary) ‖ server key ‖ key_1 ‖ … ‖ key_n
///                          ‖ context (32))
///
/// Participants handed different rosters, parameters or contexts compute different session
/// ids, so their signatures do not verify for each other and the run aborts rather than
/// diverge. The context is what the round asks of the inputs (the service puts the digest of
/// the round's model and plans there): a server cannot give one participant a different task.
public struct SecAggSession: Sendable {
    /// The size of the coordinator's nonce.
    public static let nonceByteCount = 32
    /// The size of the context: a SHA-256 digest of the round's plan.
    public static var contextByteCount: Int { SHA256.digestByteCount }

    public let parameters: SecAggParameters
    public let serverIdentity: Ed25519.PublicKey
    /// Identity keys of participants 1…n, in order.
    public let clientIdentities: [Ed25519.PublicKey]
    /// The coordinator's fresh 32-byte nonce for this run.
    public let nonce: [UInt8]
    /// 32 bytes every participant must agree on besides the parameters: the round's plan.
    public let context: [UInt8]
    /// The session id.
    public let id: [UInt8]
    /// The neighbour graph derived from the session id.
    public let graph: NeighborGraph

    /// Creates a session.
    /// - Throws: ``SecAggSessionError`` when the roster size or nonce length is wrong.
    public init(
        parameters: SecAggParameters, serverIdentity: Ed25519.PublicKey, clientIdentities: [Ed25519.PublicKey],
        nonce: [UInt8], context: [UInt8]
    ) throws(SecAggSessionError) {
        guard clientIdentities.count == parameters.clientCount else {
            throw .rosterSize(expected: parameters.clientCount, actual: clientIdentities.count)
        }
        guard nonce.count == Self.nonceByteCount else { throw .nonceLength(nonce.count) }
        guard context.count == Self.contextByteCount else { throw .contextLength(context.count) }
        self.parameters = parameters
        self.serverIdentity = serverIdentity
        self.clientIdentities = clientIdentities
        self.nonce = nonce
        self.context = context
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/secagg/session".utf8) + [0])
        writer.raw(nonce)
        writer.u32(UInt32(parameters.clientCount))
        writer.u32(UInt32(parameters.threshold))
        writer.u32(UInt32(parameters.neighborCount))
        writer.u8(UInt8(parameters.bitWidth.bits))
        writer.u32(UInt32(parameters.dimension))
        writer.u8(parameters.threatModel.adversary.rawValue)
        writer.raw(serverIdentity.rawRepresentation)
        for key in clientIdentities { writer.raw(key.rawRepresentation) }
        writer.raw(context)
        id = SHA256.hash(writer.bytes)
        graph = NeighborGraph(
            sessionID: id, clientCount: parameters.clientCount, neighborCount: parameters.neighborCount)
    }

    /// Participants 1…n.
    public var participants: [ParticipantID] { (1...parameters.clientCount).map { ParticipantID(UInt32($0)) } }

    /// The identity key of party `party` (0 is the server), or nil if there is no such party.
    public func identity(of party: UInt32) -> Ed25519.PublicKey? {
        if party == SignedMessage.server { return serverIdentity }
        guard party >= 1, Int(party) <= clientIdentities.count else { return nil }
        return clientIdentities[Int(party) - 1]
    }

    /// Whether `party` is a participant of this session.
    func isParticipant(_ party: UInt32) -> Bool { party >= 1 && Int(party) <= parameters.clientCount }

    /// How many matching R3 signatures a participant needs before it reveals anything: t.
    public var consistencyQuorum: Int { parameters.threshold }

    /// The Shamir scheme of the session: t of n, shares at participant ids.
    var shamir: ShamirSecretSharing {
        try! ShamirSecretSharing(threshold: parameters.threshold, shareCount: parameters.clientCount)  // 1 ≤ t ≤ n
    }
}

/// Why a session could not be formed.
public enum SecAggSessionError: Error, Hashable, Sendable, CustomStringConvertible {
    case rosterSize(expected: Int, actual: Int)
    case nonceLength(Int)
    case contextLength(Int)
    case unknownParticipant(UInt32)
    case identityMismatch(UInt32)
    case inputShape(expectedBits: Int, expectedDimension: Int, bits: Int, dimension: Int)

    public var description: String {
        switch self {
        case .rosterSize(let expected, let actual): "roster of \(actual) identities for \(expected) participants"
        case .nonceLength(let n): "session nonce of \(n) bytes, expected \(SecAggSession.nonceByteCount)"
        case .contextLength(let n): "session context of \(n) bytes, expected \(SecAggSession.contextByteCount)"
        case .unknownParticipant(let id): "participant \(id) is not in the roster"
        case .identityMismatch(let id): "the identity key given for participant \(id) is not the roster's"
        case .inputShape(let b, let d, let bits, let dimension):
            "input over Z_2^\(bits) of length \(dimension), expected Z_2^\(b) of length \(d)"
        }
    }
}
