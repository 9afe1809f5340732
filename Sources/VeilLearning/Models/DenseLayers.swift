import Foundation

/// The dense layers of a Veil model: layer l maps sizes[l] inputs to sizes[l + 1] outputs,
/// its weights out × in row by row, then its biases, layer after layer — the parameter
/// layout of ``SoftmaxRegression`` (one layer) and ``MultilayerPerceptron``.
public struct DenseLayers: Hashable, Sendable {
    public let sizes: [Int]

    public init(sizes: [Int]) { self.sizes = sizes }

    public init(_ model: any Model) {
        sizes = (model as? MultilayerPerceptron)?.layerSizes ?? [model.featureCount, model.classCount]
    }

    public var count: Int { sizes.count - 1 }

    /// Σ s_{l+1}(s_l + 1); the model-file readers allow at most 65 layers of at most 2^24
    /// units, so this stays below 2^55.
    public var parameterCount: Int { (0..<count).reduce(0) { $0 + sizes[$1 + 1] * (sizes[$1] + 1) } }

    /// `softmax` for one layer, `mlp:H1,…` otherwise: what ``makeModel(_:featureCount:classCount:)`` reads.
    public var specification: String {
        count == 1 ? "softmax" : "mlp:" + sizes.dropFirst().dropLast().map(String.init).joined(separator: ",")
    }

    /// Where layer l's weights start, and where its biases start.
    public func offsets(_ l: Int) -> (weights: Int, biases: Int) {
        let start = (0..<l).reduce(0) { $0 + sizes[$1 + 1] * (sizes[$1] + 1) }
        return (start, start + sizes[l + 1] * sizes[l])
    }
}
