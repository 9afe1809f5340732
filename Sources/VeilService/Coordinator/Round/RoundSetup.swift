import Foundation
import VeilCore
import VeilCrypto
import VeilPaillier
import VeilPrivacy
import VeilSecAgg
import VeilWire

/// A member of a round's cohort, as registered.
struct RoundMember: Sendable {
    let identity: FederationIdentity
    /// The masking policy the participant declared: the session is planned to meet it (the
    /// participant checks every assignment against its own copy anyway).
    let policy: SecAggPolicy?

    var id: String { identity.id }
}

/// The coordinator's certificate and signing key: what it signs a session with.
struct CoordinatorCredentials: Sendable {
    let identity: FederationIdentity
    let signingKey: Ed25519.PrivateKey
}

/// The key the key holder announced, with its certificate (Paillier rounds).
struct KeyHolderKey: Sendable {
    let identity: FederationIdentity
    let statement: PaillierKeyStatement
}

/// A threshold key holder that announced its share, with its certificate.
struct ThresholdHolderKey: Sendable {
    let identity: FederationIdentity
    let statement: ThresholdShareStatement
}

/// Who decrypts a Paillier round, as the coordinator knows them: the one key holder and its
/// signed key, or the threshold key and the holders (by number) that announced their shares.
enum KeyHolding: Sendable {
    case single(KeyHolderKey)
    case threshold(ThresholdPaillierPublicKey, holders: [Int: ThresholdHolderKey])

    var publicKey: PaillierPublicKey {
        switch self {
        case .single(let holder): holder.statement.publicKey
        case .threshold(let key, _): key.publicKey
        }
    }

    /// The one key holder, if that is who decrypts.
    var single: KeyHolderKey? {
        if case .single(let holder) = self { return holder }
        return nil
    }

    /// Holder number → id (the one key holder is number 1).
    var ids: [Int: String] {
        switch self {
        case .single(let holder): [1: holder.identity.id]
        case .threshold(_, let holders): holders.mapValues(\.identity.id)
        }
    }

    var decryptors: PaillierDecryptors {
        switch self {
        case .single(let holder): .keyHolder(holder.identity.signingKey)
        case .threshold(let key, let holders):
            .threshold(ThresholdKeyHolders(key: key, signingKeys: holders.mapValues(\.identity.signingKey)))
        }
    }

    /// The threshold holders as plans and requests name them, by number.
    var wireHolders: [Veil_V1_ThresholdHolder] {
        guard case .threshold(_, let holders) = self else { return [] }
        return holders.keys.sorted().map { number in
            .with {
                $0.holder = UInt32(number)
                $0.certificate = Data(holders[number]!.identity.certificateDER)
                $0.signature = Data(holders[number]!.statement.signature)
            }
        }
    }
}

