import Foundation
import Testing
import VeilCore
import VeilCrypto
import VeilTestSupport

@testable import VeilPrivacy

@Suite struct MechanismTests {
    func generator(_ label: String) -> ChaCha20Generator { ChaCha20Generator(label: label) }

    @Test(arguments: [1, 2, 5, 64, 650])
    func rotationKeepsNormsAndInverts(dimension: Int) throws {
        var g = generator("rotation \(dimension)")
        let rotation = RandomizedHadamard(dimension: dimension, using: &g)
        let x = (0..<dimension).map { _ in g.standardNormal() }
        let y = rotation.rotate(x)
        #expect(y.count == rotation.paddedDimension && rotation.paddedDimension.nonzeroBitCount == 1)
        #expect(abs(L2Clipping.norm(y) - L2Clipping.norm(x)) < 1e-9 * max(1, L2Clipping.norm(x)))
        let back = rotation.unrotate(y)
        #expect(zip(back, x).allSatisfy { abs($0 - $1) < 1e-9 })
    }

    @Test func rotationFlattensASpike() throws {
        var g = generator("spike")
        let rotation = RandomizedHadamard(dimension: 1024, using: &g)
        var spike = [Double](repeating: 0, count: 1024)
        spike[17] = 32
        // All mass in one coordinate becomes ±1 everywhere: the modulus sees no outlier.
        #expect(rotation.rotate(spike).allSatisfy { abs(abs($0) - 1) < 1e-12 })
    }

    @Test func clippingBoundsTheNormAndReportsTheBit() {
        let (kept, within) = L2Clipping.clip([0.3, 0.4], to: 1)
        #expect(kept == [0.3, 0.4] && within)
        let (clipped, above) = L2Clipping.clip([3, 4], to: 1)
        #expect(!above && L2Clipping.norm(clipped) <= 1 && abs(clipped[0] - 0.6) < 1e-12)
        let (huge, _) = L2Clipping.clip([1e300, 1e300], to: 2)
        #expect(L2Clipping.norm(huge) <= 2 && huge.allSatisfy(\.isFinite))
        let (nan, nanWithin) = L2Clipping.clip([.nan, 1], to: 1)
        #expect(nan == [0, 0] && !nanWithin)
    }

    @Test func adaptiveClippingMovesTowardsTheQuantile() {
        var clipping = AdaptiveClipping(initialBound: 1, targetQuantile: 0.5, learningRate: 0.2)
        // Everyone below the bound: it shrinks. Everyone above: it grows.
        clipping.update(noisyCenteredCount: 5, expectedReports: 10)
        #expect(abs(clipping.bound - exp(-0.1)) < 1e-12)
        clipping.update(noisyCenteredCount: -5, expectedReports: 10)
        #expect(abs(clipping.bound - 1) < 1e-12)
        // Norms uniform on (0, 4): the median is 2; iterate with exact counts.
        var estimate = AdaptiveClipping(initialBound: 0.1, targetQuantile: 0.5, learningRate: 0.2)
        for _ in 0..<200 {
            let below = min(estimate.bound / 4, 1)
            estimate.update(noisyCenteredCount: 100 * (below - 0.5), expectedReports: 100)
        }
        #expect(abs(estimate.bound - 2) < 0.05)
    }

