import Foundation
import VeilCore
import VeilCrypto
import VeilLearning
import VeilWire

/// The participant's side of an asynchronous federation (`Specs/wire.md` §4.4): it keeps the
/// last model offered, trains on it when it can — connected or not — and holds one update
/// until a session uses it.
extension ParticipantAgent {
    /// Answers an offer: the update it holds, if the offer's version leaves it within the
    /// offer's staleness, or else a new one trained on the offered model; a Decline when it
    /// cannot train (nil: nothing to say).
    func answer(_ offer: Veil_V1_ModelOffer, tally: Tally) -> Veil_V1_ParticipantMessage? {
        guard offer.version <= Self.maxVersion else {
            logger.warning("an offer of an impossible model version", metadata: ["version": "\(offer.version)"])
            return nil
        }
        // Checked before it is kept: an offer that cannot be trained on must not be stored and
        // tried again at every start.
        let plan = offer.training
        guard
            (try? FederatedModel(plan.model, featureCount: Int(plan.features), classCount: Int(plan.classes))) != nil
        else {
            logger.warning(
                "an offer of a model this participant cannot read", metadata: ["version": "\(offer.version)"])
            return nil
        }
        do { try asynchronous.record(offer) } catch {
            logger.error("cannot keep the model offered", metadata: ["error": "\(error)"])
        }
        if let held = asynchronous.held {
            // Within the coordinator's staleness and this participant's own, for this model.
            let limit = UInt64(min(Int(offer.maxStaleness), configuration.policy.maxStaleness))
            let why: String
            if held.model != offer.training.model {
                why = "the held update is for another model: training again"
            } else if held.baseVersion > offer.version {
                why = "the held update is from a version after the one offered: training again"
            } else if offer.version - held.baseVersion > limit {
                why = "the held update is too stale: training again"
            } else if limit == 0, held.offerDigest != Hex.encode(offer.digest) {
                // A staleness of 0 asks for an update of this very offer: how the coordinator
                // brings split groups together (Specs/wire.md §4.4).
                why = "the offer asks for an update of itself: training again"
            } else {
                return ready(held)
            }
            logger.info(
                "\(why)", metadata: ["base_version": "\(held.baseVersion)", "version": "\(offer.version)"])
            do { try asynchronous.discard() } catch {
                logger.error("cannot remove the stale update", metadata: ["error": "\(error)"])
            }
        }
        let started = ContinuousClock.now
        do {
            let update = try trainOn(offer)
            tally.add(training: seconds(since: started))
            return ready(update)
        } catch {
            logger.warning(
                "cannot train on the model offered",
                metadata: ["version": "\(offer.version)", "code": "\(error.code.name)", "reason": "\(error.reason)"])
            tally.decline(error)
            return .with {
                $0.decline = .with {
                    $0.round = offer.version + 1
                    $0.code = error.code
                    $0.reason = error.reason
                }
            }
        }
    }

    /// Trains on the last model offered when it holds no update: while the coordinator is out
    /// of reach (or before the first connection after a restart), as a device offline would.
    func trainOffline(tally: Tally) {
        guard asynchronous.held == nil, let offer = asynchronous.offer else { return }
        let started = ContinuousClock.now
        do {
            _ = try trainOn(offer)
            tally.add(training: seconds(since: started))
            logger.info("trained offline on the last model offered", metadata: ["version": "\(offer.version)"])
        } catch {
            logger.warning(
                "cannot train offline", metadata: ["version": "\(offer.version)", "reason": "\(error.reason)"])
        }
    }

    /// The largest model version a participant accepts: far beyond any federation (a version
    /// is a completed round), and far from overflowing the round number v + 1.
    static let maxVersion: UInt64 = 1 << 62

    /// Trains on `offer`'s model and holds the update. Under DP-SGD the training is charged to
    /// the example-level ledger when the update is spent (``heldExampleLevelCost()``), not now:
    /// a coordinator that offers again and again makes the participant train, never pay for
    /// updates that are not released. One that would pass `dp_sgd.epsilon` is declined before
    /// it starts.
    func trainOn(_ offer: Veil_V1_ModelOffer) throws(Declined) -> HeldUpdate {
        // A stored offer too: one written by hand, or kept from a hostile coordinator, must not
        // trap the participant at every start.
        guard offer.version <= Self.maxVersion else {
            throw Declined(.declineTraining, "the offered version \(offer.version) is above 2^62")
        }
        _ = try exampleLevelCost(offer.training)
        // No session exists yet: the minibatch order comes from the operating system, so an
        // offer repeated by the coordinator is trained differently each time.
        var system = SystemRandom()
        var update = try training {
            try train(offer.training, model: offer.model, round: offer.version + 1, seed: system.next())
        }
        update.baseVersion = offer.version
        update.offerDigest = Hex.encode(offer.digest)
        update.exampleLevel = configuration.dpSgd.map {
            ExampleLevelTraining(
                privacy: $0.privacy, batchSize: Int(offer.training.batchSize), epochs: Int(offer.training.localEpochs))
        }
        do { try asynchronous.hold(update) } catch {
            throw Declined(.declineTraining, "cannot keep the trained update: \(error)")
        }
        return update
    }

    private func ready(_ held: HeldUpdate) -> Veil_V1_ParticipantMessage {
        .with {
            $0.ready = .with {
                $0.baseVersion = held.baseVersion
                $0.offerDigest = Data((try? Hex.decode(held.offerDigest)) ?? [])
            }
        }
    }
}