extension RoundMachine {
    /// A masking round: parameters for the cohort, the session from the roster's certificates,
    /// every member's assignment (returned as `.send` actions, then the first deadline).
    /// - Throws: ``ConfigurationError`` when no session meets the coordinator's threat model,
    ///   every member's policy and the noise floor.
    static func masking(
        number: Int, attempt: Int, members: [RoundMember], task: RoundTask, threatModel: ThreatModel,
        coordinator: CoordinatorCredentials, nonce: [UInt8], deadlines: RoundDeadlines
    ) throws -> (RoundMachine, [RoundAction]) {
        let distributed = task.distributed
        let parameters = try sessionParameters(
            clientCount: members.count, bitWidth: BitWidth(distributed?.bitWidth.bits ?? task.codec.bitWidth.bits),
            dimension: distributed?.paddedDimension ?? task.dimension, threatModel: threatModel,
            policies: members.compactMap(\.policy), noiseShares: distributed?.minimumParticipants)
        let session = try SecAggSession(
            parameters: parameters, serverIdentity: coordinator.signingKey.publicKey,
            clientIdentities: members.map(\.identity.signingKey), nonce: nonce, context: task.digest)
        let release = try distributed.map { mechanism in
            DistributedRelease(mechanism: mechanism, rotation: try ServicePrivacyPlan.rotation(task.distributedPlan!))
        }
        var machine = RoundMachine(
            number: number, attempt: attempt, cohort: members.map(\.id), codec: task.codec,
            subset: task.compression.subset, deadlines: deadlines,
            backend: .masking(
                Masking(
                    server: try SecAggServer(session: session, identityKey: coordinator.signingKey),
                    distributed: release)),
            sessionID: session.id)
        machine.auditedSession = AuditedSession(
            session: session, members: members.map { ($0.id, $0.identity.certificateDER) }, plan: task.encodedPlan)

        let description = Veil_V1_SecAggSessionDescription.with {
            $0.clientCount = UInt32(parameters.clientCount)
            $0.threshold = UInt32(parameters.threshold)
            $0.neighborCount = UInt32(parameters.neighborCount)
            $0.bits = UInt32(parameters.bitWidth.bits)
            $0.dimension = UInt32(parameters.dimension)
            $0.adversary = UInt32(parameters.threatModel.adversary.rawValue)
            $0.corruptFraction = parameters.threatModel.corruptFraction
            $0.dropoutFraction = parameters.threatModel.dropoutFraction
            $0.securityBits = UInt32(parameters.threatModel.securityBits)
            $0.nonce = Data(session.nonce)
            $0.coordinatorCertificate = Data(coordinator.identity.certificateDER)
            $0.rosterSigningKeys = members.map { Data($0.identity.signingKey.rawRepresentation) }
        }
        var actions: [RoundAction] = []
        for (id, position) in machine.positions.sorted(by: { $0.value < $1.value }) {
            var assignment = task.assignment(number: number, position: position, deadlines: deadlines)
            assignment.session = description
            // Each member gets its neighbours' certificates only: it checks them against the CA.
            assignment.session.neighborCertificates = session.graph.neighbors(of: position).map { neighbor in
                Veil_V1_PositionedCertificate.with {
                    $0.position = neighbor.rawValue
                    $0.certificate = Data(members[Int(neighbor.rawValue) - 1].identity.certificateDER)
                }
            }
            if let plan = task.distributedPlan { assignment.distributedDp = plan }
            actions.append(.send(.with { $0.assignment = assignment }, to: id))
        }
        let started = machine.start()
        return (machine, actions + started)
    }