    /// Twenty participants encode, their shares are added modulo 2^b, and the decoded sum is
    /// the true sum plus noise of the calibrated deviation.
    @Test(arguments: [DistributedDP.Noise.discreteGaussian, .skellam])
    func distributedSharesSumToTheSumPlusTheNoise(noise: DistributedDP.Noise) throws {
        let n = 20
        let dimension = 100
        let bound = 0.5
        let mechanism = try DistributedDP.calibrate(
            noise: noise, epsilon: 2, delta: 1e-5, samplingRate: 1, rounds: 10, minimumParticipants: n,
            dimension: dimension, bits: 20)
        var errors: [Double] = []
        var rounding = generator("rounding")
        var inputs = generator("inputs")
        for trial in 0..<10 {
            var rotationGenerator = generator("rotation \(trial)")
            let rotation = RandomizedHadamard(dimension: dimension, using: &rotationGenerator)
            var total = ModularVector(zeros: mechanism.paddedDimension, bitWidth: mechanism.bitWidth)
            var trueSum = [Double](repeating: 0, count: dimension)
            for participant in 0..<n {
                let raw = (0..<dimension).map { _ in inputs.standardNormal() }
                let x = L2Clipping.clip(raw, to: bound).clipped
                for i in x.indices { trueSum[i] += x[i] }
                var noiseGenerator = generator("noise \(trial) \(participant)")
                try total.add(
                    mechanism.encode(
                        x, bound: bound, rotation: rotation, rounding: &rounding, noiseGenerator: &noiseGenerator))
            }
            let decoded = try mechanism.decode(total, bound: bound, rotation: rotation)
            errors += zip(decoded, trueSum).map { $0 - $1 }
        }
        let expected = mechanism.centralStandardDeviation(bound: bound)
        let observed = (errors.reduce(0) { $0 + $1 * $1 } / Double(errors.count)).squareRoot()
        // The rounding adds a little variance (at most 1/4 per coordinate and participant, in
        // integer units); the noise dominates.
        let rounding2 = Double(n) / 4 / pow(mechanism.unitScale / bound, 2)
        let predicted = (expected * expected + rounding2).squareRoot()
        #expect(abs(observed - predicted) / predicted < 0.05, "noise σ \(observed), predicted \(predicted)")
    }

    /// A coordinate subset's round (Specs/privacy.md §4.7): the mechanism for k of the 650
    /// values costs at most the full mechanism's round at every order, so a run that mixes
    /// them spends no more than it was calibrated for; and its σ₁ is the least that does — a
    /// little less noise would cost more than the reference at some order.
    @Test(arguments: [DistributedDP.Noise.discreteGaussian, .skellam])
    func aSubsetMechanismCostsNoMoreThanTheFullOne(noise: DistributedDP.Noise) throws {
        let reference = try DistributedDP.calibrate(
            noise: noise, epsilon: 4, delta: 1e-5, samplingRate: 1, rounds: 10, minimumParticipants: 5,
            maximumParticipants: 8, dimension: 650, bits: 20)
        func rdp(_ m: DistributedDP) -> [Double] {
            var a = RDPAccountant()
            a.compose(.poissonSampledNoiseSum(samplingRate: 1, m.noiseSum))
            return a.rdp
        }
        let full = rdp(reference)
        for k in [1, 40, 162, 650] {
            let subset = try DistributedDP.calibrate(
                dominatedBy: reference, dimension: k, maximumParticipants: 8)
            #expect(subset.dimension == k && subset.bitWidth == reference.bitWidth)
            #expect(subset.minimumParticipants == reference.minimumParticipants && subset.noise == noise)
            #expect(zip(rdp(subset), full).allSatisfy { $0 <= $1 }, "k = \(k)")
            let less = try DistributedDP(
                noise: noise, dimension: k, bitWidth: subset.bitWidth, minimumParticipants: subset.minimumParticipants,
                beta: subset.beta, unitScale: subset.unitScale,
                unitLocalStandardDeviation: subset.unitLocalStandardDeviation * (1 - 1e-4))
            #expect(zip(rdp(less), full).contains { $0 > $1 }, "k = \(k): σ₁ is not the least")
            // Ten rounds mixing the two stay within the run's ε.
            var mixed = RDPAccountant()
            for round in 0..<10 {
                mixed.compose(.poissonSampledNoiseSum(samplingRate: 1, (round % 2 == 0 ? subset : reference).noiseSum))
            }
            #expect(mixed.epsilon(delta: 1e-5).epsilon <= 4 * (1 + 1e-6))
        }
        // Fewer values spread the same norm over fewer coordinates: the ring needs a smaller scale.
        let one = try DistributedDP.calibrate(dominatedBy: reference, dimension: 1, maximumParticipants: 8)
        #expect(one.unitScale < reference.unitScale)
    }

