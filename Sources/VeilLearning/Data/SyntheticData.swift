import Foundation
import VeilCore

/// The FedProx paper's Synthetic(α, β) (Li et al., MLSys 2020): each device k has its own
/// softmax model and feature distribution. n_k = ⌊LogNormal(4, 2)⌋ + 50 samples;
/// u_k ~ N(0, α²), B_k ~ N(0, β²); v_k[j] ~ N(B_k, 1); W_k (60 × 10) and b_k have entries
/// ~ N(u_k, 1); x ~ N(v_k, diag(j^−1.2)), j = 1…60; y = argmax(x·W_k + b_k). α and β are
/// standard deviations. Each device's rows are split 90/10 into training and test rows.
public enum SyntheticData {
    public static let featureCount = 60
    public static let classCount = 10

    /// Generates `devices` devices from `seed`.
    public static func generate(alpha: Double, beta: Double, devices: Int = 30, seed: UInt64) throws -> FederatedData {
        var g = Xoshiro256(seed: seed, purpose: .syntheticData)
        let d = featureCount
        let k = classCount
        let sizes = (0..<devices).map { _ in Int(exp(4 + 2 * g.standardNormal())) + 50 }
        let u = (0..<devices).map { _ in alpha * g.standardNormal() }
        let b = (0..<devices).map { _ in beta * g.standardNormal() }
        let scale = (1...d).map { pow(Double($0), -1.2).squareRoot() }
        var trains: [Dataset] = []
        var tests: [Dataset] = []
        for device in 0..<devices {
            let v = (0..<d).map { _ in b[device] + g.standardNormal() }
            let w = (0..<(d * k)).map { _ in u[device] + g.standardNormal() }  // W[j][c] at j·k + c
            let bias = (0..<k).map { _ in u[device] + g.standardNormal() }
            var features: [Double] = []
            var labels: [Int] = []
            features.reserveCapacity(sizes[device] * d)
            for _ in 0..<sizes[device] {
                let x = (0..<d).map { j in v[j] + scale[j] * g.standardNormal() }
                var best = 0
                var bestScore = -Double.infinity
                for c in 0..<k {
                    var score = bias[c]
                    for j in 0..<d { score += x[j] * w[j * k + c] }
                    if score > bestScore { (best, bestScore) = (c, score) }
                }
                features += x
                labels.append(best)
            }
            let all = try Dataset(features: features, labels: labels, featureCount: d, classCount: k)
            let trainCount = Int((0.9 * Double(all.count)).rounded())
            trains.append(all.subset(Array(0..<trainCount)))
            tests.append(all.subset(Array(trainCount..<all.count)))
        }
        let pooledTest = tests.dropFirst().reduce(tests[0]) { $0.appending($1) }
        return FederatedData(clients: trains, test: pooledTest, clientTests: tests)
    }
}