    /// A masked Paillier round (`Specs/paillier.md` §6.1, §6.3): the key the key holder (or
    /// the threshold holders) announced, the packing (K = the largest cohort), the roster's
    /// certificates; every member's assignment, then the collection deadline.
    static func paillier(
        number: Int, attempt: Int, members: [RoundMember], task: RoundTask, maxAddends: Int, keyHolding: KeyHolding,
        coordinator: CoordinatorCredentials, nonce: [UInt8], deadlines: RoundDeadlines
    ) throws -> (RoundMachine, [RoundAction]) {
        let key = keyHolding.publicKey
        let packing = try PaillierPacking(bitWidth: task.codec.bitWidth, maxAddends: maxAddends, keyBits: key.bits)
        let session = try PaillierSession(
            publicKey: key, packing: packing, dimension: task.dimension, round: UInt64(number), nonce: nonce,
            decryptors: keyHolding.decryptors, coordinator: coordinator.signingKey.publicKey,
            roster: members.map(\.identity.signingKey), context: task.digest)
        let rosterCertificates = members.map { Data($0.identity.certificateDER) }
        var machine = RoundMachine(
            number: number, attempt: attempt, cohort: members.map(\.id), codec: task.codec,
            subset: task.compression.subset, deadlines: deadlines,
            backend: .paillier(
                PaillierCollection(
                    session: session,
                    aggregator: PaillierAggregator(publicKey: key, packing: packing, dimension: task.dimension),
                    rosterCertificates: rosterCertificates,
                    coordinatorCertificate: Data(coordinator.identity.certificateDER),
                    signingKey: coordinator.signingKey, keyHolders: keyHolding.ids,
                    wireHolders: keyHolding.wireHolders)),
            sessionID: session.id)
        let plan = Veil_V1_PaillierPlan.with {
            $0.modulus = Data(key.bigEndianBytes)
            $0.bits = UInt32(packing.bitWidth.bits)
            $0.maxAddends = UInt32(maxAddends)
            $0.dimension = UInt32(task.dimension)
            switch keyHolding {
            case .single(let keyHolder):
                $0.keySignature = Data(keyHolder.statement.signature)
                $0.keyHolderCertificate = Data(keyHolder.identity.certificateDER)
            case .threshold(let thresholdKey, _):
                $0.thresholdKey = Data(thresholdKey.canonicalEncoding)
                $0.thresholdHolders = keyHolding.wireHolders
            }
            $0.nonce = Data(nonce)
            $0.coordinatorCertificate = Data(coordinator.identity.certificateDER)
            $0.rosterCertificates = rosterCertificates
            $0.coordinatorSignature = Data(coordinator.signingKey.signature(for: session.announcement))
        }
        machine.auditedPaillier = AuditedPaillierSession(
            keyHolding: keyHolding, assignmentSignature: Array(plan.coordinatorSignature),
            members: members.map { ($0.id, $0.identity.certificateDER) }, plan: task.encodedPlan)
        var actions: [RoundAction] = []
        for (id, position) in machine.positions.sorted(by: { $0.value < $1.value }) {
            var assignment = task.assignment(number: number, position: position, deadlines: deadlines)
            assignment.paillier = plan
            actions.append(.send(.with { $0.assignment = assignment }, to: id))
        }
        let started = machine.start()
        return (machine, actions + started)
    }

    /// The session's parameters for a cohort of n: the coordinator's recommendation (its own
    /// threat model), raised until every member's declared policy is met — the complete graph
    /// when a member requires the malicious model, t the largest threshold any member, the
    /// coordinator or the distributed-DP noise floor requires. (A sparse graph caps t at k + 1:
    /// a sum needs t responders among one participant's neighbours.) Members whose smallest
    /// cohort exceeds n are not planned for; they will decline.
    /// - Throws: ``ConfigurationError`` when no threshold meets them all.
    static func sessionParameters(
        clientCount n: Int, bitWidth: BitWidth, dimension: Int, threatModel: ThreatModel, policies: [SecAggPolicy],
        noiseShares: Int?
    ) throws -> SecAggParameters {
        if let noiseShares, noiseShares > n {
            throw ConfigurationError("privacy.min_contributors \(noiseShares) exceeds the cohort of \(n)")
        }
        let recommended = try SecAggParameters.recommended(
            clientCount: n, bitWidth: bitWidth, dimension: dimension, threatModel: threatModel)
        let planned = policies.filter { n >= $0.minimumCohort }
        func requirement(_ k: Int) -> Int? {
            guard var t = SecAggParameters.minimumThreshold(clientCount: n, neighborCount: k, threatModel: threatModel)
            else { return nil }
            for policy in planned {
                guard let required = policy.requiredThreshold(clientCount: n, neighborCount: k) else { return nil }
                t = max(t, required)
            }
            t = max(t, noiseShares ?? 0)
            return t <= k + 1 ? t : nil
        }
        var k = recommended.neighborCount
        var t = requirement(k)
        if t == nil && k < n - 1 {
            k = n - 1
            t = requirement(k)
        }
        guard let t else {
            throw ConfigurationError(
                "no threshold for \(n) participants meets the coordinator's threat model, every member's declared policy and the noise floor \(noiseShares ?? 0)"
            )
        }
        return try SecAggParameters(
            clientCount: n, threshold: t, neighborCount: k, bitWidth: bitWidth, dimension: dimension,
            threatModel: threatModel)
    }
}