    @Test func encodingRefusesUnclippedAndMisshapenVectors() throws {
        let mechanism = try DistributedDP(
            noise: .discreteGaussian, dimension: 4, bitWidth: BitWidth(16), minimumParticipants: 10, beta: exp(-0.5),
            unitScale: 100, unitLocalStandardDeviation: 0.5)
        var g = generator("refuse")
        let rotation = RandomizedHadamard(dimension: 4, using: &g)
        var noise = generator("noise")
        #expect(throws: DistributedDP.DistributedDPError.roundingFailed(attempts: DistributedDP.maxRoundingAttempts)) {
            try mechanism.encode([3, 0, 0, 0], bound: 1, rotation: rotation, rounding: &g, noiseGenerator: &noise)
        }
        #expect(throws: DistributedDP.DistributedDPError.wrongLength(expected: 4, actual: 3)) {
            try mechanism.encode([0.1, 0, 0], bound: 1, rotation: rotation, rounding: &g, noiseGenerator: &noise)
        }
        #expect(throws: DistributedDP.DistributedDPError.self) {
            try DistributedDP(
                noise: .skellam, dimension: 4, bitWidth: BitWidth(16), minimumParticipants: 0, beta: 0.5,
                unitScale: 1, unitLocalStandardDeviation: 1)
        }
    }
}

@Suite struct LedgerTests {
    func roundCost(_ sigma: Double) -> RDPAccountant {
        var a = RDPAccountant()
        a.compose(.gaussian(noiseMultiplier: sigma))
        return a
    }

    @Test func admitsUntilTheBudgetThenRefusesAndSaysWhy() {
        var ledger = PrivacyLedger(policy: .init(epsilon: 2, delta: 1e-5, alertFraction: 0.5))
        let cost = roundCost(4)
        var rounds = 0
        var alerted = false
        while case .admitted(let after, let alert) = ledger.admit("alice", round: cost) {
            #expect(after <= 2)
            if alert { alerted = true }
            ledger.charge(["alice"], round: cost)
            rounds += 1
            #expect(rounds < 1000)
        }
        #expect(alerted)
        #expect(rounds >= 1 && ledger.spent(by: "alice") <= 2)
        guard case .refused(let refusal) = ledger.admit("alice", round: cost) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.wouldSpend > 2 && refusal.spent == ledger.spent(by: "alice"))
        #expect(refusal.description.contains("alice") && refusal.description.contains("budget"))
        // Someone who never contributed still has the whole budget.
        #expect(ledger.spent(by: "bob") == 0)
        if case .refused = ledger.admit("bob", round: cost) { Issue.record("bob has spent nothing") }
    }

    @Test func alertComesAtTheConfiguredFraction() {
        let ledger = PrivacyLedger(policy: .init(epsilon: 100, delta: 1e-5, alertFraction: 0.9))
        #expect(
            ledger.admit("carol", round: roundCost(4))
                == .admitted(epsilonAfter: ledger.admitAfter(roundCost(4)), alert: false))
    }

    @Test func ledgerSurvivesStorage() throws {
        var ledger = PrivacyLedger(policy: .init(epsilon: 8, delta: 1e-6))
        ledger.charge(["a", "b"], round: roundCost(2))
        ledger.charge(["a"], round: roundCost(2))
        let back = try JSONDecoder().decode(PrivacyLedger.self, from: JSONEncoder().encode(ledger))
        #expect(back == ledger)
        #expect(back.spent(by: "a") > back.spent(by: "b") && back.spent(by: "b") > 0)
        #expect(back.balances.map(\.participant) == ["a", "b"])
    }
}

extension PrivacyLedger {
    fileprivate func admitAfter(_ cost: RDPAccountant) -> Double { cost.epsilon(delta: policy.delta).epsilon }
}
