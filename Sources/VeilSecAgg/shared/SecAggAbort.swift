import VeilCore

/// Why a party stopped, and how far the failure reaches (swift-nio-http2's stream versus
/// connection errors): a participant's abort ends its own part; a server abort ends the round.
public struct SecAggAbort: Error, Hashable, Sendable, CustomStringConvertible {
    /// The round in which it happened.
    public let round: SecAggRound
    /// What happened.
    public let reason: AbortReason

    public init(round: SecAggRound, reason: AbortReason) {
        self.round = round
        self.reason = reason
    }

    public var description: String { "aborted in \(round): \(reason)" }
}

/// The reasons a participant or the server aborts. ``code`` names each for vectors and logs.
public enum AbortReason: Error, Hashable, Sendable, CustomStringConvertible {
    // A participant's checks on the server's messages.
    case wrongSession
    case wrongRound(expected: SecAggRound, received: SecAggRound)
    case wrongSender(UInt32)
    case wrongRecipient(UInt32)
    case invalidSignature(signer: UInt32)
    case malformed(String)
    case notEnoughNeighbors(have: Int, need: Int)
    case unexpectedPeer(UInt32)
    case weakPeerKey(UInt32)
    case invalidKeyProof(UInt32)
    case survivorListsOverlap(ParticipantID)
    case inconsistentSurvivorLists(String)
    case listedAsDropped
    case notEnoughConsistencySignatures(have: Int, need: Int)
    case finished
    // The server's.
    case tooFewSurvivors(have: Int, need: Int)
    case cannotReconstruct(owner: ParticipantID, have: Int, need: Int)
    case reconstructionMismatch(owner: ParticipantID)

    /// A stable name, used in vector files and metrics.
    public var code: String {
        switch self {
        case .wrongSession: "wrongSession"
        case .wrongRound: "wrongRound"
        case .wrongSender: "wrongSender"
        case .wrongRecipient: "wrongRecipient"
        case .invalidSignature: "invalidSignature"
        case .malformed: "malformed"
        case .notEnoughNeighbors: "notEnoughNeighbors"
        case .unexpectedPeer: "unexpectedPeer"
        case .weakPeerKey: "weakPeerKey"
        case .invalidKeyProof: "invalidKeyProof"
        case .survivorListsOverlap: "survivorListsOverlap"
        case .inconsistentSurvivorLists: "inconsistentSurvivorLists"
        case .listedAsDropped: "listedAsDropped"
        case .notEnoughConsistencySignatures: "notEnoughConsistencySignatures"
        case .finished: "finished"
        case .tooFewSurvivors: "tooFewSurvivors"
        case .cannotReconstruct: "cannotReconstruct"
        case .reconstructionMismatch: "reconstructionMismatch"
        }
    }

    public var description: String {
        switch self {
        case .wrongSession: "the message belongs to another session"
        case .wrongRound(let expected, let received): "expected a message of \(expected), received one of \(received)"
        case .wrongSender(let party): "the message claims sender \(party)"
        case .wrongRecipient(let party): "the message is addressed to \(party)"
        case .invalidSignature(let signer): "the signature of party \(signer) does not verify"
        case .malformed(let why): why
        case .notEnoughNeighbors(let have, let need): "\(have) of the neighbourhood remain, \(need) needed"
        case .unexpectedPeer(let peer): "party \(peer) is not an expected neighbour (or appears twice)"
        case .weakPeerKey(let peer): "participant \(peer) advertised a key of small order"
        case .invalidKeyProof(let peer): "participant \(peer)'s proof that it knows its encryption key does not verify"
        case .survivorListsOverlap(let id): "participant \(id) is listed both as survivor and as dropped"
        case .inconsistentSurvivorLists(let why): "the survivor lists are inconsistent: \(why)"
        case .listedAsDropped: "the server lists this participant as dropped"
        case .notEnoughConsistencySignatures(let have, let need):
            "\(have) matching consistency signatures, \(need) needed"
        case .finished: "the participant has finished or aborted already"
        case .tooFewSurvivors(let have, let need): "\(have) participants remain, \(need) needed"
        case .cannotReconstruct(let owner, let have, let need):
            "\(have) shares of participant \(owner)'s secret arrived, \(need) needed"
        case .reconstructionMismatch(let owner):
            "a reconstructed secret of participant \(owner) does not match its commitment: a revealed share is wrong"
        }
    }
}
