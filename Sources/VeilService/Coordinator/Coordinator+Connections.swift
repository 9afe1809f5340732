import Foundation
import VeilPaillier
import VeilWire

/// The coordinator's side of the streams: registration after Hello, the end of a stream, the
/// message budget, and each message routed to the round machine (`Specs/wire.md` §3, §8).
extension Coordinator {
    /// Registers a stream after its Hello; returns its generation (nil: refused and closed).
    package func connect(
        identity: FederationIdentity, hello: Veil_V1_Hello, outbox: AsyncStream<Veil_V1_CoordinatorMessage>.Continuation
    ) -> Int? {
        if let overloaded = shedding(identity) {
            outbox.yield(.with { $0.failure = overloaded })
            outbox.finish()
            return nil
        }
        let generation: Int
        switch registry.register(identity, hello: hello, outbox: outbox) {
        case .refused:
            metrics.increment("veil_refused_messages_total", labels: ["reason": RefusalReason.malformed.rawValue])
            return nil
        case .keyHolder(let g, let fingerprint):
            generation = g
            logger.info("key holder connected", metadata: ["id": "\(identity.id)", "fingerprint": "\(fingerprint)"])
            dispatch(.keyHolderConnected(identity.id))
        case .participant(let g):
            generation = g
            toldOverBudget.remove(identity.id)  // a new stream is told again
            let r = hello.resources
            recording("record the participant") {
                try store.recordParticipant(
                    id: identity.id, cores: Int(r.cores), memoryBytes: r.memoryBytes, battery: r.battery,
                    linkBitsPerSecond: r.linkBitsPerSecond, sampleCount: hello.sampleCount)
            }
            metrics.increment("veil_participants_registered_total")
            metrics.set("veil_participants_connected", Double(registry.participants.count))
            pulse.connections = registry.participants.count
            logger.info(
                "participant connected",
                metadata: ["id": "\(identity.id)", "connected": "\(registry.participants.count)"])
        }
        outbox.yield(
            .with {
                $0.welcome = .with {
                    $0.participantID = identity.id
                    $0.federation = configuration.federation
                    $0.nextRound = UInt64(completedRounds + 1)
                }
            })
        if stopping {
            // A leader handing over says nothing: the participant will find the next one.
            if !handsOver || completedRounds >= configuration.rounds {
                outbox.yield(.with { $0.finished = finished() })
            }
            outbox.finish()
        } else if let asynchronous = configuration.asynchronous, identity.role == .participant {
            registry.setOffered(modelVersion, to: identity.id)
            outbox.yield(modelOffer(maxStaleness: asynchronous.maxStaleness))
        }
        wakeConnectionWaiters()
        hub.changed()
        return generation
    }

    /// A stream ended.
    package func disconnect(id: String, generation: Int) {
        switch registry.unregister(id: id, generation: generation) {
        case .keyHolder:
            logger.info("key holder disconnected", metadata: ["id": "\(id)"])
            dispatch(.keyHolderDisconnected(id))
        case .participant:
            metrics.set("veil_participants_connected", Double(registry.participants.count))
            pulse.connections = registry.participants.count
            logger.info("participant disconnected", metadata: ["id": "\(id)"])
            if !storeClosed { recording("note when the participant left") { try store.touchParticipant(id) } }
            dispatch(.disconnected(id))
            hub.changed()
        case .stale: break
        }
    }

    /// Takes a token from `id`'s bucket, before its message is even decoded; false (and the
    /// sender told, the refusal counted) when there is none. The bucket outlives the stream.
    package func admitMessage(from id: String, generation: Int, now: ContinuousClock.Instant = .now) -> Bool {
        guard registry.admit(id, generation: generation, now: now) else {
            metrics.increment("veil_refused_messages_total", labels: ["reason": RefusalReason.rateLimited.rawValue])
            return false
        }
        return true
    }

    /// A message on a registered stream (already admitted by ``admitMessage(from:generation:now:)``).
    package func receive(_ message: Veil_V1_ParticipantMessage, from id: String, generation: Int) {
        guard let connection = registry.connection(id, generation: generation) else { return }
        if connection.identity.role == .keyHolder {
            if case .decrypted(let result) = message.kind { dispatch(.decryption(result, from: id)) }
            return
        }
        switch message.kind {
        case .secagg(let secagg):
            dispatch(.secagg(secagg, from: id), refusingOutsideARound: id)
        case .paillier(let contribution):
            dispatch(.contribution(contribution, from: id), refusingOutsideARound: id)
        case .decline(let decline):
            // The reason is the participant's text: bounded and on one line before it is logged.
            metrics.increment("veil_declines_total", labels: ["code": decline.code.name])
            logger.info(
                "participant declined",
                metadata: ["id": "\(id)", "code": "\(decline.code.name)", "reason": "\(loggable(decline.reason))"])
            noteDecline(decline, from: id)
            if active != nil { monitoring.attempt.declines[decline.code.name, default: 0] += 1 }
            dispatch(.declined(decline, from: id))
        case .loss(let report):
            noteLoss(report, from: id)
        case .ready(let ready):
            noteReady(ready, from: id)
        case .resources(let report):
            noteResources(report, from: id)
        case .decrypted, .hello, .authenticate, nil:
            metrics.increment("veil_refused_messages_total", labels: ["reason": RefusalReason.malformed.rawValue])
            let why =
                switch message.kind {
                case .decrypted: "only the key holder decrypts"
                case .hello: "Hello is only the first message"
                case .authenticate: "BrowserAuthentication answers the WebSocket binding's challenge, before Hello"
                default: "an empty message"
                }
            registry.refuse(connection, .failureMalformed, why)
        }
    }
}
