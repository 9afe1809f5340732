import Foundation
import VeilCore
import VeilLearning
import VeilPrivacy
import VeilSecAgg
import VeilWire

/// What a round asks of every member — the broadcast model, the training plan, the payload
/// encoding, the distributed-DP plan — and the codec the sum is decoded with. Masking and
/// Paillier rounds ask the same; the session binds it through ``digest``.
struct RoundTask: Sendable {
    let model: Veil_V1_Model
    let training: Veil_V1_TrainingPlan
    let encoding: Veil_V1_PayloadEncoding
    let codec: FixedPointCodec
    /// The round's distributed mechanism (for its subset, if it sends one) and its plan.
    let distributed: DistributedDP?
    let distributedPlan: Veil_V1_DistributedDPPlan?
    /// Values per update (the algorithm's payload, before any subset or distributed-DP padding).
    let payloadLength: Int
    /// The round's ring and coordinate subset.
    let compression: RoundCompression
    /// The clip of the loss reports selection asks for (0: none, `Specs/orchestration.md` §5.1).
    let lossClip: Double
    /// Asynchronous federations: the version the members' held updates are weighted against.
    let asynchronous: Veil_V1_AsynchronousPlan?

    /// The task of round `number` for a cohort of `cohortSize`.
    init(
        number: Int, cohortSize: Int, configuration c: ServeConfiguration, algorithm: FedAvgFamily,
        privacy: ServicePrivacyPlan?, compression: RoundCompression? = nil, buffer: Coordinator.BufferBase? = nil
    ) throws {
        // Without reported links (tests), the configured compression or adaptive's least.
        let compression =
            try compression
            ?? RoundCompression.choose(
                c, round: number, payloadLength: algorithm.payloadLength,
                links: Array(repeating: 0, count: cohortSize), survivable: 0, paillierKeyBits: nil, privacy: privacy)
        self.compression = compression
        let codec: FixedPointCodec
        do { codec = try compression.codec(clip: c.payloadClip, addends: cohortSize) } catch {
            throw ConfigurationError(
                "no fixed-point precision fits \(cohortSize) addends in \(compression.ring.bits) bits: \(error)")
        }
        self.codec = codec
        encoding = Veil_V1_PayloadEncoding.with {
            $0.clip = codec.clip
            $0.fractionalBits = UInt32(codec.fractionalBits)
            $0.bits = UInt32(codec.bitWidth.bits)
            $0.maxAddends = UInt32(codec.maxAddends)
            if let subset = compression.subset {
                $0.subsetSize = UInt32(subset.size)
                $0.subsetSeed = Data(subset.seed)
            }
        }
        model = Self.broadcast(algorithm)
        training = Self.trainingPlan(c, algorithm: algorithm, privacy: privacy, round: number)
        // An asynchronous round sums held updates trained from earlier versions (`Specs/wire.md` §4.4); the
        // version now is the rounds completed.
        asynchronous = c.asynchronous.map { settings in
            .with {
                $0.version = UInt64(number - 1)
                $0.maxStaleness = UInt32(settings.maxStaleness)
                if let buffer {
                    $0.baseVersion = buffer.version
                    $0.offerDigest = Data(buffer.offer)
                }
            }
        }
        distributed = try privacy?.distributed(subsetSize: compression.subset?.size)
        distributedPlan = distributed.map { privacy!.plan($0) }
        payloadLength = algorithm.payloadLength
        // Only Oort's statistical utility uses losses: under any other strategy, or with its
        // weight at 0, a participant is not asked to reveal one.
        lossClip = c.selection == .oort && c.orchestration.statisticalWeight > 0 ? c.orchestration.lossClip : 0
    }

    /// The broadcast vectors of `algorithm`'s current model.
    static func broadcast(_ algorithm: FedAvgFamily) -> Veil_V1_Model {
        .with { $0.vectors = algorithm.broadcast().map { v in Veil_V1_Vector.with { $0.values = v } } }
    }

    /// How members train in round `number` (or, asynchronously, on the model offered before it).
    static func trainingPlan(
        _ c: ServeConfiguration, algorithm: FedAvgFamily, privacy: ServicePrivacyPlan?, round number: Int
    ) -> Veil_V1_TrainingPlan {
        .with {
            $0.algorithm = c.algorithm.rawValue
            $0.localEpochs = UInt32(c.localEpochs)
            $0.batchSize = UInt32(c.batchSize)
            $0.learningRate = c.learningRate
            $0.momentum = c.momentum
            $0.weightDecay = c.weightDecay
            $0.proximalMu = algorithm.proximalMu
            $0.weightScale = c.weightScale
            // The seed only salts the participants' own randomness, which already differs for
            // every session (``ParticipantAgent/roundRandomness(_:)``): the round's labelled
            // training stream, not arithmetic on the round number.
            var stream = Xoshiro256(seed: c.seed, purpose: .training, round: number)
            $0.seed = stream.next()
            $0.model = c.model.description
            $0.features = UInt32(c.features)
            $0.classes = UInt32(c.classes)
            $0.dpClip = privacy?.settings.mode == .central ? privacy!.settings.clip : 0
        }
    }

    /// The values each member sends: the payload, or its subset.
    var dimension: Int { compression.dimension(payloadLength: payloadLength) }

    var digest: [UInt8] { RoundPlanDigest.of(encoded: encodedPlan) }

    /// The plan every member is asked to carry out, encoded as its digest hashes it.
    var encodedPlan: [UInt8] {
        RoundPlanDigest.encoded(
            model: model, training: training, encoding: encoding, distributedDP: distributedPlan,
            asynchronous: asynchronous)
    }

    /// A member's assignment, without the secure sum's part.
    func assignment(number: Int, position: ParticipantID, deadlines: RoundDeadlines) -> Veil_V1_RoundAssignment {
        var assignment = Veil_V1_RoundAssignment()
        assignment.round = UInt64(number)
        assignment.position = position.rawValue
        assignment.model = model
        assignment.training = training
        assignment.encoding = encoding
        // At most a day (ServeConfiguration.validate), so it fits.
        assignment.roundDeadlineMillis = UInt32(deadlines.protocolRound / .milliseconds(1))
        assignment.lossClip = lossClip
        if let asynchronous { assignment.asynchronous = asynchronous }
        return assignment
    }

    /// The payload codec for `addends` contributions: the configured ring and clip at the
    /// finest precision that cannot wrap (the simulation engine's choice too).
    static func codec(_ c: ServeConfiguration, addends: Int) throws -> FixedPointCodec {
        do {
            return try FixedPointCodec.finest(
                clip: c.payloadClip, bitWidth: try BitWidth(c.payloadBits), maxAddends: addends)
        } catch {
            throw ConfigurationError(
                "no fixed-point precision fits \(addends) addends in \(c.payloadBits) bits: \(error)")
        }
    }
}
