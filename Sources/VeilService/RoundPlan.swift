import Foundation
import VeilCrypto
import VeilWire

/// What every member of a round is asked to do — the broadcast model, the training plan, the
/// payload encoding and the distributed-DP plan — as one digest (`Specs/wire.md` §4):
///
///     SHA-256("veil/v1/round-plan" ‖ 0x00 ‖ protobuf encoding of RoundPlan{model, training, encoding, distributed_dp, asynchronous})
///
/// The digest is the context of the round's session id (masking and Paillier alike): members
/// handed different tasks compute different sessions and cannot complete a round together, so
/// a coordinator cannot silence all but one member's input with a degenerate plan.
enum RoundPlanDigest {
    /// The protobuf encoding of the plan: what the digest hashes, and what an audit export
    /// carries so that a verifier can read the plan the session id binds.
    static func encoded(
        model: Veil_V1_Model, training: Veil_V1_TrainingPlan, encoding: Veil_V1_PayloadEncoding,
        distributedDP: Veil_V1_DistributedDPPlan?, asynchronous: Veil_V1_AsynchronousPlan? = nil
    ) -> [UInt8] {
        var plan = Veil_V1_RoundPlan()
        plan.model = model
        plan.training = training
        plan.encoding = encoding
        if let distributedDP { plan.distributedDp = distributedDP }
        // Every member weighs its held update against the same version (§4.4).
        if let asynchronous { plan.asynchronous = asynchronous }
        // Proto3 encoding of messages without maps: fields in number order, defaults omitted.
        return (try? plan.serializedBytes()) ?? []
    }

    static func of(encoded bytes: [UInt8]) -> [UInt8] {
        SHA256.hash(Array("veil/v1/round-plan".utf8) + [0], bytes)
    }

    /// The digest of what an assignment asks.
    static func of(_ a: Veil_V1_RoundAssignment) -> [UInt8] {
        of(
            encoded: encoded(
                model: a.model, training: a.training, encoding: a.encoding,
                distributedDP: a.hasDistributedDp ? a.distributedDp : nil,
                asynchronous: a.hasAsynchronous ? a.asynchronous : nil))
    }
}
