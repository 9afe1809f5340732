import Foundation
import Testing
import VeilCore

@testable import VeilLearning

/// The deterministic exp of `Specs/learning.md` §2.1, which the trainer's softmax uses.
@Suite struct DeterministicMathTests {
    /// The distance in units in the last place between two non-negative doubles.
    static func ulps(_ a: Double, _ b: Double) -> UInt64 {
        let (x, y) = (a.bitPattern, b.bitPattern)
        return x > y ? x - y : y - x
    }

    @Test func specialValues() {
        #expect(DeterministicMath.exp(.nan).isNaN)
        #expect(DeterministicMath.exp(.infinity) == .infinity)
        #expect(DeterministicMath.exp(-.infinity).bitPattern == 0)
        #expect(DeterministicMath.exp(0) == 1)
        #expect(DeterministicMath.exp(-0.0) == 1)
        #expect(DeterministicMath.exp(710) == .infinity)
        let top = DeterministicMath.overflowThreshold
        #expect(DeterministicMath.exp(top).isFinite)
        #expect(DeterministicMath.exp(top.nextUp) == .infinity)
        // Below the underflow threshold: +0; at it, the least subnormal.
        let bottom = DeterministicMath.underflowThreshold
        #expect(DeterministicMath.exp(bottom.nextDown).bitPattern == 0)
        #expect(DeterministicMath.exp(bottom) == .leastNonzeroMagnitude)
        #expect(DeterministicMath.exp(-1000).bitPattern == 0)
        #expect(DeterministicMath.exp(-1e-300) == 1)
        #expect(DeterministicMath.exp(1e-300) == 1)
    }

    /// Bits pinned with Specs/reference/trainer_reference.py, which implements §2.1 on its own.
    @Test(
        arguments: [
            (1.0, 0x4005_bf0a_8b14_576a), (-1.0, 0x3fd7_8b56_362c_ef38), (0.5, 0x3ffa_6129_8e1e_069c),
            (-0.5, 0x3fe3_68b2_fc6f_960a), (10.0, 0x40d5_829d_cf95_0560), (-20.0, 0x3e21_b486_55f3_7267),
            (-708.5, 0x000e_6cf6_d088_97ac), (-740.0, 0x0000_0000_0000_0055), (-745.0, 0x0000_0000_0000_0001),
            (700.0, 0x7f0d_945d_f4f8_ec8e), (709.782712893384, 0x7fef_ffff_ffff_ff2a), (1e-10, 0x3ff0_0000_0006_df38),
        ] as [(Double, UInt64)])
    func pinnedValues(_ x: Double, _ bits: UInt64) {
        #expect(DeterministicMath.exp(x).bitPattern == bits, "exp(\(x))")
    }

    /// Within 1 ulp of the C library's exp over its whole finite range, the subnormal results
    /// included; most results are the same bits.
    @Test func sweepAgainstTheCLibrary() {
        var generator = Xoshiro256(seed: 2026, stream: 12)
        var worst: UInt64 = 0
        var same = 0
        let ranges: [(Double, Double)] = [(-745.2, 709.78), (-1, 1), (-40, 0), (-745.2, -708), (-1e-5, 1e-5)]
        let perRange = 60_000
        for (low, high) in ranges {
            for _ in 0..<perRange {
                let x = low + (high - low) * generator.unit()
                let distance = Self.ulps(DeterministicMath.exp(x), Foundation.exp(x))
                worst = max(worst, distance)
                if distance == 0 { same += 1 }
            }
        }
        #expect(worst <= 1)
        #expect(same > ranges.count * perRange * 3 / 4)
    }

    /// softmax's probabilities sum to 1 within rounding, and the largest logit's survives
    /// differences beyond exp's underflow.
    @Test func softmaxUsesIt() {
        var z: [Double] = [0, -800, -740, 3]
        z.withUnsafeMutableBufferPointer { softmaxInPlace($0) }
        #expect(z[1] == 0)
        #expect(z[2] > 0 && z[2] < Double.leastNormalMagnitude)
        #expect(abs(z.reduce(0, +) - 1) < 1e-15)
        let e3 = DeterministicMath.exp(-3)
        let total = e3 + 0 + DeterministicMath.exp(-743) + 1
        #expect(z[0] == e3 / total && z[3] == 1 / total)
    }

    /// The measurement of the browser trainer's comparison (web/participant/trainer-test.js):
    /// softmax, 1,000 rows × 20 features, 10 classes, 1 epoch, batch 32.
    @Test func nativeTrainingTime() throws {
        var generator = Xoshiro256(seed: 5, stream: 1)
        let (rows, features, classes) = (1000, 20, 10)
        let data = try Dataset(
            features: (0..<(rows * features)).map { _ in 2 * generator.unit() - 1 },
            labels: (0..<rows).map { _ in generator.below(classes) }, featureCount: features, classCount: classes)
        let model = SoftmaxRegression(featureCount: features, classCount: classes)
        let start = [Double](repeating: 0, count: model.parameterCount)
        var best = Double.infinity
        for _ in 0..<5 {
            var trainer = Xoshiro256(seed: 1, stream: 2)
            let began = ContinuousClock.now
            let result = trainLocally(
                model: model, start: start, data: data, epochs: 1, batchSize: 32,
                optimizer: SGD(learningRate: 0.1), using: &trainer)
            let elapsed = ContinuousClock.now - began
            #expect(result.steps == 32)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            best = min(best, seconds)
        }
        print("native softmax training, 1000 rows x 20 features, 10 classes, 1 epoch, batch 32: \(best * 1000) ms")
    }
}
