import Foundation
import VeilPrivacy

/// `DP-ACCOUNTING-RDP`: ε and the optimal order of Google's `dp_accounting` RdpAccountant for
/// the Poisson-subsampled Gaussian, and its calibrated noise multipliers
/// (`Specs/reference/generate_dp_accounting_table.py`).
enum DPAccountingRunner: VectorRunner {
    static let algorithm = "DP-ACCOUNTING-RDP"
    /// The agreement the accountant promises.
    static let relativeTolerance = 1e-6
    /// Two searches with tolerance 1e-6 each may end that far apart.
    static let calibrationTolerance = 2e-6

    struct Group: Codable, Sendable {
        var delta: Double
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var operation: String
        var samplingRate: Double
        var noiseMultiplier: Double
        var steps: Int
        var epsilon: Double
        var order: Double?
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    switch test.operation {
                    case "epsilon":
                        var accountant = RDPAccountant()
                        accountant.compose(
                            .poissonSampledGaussian(
                                samplingRate: test.samplingRate, noiseMultiplier: test.noiseMultiplier),
                            count: test.steps)
                        let (epsilon, order) = accountant.epsilon(delta: group.delta)
                        guard abs(epsilon - test.epsilon) <= relativeTolerance * abs(test.epsilon) else {
                            throw Mismatch("epsilon \(epsilon) differs from \(test.epsilon)")
                        }
                        try expectEqual(order, test.order ?? .nan, "order")
                    case "calibrate":
                        let sigma = try NoiseCalibration.noiseMultiplier(
                            epsilon: test.epsilon, delta: group.delta, samplingRate: test.samplingRate,
                            steps: test.steps)
                        guard abs(sigma - test.noiseMultiplier) <= calibrationTolerance else {
                            throw Mismatch("noise multiplier \(sigma) differs from \(test.noiseMultiplier)")
                        }
                        var accountant = RDPAccountant()
                        accountant.compose(
                            .poissonSampledGaussian(samplingRate: test.samplingRate, noiseMultiplier: sigma),
                            count: test.steps)
                        guard accountant.epsilon(delta: group.delta).epsilon <= test.epsilon else {
                            throw Mismatch("the calibrated noise does not meet the target")
                        }
                    default:
                        throw VectorError.unreadable("unknown operation \(test.operation)")
                    }
                }
            }
        }
    }
}
