import Foundation
import VeilCore
import VeilCrypto

/// Folds many masks into one vector: the expanders are derived first (a pairwise one costs an
/// X25519), then ``MaskExpander/apply(_:to:workers:)`` folds them all, each worker taking a run
/// of whole chunks of the vector. Addition in Z_(2^b) is commutative, so the result does not
/// depend on the split.
enum MaskWork {
    /// One mask to fold in. Pairwise jobs carry their key agreement, so that the X25519
    /// work runs on the workers too.
    struct Job: Sendable {
        let mode: MaskExpander.Mode
        let expander: @Sendable () -> MaskExpander?

        init(expander: MaskExpander, mode: MaskExpander.Mode) {
            self.mode = mode
            self.expander = { expander }
        }

        init(mode: MaskExpander.Mode, deriving expander: @escaping @Sendable () -> MaskExpander?) {
            self.mode = mode
            self.expander = expander
        }
    }

    /// The number of workers to use: the active processor count.
    static var availableWorkers: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// A participant's masks in R2 (`Specs/secagg.md` §5): its self mask, added, then one
    /// pairwise mask per peer, in the order of `peers`, added when its id is the lower of the
    /// pair and subtracted otherwise. Job i + 1 is `peers[i]`'s.
    static func participantJobs(
        id: ParticipantID, selfMaskSeed: SecureBytes, masking: X25519.PrivateKey,
        peers: [(id: ParticipantID, key: X25519.PublicKey)], sessionID: [UInt8], bitWidth: BitWidth
    ) -> [Job] {
        [Job(expander: SecAggKeys.selfMask(seed: selfMaskSeed, sessionID: sessionID, bitWidth: bitWidth), mode: .add)]
            + peers.map { peer in
                Job(mode: SecAggKeys.adds(id, peer.id) ? .add : .subtract) {
                    guard
                        let seed = try? SecAggKeys.pairwiseSeed(
                            own: masking, peer: peer.key, sessionID: sessionID, id, peer.id)
                    else { return nil }
                    return SecAggKeys.pairwiseMask(seed: seed, sessionID: sessionID, bitWidth: bitWidth)
                }
            }
    }

    /// Folds every job's mask into `vector`, deriving the expanders on every core (on one
    /// thread when `workers` is 1) and folding on `workers` threads.
    /// - Returns: the indices of jobs whose expander could not be derived (their masks are
    ///   not applied); empty on success.
    @discardableResult
    static func apply(_ jobs: [Job], to vector: inout ModularVector, workers: Int = availableWorkers) -> [Int] {
        // parallelMap cannot throw here: deriving returns nil rather than throwing.
        let expanders = workers > 1 ? try! jobs.parallelMap { $0.expander() } : jobs.map { $0.expander() }
        let failed = expanders.indices.filter { expanders[$0] == nil }
        let masks = zip(expanders, jobs).compactMap { expander, job in expander.map { ($0, job.mode) } }
        // Every expander is over the session's ring, and so is the vector; its length is d.
        try! MaskExpander.apply(masks, to: &vector, workers: workers)
        return failed
    }
}
