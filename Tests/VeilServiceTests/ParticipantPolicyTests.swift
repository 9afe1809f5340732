import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilPrivacy
import VeilTestSupport
import VeilWire

@testable import VeilService

/// The participant's own configuration of what it requires (`join.json`'s `policy` and
/// `privacy_budget`): safe defaults, and every mistake refused by name.
@Suite struct ParticipantPolicyTests {
    func load(_ json: String) throws -> JoinConfiguration {
        let directory = try RepositoryPaths.temporaryDirectory("veil-join-config")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("join.json")
        try json.write(to: path, atomically: true, encoding: .utf8)
        return try JoinConfiguration.load(path: path.path)
    }

    let tls = #""tls": {"ca": "ca.pem", "certificate": "p.pem", "key": "p.key", "signing_key": "p.signing"}"#

    @Test func theDefaultPolicyAssumesAMaliciousCoordinator() throws {
        let c = try load("{\(tls)}")
        #expect(c.policy.adversary == .malicious)
        #expect(c.policy.corruptFraction == 0.05 && c.policy.minCohort == 3 && c.policy.minContributors == 3)
        #expect(
            c.policy.paillierMinBits == 2048 && c.policy.paillierFingerprint == nil
                && c.policy.keyHolder == "key-holder")
        let secAgg = try c.policy.secAgg()
        #expect(secAgg.requiredThreshold(clientCount: 10, neighborCount: 9) == 6)
        #expect(secAgg.requiredThreshold(clientCount: 3, neighborCount: 2) == 3)
    }

    @Test func aPolicyIsReadAsWritten() throws {
        let c = try load(
            """
            {\(tls), "policy": {"adversary": "honest-but-curious", "corrupt_fraction": 0.29, "min_cohort": 5,
             "min_contributors": 4, "paillier_min_bits": 3072, "paillier_fingerprint": "\(String(repeating: "ab", count: 32))",
             "key_holder": "kh"},
             "privacy_budget": {"epsilon": 4, "max_round_epsilon": 0.5}}
            """)
        #expect(c.policy.adversary == .honestButCurious && c.policy.minCohort == 5 && c.policy.keyHolder == "kh")
        #expect(try c.policy.secAgg().threatModel.corruptCount(of: 100) == 29)
        #expect(c.privacyBudget?.maxRoundEpsilon == 0.5)
    }

    /// The review's point about configuration, applied to what protects the participant: a
    /// typo must not silently leave a guarantee at a weaker value.
    @Test(arguments: [
        (#""policy": {"corupt_fraction": 0.2}"#, "policy: unknown key \"corupt_fraction\""),
        (#""policy": {"min_contributors": 1}"#, "min_contributors"),
        (#""policy": {"min_cohort": 1}"#, "min_cohort"),
        (#""policy": {"corrupt_fraction": 1.5}"#, "corrupt_fraction"),
        (#""policy": {"paillier_fingerprint": "abc"}"#, "policy.paillier_fingerprint must be 64 hexadecimal digits"),
        (#""policy": {"paillier_min_bits": 128}"#, "policy.paillier_min_bits must be at least 256"),
        (#""policy": {"key_holder": "a b"}"#, "is not a valid id"),
        (#""policy": {"adversary": "curious"}"#, "adversary"),
        (
            #""privacy_budget": {"epsilon": 1, "max_round_epsilon": 0}"#,
            "privacy_budget.max_round_epsilon must be positive"
        ),
        (#""privacy_budget": {"epsilon": 1, "ledgr": "x.json"}"#, "privacy_budget: unknown key \"ledgr\""),
    ])
    func everyMistakeIsRefusedByName(fragment: String, message: String) throws {
        do {
            _ = try load("{\(tls), \(fragment)}")
            Issue.record("accepted \(fragment)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    /// One participant of a three-member digits federation in `directory`, the payload codec,
    /// and a round-1 softmax assignment from a zero model, without a session (for
    /// ``ParticipantAgent/trainAndEncode(_:distributed:randomness:)``).
    func trainingScene(_ directory: URL) throws -> (ParticipantAgent, FixedPointCodec, Veil_V1_RoundAssignment) {
        var c = FederatedConfiguration()
        c.clients = 3
        c.partition = .iid
        let network = try NetworkSimulation(configuration: c, directory: directory)
        let agent = try ParticipantAgent(
            configuration: network.participants[0].join, data: network.participants[0].data, logger: quietLogger())
        let codec = try RoundTask.codec(network.serve, addends: 3)
        var a = Veil_V1_RoundAssignment()
        a.round = 1
        a.position = 1
        a.model = .with { $0.vectors = [.with { $0.values = [Double](repeating: 0, count: 650) }] }
        a.training = .with {
            $0.algorithm = "fedavg"; $0.localEpochs = 1; $0.batchSize = 8; $0.learningRate = 0.1
            $0.weightScale = network.serve.weightScale; $0.seed = 42; $0.model = "softmax"; $0.features = 64
            $0.classes = 10
        }
        a.encoding = .with {
            $0.clip = codec.clip; $0.fractionalBits = UInt32(codec.fractionalBits)
            $0.bits = UInt32(codec.bitWidth.bits); $0.maxAddends = UInt32(codec.maxAddends)
        }
        return (agent, codec, a)
    }

    /// The finding: retries reused the same training seed, so a coordinator could run a round
    /// twice with cohorts one participant apart and difference the two sums exactly. The
    /// participant's minibatch order and rounding now come from its own key and the session:
    /// another session (a retry, a renumbered round) trains differently, beyond the rounding of
    /// the encoding; the same session, replayed, trains identically — so a replay offers
    /// nothing to difference either.
    @Test func eachSessionTrainsWithTheParticipantsOwnRandomness() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-training")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (agent, codec, a) = try trainingScene(directory)
        func train(session: UInt8) throws -> ModularVector {
            var randomness = agent.roundRandomness([UInt8](repeating: session, count: 32))
            return try agent.trainAndEncode(a, randomness: &randomness)
        }
        let first = try train(session: 1)
        #expect(try train(session: 1) == first)
        let other = try codec.decode(try train(session: 2))
        let difference = zip(try codec.decode(first), other).map { abs($0 - $1) }.max() ?? 0
        let rounding = pow(2, -Double(codec.fractionalBits))
        #expect(
            difference > 1000 * rounding,
            "two sessions' updates differ by \(difference), the rounding step is \(rounding)")
    }

    /// A coordinate subset multiplies each value it sends by (d − 1)/k — 650 for k = 1 —
    /// which a hostile coordinator could pair with DP to release far more of an update than
    /// the noise is calibrated for. The participant clips what it scaled, after the scaling
    /// (Specs/export.md §5.4): with central DP the one value sent is C less the rounding slack,
    /// with distributed DP the value decoded from its (nearly noiseless) share is within C.
    @Test func aSubsetsScaledValuesAreClippedToTheDPClip() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-subset-clip")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (agent, codec, scene) = try trainingScene(directory)
        var a = scene
        let clip = 0.5
        a.encoding.subsetSize = 1
        a.encoding.subsetSeed = Data(CoordinateSubset.seed(runSeed: 7, round: 1))
        var randomness = agent.roundRandomness([UInt8](repeating: 1, count: 32))
        // Without DP the one coordinate goes out times 650: far beyond C.
        let plain = try codec.decode(try agent.trainAndEncode(a, randomness: &randomness))
        #expect(plain.count == 2 && abs(plain[0]) > 2 * clip, "\(plain)")
        // Central: clipped to C − √2·2^−f, its weight left to the coordinator.
        var central = a
        central.training.dpClip = clip
        let slack = ServicePrivacyPlan.slack(length: 2, fractionalBits: codec.fractionalBits)
        let clipped = try codec.decode(try agent.trainAndEncode(central, randomness: &randomness))
        #expect(abs(abs(clipped[0]) - (clip - slack)) <= 2 * pow(2, -Double(codec.fractionalBits)), "\(clipped)")
        #expect(clipped[1] == 0)
        // Distributed: a plan for the one value, with noise a hundredth of C.
        let mechanism = try DistributedDP(
            noise: .discreteGaussian, dimension: 1, bitWidth: BitWidth(20), minimumParticipants: 1, beta: exp(-0.5),
            unitScale: 1000, unitLocalStandardDeviation: 0.01)
        var distributed = a
        distributed.distributedDp = .with {
            $0.clip = clip; $0.dimension = 1; $0.rotationSeed = Data(repeating: 3, count: 32)
        }
        let rotation = try ServicePrivacyPlan.rotation(distributed.distributedDp)
        let share = try agent.trainAndEncode(
            distributed, distributed: (mechanism, rotation), randomness: &randomness)
        let value = try mechanism.decode(share, bound: clip, rotation: rotation)
        #expect(value.count == 1 && abs(value[0]) <= clip * 1.1, "\(value)")
    }
}
