import Foundation
import VeilCore
import VeilCrypto

extension SecAggSimulation {
    /// The masking a participant does in R2, alone: its self mask and one pairwise mask per
    /// neighbour — each an X25519 agreement and a key derivation — folded into a d-element input
    /// on `workers` threads, built by the code ``SecAggClient`` builds them with
    /// (``MaskWork/participantJobs(id:selfMaskSeed:masking:peers:sessionID:bitWidth:)``), with
    /// fresh keys. R2 also checks the neighbours' share endorsements and
    /// decrypts their shares; `veil bench secagg` reports that beside it, as R2 in all.
    /// - Returns: the best time of `repetitions`, in seconds.
    public static func participantMaskingSeconds(
        parameters: SecAggParameters, workers: Int, repetitions: Int = 3
    ) -> Double {
        let sessionID = [UInt8](repeating: 7, count: 32)
        let own = X25519.PrivateKey()
        let me = ParticipantID(1)
        let peers = (0..<parameters.neighborCount).map {
            (ParticipantID(UInt32($0 + 2)), X25519.PrivateKey().publicKey)
        }
        let seed = SecureBytes.random(count: MaskExpander.seedByteCount)
        let bitWidth = parameters.bitWidth
        var best = Double.infinity
        for _ in 0..<repetitions {
            var input = ModularVector(zeros: parameters.dimension, bitWidth: bitWidth)
            let started = ContinuousClock.now
            let jobs = MaskWork.participantJobs(
                id: me, selfMaskSeed: seed, masking: own, peers: peers, sessionID: sessionID, bitWidth: bitWidth)
            let failed = MaskWork.apply(jobs, to: &input, workers: workers)
            precondition(failed.isEmpty, "fresh X25519 keys always agree")
            best = min(best, seconds(since: started))
        }
        return best
    }
}
