import Foundation
import VeilCore

/// A classifier whose parameters are one flat vector: what a federation trains and sums.
public protocol Model: Sendable {
    /// The length of the parameter vector.
    var parameterCount: Int { get }
    var featureCount: Int { get }
    var classCount: Int { get }
    /// A short description ("softmax", "mlp:32,16").
    var name: String { get }

    /// Starting parameters.
    func initialParameters(using generator: inout some RandomNumberGenerator) -> [Double]

    /// The mean cross-entropy over `rows` of `data`, with its gradient written to `gradient`.
    func lossAndGradient(
        _ parameters: UnsafeBufferPointer<Double>, data: Dataset, rows: ArraySlice<Int>,
        gradient: UnsafeMutableBufferPointer<Double>, workspace: ModelWorkspace
    ) -> Double

    /// Class scores (logits) of one row, written to `logits` (classCount values).
    func logits(
        _ parameters: UnsafeBufferPointer<Double>, features: UnsafeBufferPointer<Double>,
        into logits: UnsafeMutableBufferPointer<Double>, workspace: ModelWorkspace)
}

/// Scratch memory a model reuses across steps, so that training allocates nothing per sample.
public final class ModelWorkspace {
    var buffers: [[Double]]

    public init(sizes: [Int]) { buffers = sizes.map { [Double](repeating: 0, count: $0) } }
}

/// The result of evaluating parameters on a dataset.
public struct Evaluation: Hashable, Sendable {
    public let loss: Double
    public let accuracy: Double
}

extension Model {
    /// A workspace sized for this model.
    public func makeWorkspace() -> ModelWorkspace {
        ModelWorkspace(sizes: workspaceSizes)
    }

    var workspaceSizes: [Int] {
        if let mlp = self as? MultilayerPerceptron {
            return mlp.layerSizes.map { $0 } + mlp.layerSizes.map { $0 } + [classCount]
        }
        return [classCount, classCount]
    }

    /// Mean cross-entropy and accuracy of `parameters` over every row of `data`.
    public func evaluate(_ parameters: [Double], on data: Dataset) -> Evaluation {
        guard data.count > 0 else { return Evaluation(loss: 0, accuracy: 0) }
        let workspace = makeWorkspace()
        var logits = [Double](repeating: 0, count: classCount)
        var loss = 0.0
        var correct = 0
        parameters.withUnsafeBufferPointer { p in
            data.features.withUnsafeBufferPointer { f in
                logits.withUnsafeMutableBufferPointer { z in
                    for row in 0..<data.count {
                        let x = UnsafeBufferPointer(rebasing: f[(row * featureCount)..<((row + 1) * featureCount)])
                        self.logits(p, features: x, into: z, workspace: workspace)
                        let (logSumExp, best) = softmaxSummary(UnsafeBufferPointer(z))
                        loss += logSumExp - z[data.labels[row]]
                        if best == data.labels[row] { correct += 1 }
                    }
                }
            }
        }
        return Evaluation(loss: loss / Double(data.count), accuracy: Double(correct) / Double(data.count))
    }

    /// The class probabilities (softmax of the logits) of each row.
    public func probabilities(_ parameters: [Double], on data: Dataset) -> [[Double]] {
        mapLogits(parameters, on: data) { z in
            softmaxInPlace(z)
            return Array(z)
        }
    }

    /// The predicted class of each row.
    public func predict(_ parameters: [Double], on data: Dataset) -> [Int] {
        mapLogits(parameters, on: data) { softmaxSummary(UnsafeBufferPointer($0)).argmax }
    }

    /// `transform` of each row's logits, in one reused buffer.
    private func mapLogits<T>(
        _ parameters: [Double], on data: Dataset, _ transform: (UnsafeMutableBufferPointer<Double>) -> T
    ) -> [T] {
        let workspace = makeWorkspace()
        var logits = [Double](repeating: 0, count: classCount)
        return parameters.withUnsafeBufferPointer { p in
            data.features.withUnsafeBufferPointer { f in
                logits.withUnsafeMutableBufferPointer { z in
                    (0..<data.count).map { row in
                        self.logits(
                            p,
                            features: UnsafeBufferPointer(
                                rebasing: f[(row * featureCount)..<((row + 1) * featureCount)]), into: z,
                            workspace: workspace)
                        return transform(z)
                    }
                }
            }
        }
    }
}

/// log Σ exp(z) (stably, with ``DeterministicMath/exp(_:)``) and the index of the largest z.
@inline(__always)
func softmaxSummary(_ z: UnsafeBufferPointer<Double>) -> (logSumExp: Double, argmax: Int) {
    var best = 0
    for c in 1..<z.count where z[c] > z[best] { best = c }
    let top = z[best]
    var total = 0.0
    for c in 0..<z.count { total += DeterministicMath.exp(z[c] - top) }
    return (top + log(total), best)
}

/// Turns logits into probabilities in place: exp(z_c − max z) by ``DeterministicMath/exp(_:)``,
/// summed in class order, each divided by the sum (`Specs/learning.md` §2.2).
@inline(__always)
func softmaxInPlace(_ z: UnsafeMutableBufferPointer<Double>) {
    var top = z[0]
    for c in 1..<z.count where z[c] > top { top = z[c] }
    var total = 0.0
    for c in 0..<z.count {
        z[c] = DeterministicMath.exp(z[c] - top)
        total += z[c]
    }
    for c in 0..<z.count { z[c] /= total }
}

/// The widest layer (features, hidden units or classes) a model may have, so that no parameter
/// count overflows: 2^24.
public let maxModelWidth = 1 << 24

/// Parses a model specification: `softmax`, or `mlp:H1,H2,…` (ReLU hidden layers).
public func makeModel(_ specification: String, featureCount: Int, classCount: Int) throws(DataError) -> any Model {
    guard (1...maxModelWidth).contains(featureCount), (1...maxModelWidth).contains(classCount) else {
        throw .invalidSpecification(
            "features and classes must be in 1…\(maxModelWidth), got \(featureCount) and \(classCount)")
    }
    if specification == "softmax" { return SoftmaxRegression(featureCount: featureCount, classCount: classCount) }
    let parts = specification.split(separator: ":", maxSplits: 1)
    if parts.first == "mlp", parts.count == 2 {
        // Decimal digits only: "+32" and "032" would name the same model differently.
        let hidden = parts[1].split(separator: ",").compactMap { w in
            w.allSatisfy { ("0"..."9").contains($0) } && !(w.count > 1 && w.first == "0") ? Int(w) : nil
        }
        guard !hidden.isEmpty, hidden.allSatisfy({ $0 > 0 }), hidden.count == parts[1].split(separator: ",").count
        else {
            throw .invalidSpecification("mlp:H1,H2,… needs positive layer widths, got \(parts[1])")
        }
        // Bounded so that a model's parameter count cannot overflow (a width comes from files too).
        guard hidden.count <= 64, hidden.allSatisfy({ $0 <= maxModelWidth }) else {
            throw .invalidSpecification("mlp:H1,H2,… takes at most 64 layers of at most \(maxModelWidth) units")
        }
        return MultilayerPerceptron(layerSizes: [featureCount] + hidden + [classCount])
    }
    throw .invalidSpecification("unknown model \"\(specification)\": use softmax or mlp:H1,H2,…")
}
