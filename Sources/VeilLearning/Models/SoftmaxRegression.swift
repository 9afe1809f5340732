import Foundation

/// Multinomial logistic regression: logits = W·x + b, W of classCount × featureCount.
/// Parameters: W row by row, then b.
public struct SoftmaxRegression: Model {
    public let featureCount: Int
    public let classCount: Int

    public init(featureCount: Int, classCount: Int) {
        self.featureCount = featureCount
        self.classCount = classCount
    }

    public var parameterCount: Int { classCount * (featureCount + 1) }
    public var name: String { "softmax" }

    /// Zeros: the reference runs train "from zero".
    public func initialParameters(using generator: inout some RandomNumberGenerator) -> [Double] {
        [Double](repeating: 0, count: parameterCount)
    }

    public func logits(
        _ p: UnsafeBufferPointer<Double>, features x: UnsafeBufferPointer<Double>,
        into z: UnsafeMutableBufferPointer<Double>,
        workspace: ModelWorkspace
    ) {
        let bias = classCount * featureCount
        for c in 0..<classCount {
            var s = p[bias + c]
            let row = c * featureCount
            for j in 0..<featureCount { s += p[row + j] * x[j] }
            z[c] = s
        }
    }

    public func lossAndGradient(
        _ p: UnsafeBufferPointer<Double>, data: Dataset, rows: ArraySlice<Int>,
        gradient g: UnsafeMutableBufferPointer<Double>,
        workspace: ModelWorkspace
    ) -> Double {
        g.update(repeating: 0)
        let bias = classCount * featureCount
        var loss = 0.0
        workspace.buffers[0].withUnsafeMutableBufferPointer { z in
            data.features.withUnsafeBufferPointer { f in
                for row in rows {
                    let x = UnsafeBufferPointer(rebasing: f[(row * featureCount)..<((row + 1) * featureCount)])
                    logits(p, features: x, into: z, workspace: workspace)
                    let label = data.labels[row]
                    softmaxInPlace(z)
                    loss -= log(max(z[label], .leastNormalMagnitude))
                    z[label] -= 1
                    for c in 0..<classCount {
                        let delta = z[c]
                        if delta == 0 { continue }
                        let rowStart = c * featureCount
                        for j in 0..<featureCount { g[rowStart + j] += delta * x[j] }
                        g[bias + c] += delta
                    }
                }
            }
        }
        let scale = 1 / Double(rows.count)
        for i in 0..<g.count { g[i] *= scale }
        return loss * scale
    }
}
