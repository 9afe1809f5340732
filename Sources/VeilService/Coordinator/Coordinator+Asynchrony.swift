import Foundation
import VeilWire

/// Asynchronous federations (`Specs/wire.md` §4.4): the coordinator offers the current model to
/// every participant that holds no usable update, records who announces one, and forms each
/// round's cohort from those. It never sees an update: each member weights its own by its
/// staleness before masking, and spends it on one session only.
extension Coordinator {
    /// The current model version: the rounds completed.
    var modelVersion: UInt64 { UInt64(completedRounds) }

    /// Whether `connection` may be in the next round: plannable and, in an asynchronous
    /// federation, holding an update within its staleness limit — and not left out of this
    /// round's earlier attempts: there a member that declined would otherwise be picked again
    /// at once (it re-announces its update while the others retrain theirs), and burn their
    /// fresh updates attempt after attempt. The round waits for others instead — for one
    /// `buffer_wait_seconds`, after which ``waitForBuffer`` admits them again.
    func isCandidate(_ connection: ConnectionRegistry.Connection) -> Bool {
        guard isPlannable(connection) else { return false }
        guard configuration.asynchronous != nil else { return true }
        if leftOut.round == completedRounds + 1, leftOut.ids.contains(connection.identity.id) { return false }
        guard let base = connection.heldBase, base <= modelVersion else { return false }
        return modelVersion - base <= stalenessLimit(connection)
    }

    /// A buffer's members all trained on one offer (`Specs/wire.md` §4.4): its version and digest.
    struct BufferBase: Hashable {
        let version: UInt64
        let offer: [UInt8]
    }

    /// The offer most candidates hold updates of, with how many: the next round's buffer is
    /// drawn from those alone. Ties go to the older offer — first come, first summed, as
    /// FedBuff's buffer fills in arrival order — so that a group back from being offline is
    /// not starved by one that retrains faster; then to the smaller digest.
    var bufferBase: (base: BufferBase, count: Int)? {
        var groups: [BufferBase: Int] = [:]
        for connection in registry.participants.values where isCandidate(connection) {
            groups[BufferBase(version: connection.heldBase!, offer: connection.heldOffer), default: 0] += 1
        }
        return groups.max { a, b in
            if a.value != b.value { return a.value < b.value }
            if a.key.version != b.key.version { return a.key.version > b.key.version }
            return b.key.offer.lexicographicallyPrecedes(a.key.offer)
        }.map { ($0.key, $0.value) }
    }

    /// The stalest update `connection` may contribute: `max_staleness`, or less when its
    /// participant declared less (its policy declines the rest).
    func stalenessLimit(_ connection: ConnectionRegistry.Connection) -> UInt64 {
        let configured = UInt64(configuration.asynchronous?.maxStaleness ?? 0)
        guard connection.hello.hasPolicy else { return configured }
        return min(configured, UInt64(connection.hello.policy.maxStaleness))
    }

    /// The offer of the current model and how to train on it.
    func modelOffer(maxStaleness: Int) -> Veil_V1_CoordinatorMessage {
        let number = completedRounds + 1
        return .with {
            $0.offer = .with {
                $0.version = modelVersion
                $0.model = RoundTask.broadcast(algorithm)
                $0.training = RoundTask.trainingPlan(
                    configuration, algorithm: algorithm, privacy: privacy, round: number)
                $0.maxStaleness = UInt32(maxStaleness)
            }
        }
    }

    /// Offers the current model to `ids` (those connected), forgetting what they held: a
    /// participant that still holds a usable update answers with it again. `offer` is the
    /// plain one (the configured staleness) unless given: ``waitForBuffer`` gives one of
    /// staleness 0, which no held update of another offer answers.
    func offerModel(to ids: some Sequence<String>, offer given: Veil_V1_CoordinatorMessage? = nil) {
        guard let asynchronous = configuration.asynchronous else { return }
        let offer = given ?? modelOffer(maxStaleness: asynchronous.maxStaleness)
        for id in ids where registry.participants[id] != nil {
            registry.setHeldBase(nil, of: id)
            registry.setOffered(modelVersion, to: id)
            registry.send(offer, to: id)
        }
        publishHeldUpdates()
    }

    /// After a round: its members' updates are spent (or they re-announce them), an update the
    /// new version has made too stale is replaced, and whoever holds nothing and has not been
    /// offered this version (its training failed, or it is still training an older one) gets it.
    func offerAfterRound(cohort: [String]) {
        guard configuration.asynchronous != nil else { return }
        let others = registry.participants.values.filter { connection in
            guard let base = connection.heldBase else { return connection.offered != modelVersion }
            return base > modelVersion || modelVersion - base > stalenessLimit(connection)
        }
        offerModel(to: Set(cohort).union(others.map(\.identity.id)).sorted())
    }

    /// A participant announced the update it holds.
    func noteReady(_ ready: Veil_V1_UpdateReady, from id: String) {
        guard let asynchronous = configuration.asynchronous else {
            refuseMalformed(from: id, "UpdateReady in a synchronous federation")
            return
        }
        guard ready.baseVersion <= modelVersion else {
            refuseMalformed(
                from: id, "an update trained from version \(ready.baseVersion), after the current \(modelVersion)")
            return
        }
        guard let connection = registry.participants[id] else { return }
        if modelVersion - ready.baseVersion > stalenessLimit(connection) {
            // One offer per version and stream: a small message must not fetch the whole model
            // again and again.
            guard connection.offered != modelVersion else {
                refuseMalformed(
                    from: id,
                    "an update from version \(ready.baseVersion) is staler than \(asynchronous.maxStaleness) versions; train on the version \(modelVersion) offered"
                )
                return
            }
            offerModel(to: [id])
            return
        }
        guard ready.offerDigest.count == 32 else {
            refuseMalformed(from: id, "UpdateReady names its offer by a 32-byte digest")
            return
        }
        registry.setHeldBase(ready.baseVersion, offer: Array(ready.offerDigest), of: id)
        publishHeldUpdates()
        wakeConnectionWaiters()
    }

    /// The staleness τ of each member's update, for the round about to start.
    func staleness(of cohort: [String]) -> [String: UInt64] {
        var staleness: [String: UInt64] = [:]
        for id in cohort {
            if let base = registry.participants[id]?.heldBase { staleness[id] = modelVersion - min(base, modelVersion) }
        }
        return staleness
    }

    func publishHeldUpdates() {
        metrics.set("veil_held_updates", Double(registry.participants.values.count { $0.heldBase != nil }))
    }

    private func refuseMalformed(from id: String, _ why: String) {
        metrics.increment("veil_refused_messages_total", labels: ["reason": RefusalReason.malformed.rawValue])
        registry.send(.failure(.failureMalformed, why), to: id)
    }
}
