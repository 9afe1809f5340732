import Foundation

/// One named tensor of a model's parameters: its name and shape (C order). Every value is a
/// real number; how it is stored on disk is the exchange's business (`Specs/trainer.md` §3).
public struct TensorSpec: Hashable, Sendable, Codable {
    public let name: String
    public let shape: [Int]

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }

    /// The number of values: the product of the shape (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
}

/// A model's parameters as named tensors laid end to end in one flat vector, the vector that
/// a federation trains and sums. The schema is a function of the model, so the coordinator
/// fixes it by fixing the model and every participant derives the same one
/// (`Specs/trainer.md` §2).
public struct TensorSchema: Hashable, Sendable {
    public let tensors: [TensorSpec]

    public init(_ tensors: [TensorSpec]) { self.tensors = tensors }

    /// Dense layers l = 0, 1, …: `layers.l.weight` (outputs × inputs) then `layers.l.bias`
    /// (outputs), the layout of ``DenseLayers``.
    public init(model: any Model) {
        let sizes = DenseLayers(model).sizes
        var tensors: [TensorSpec] = []
        for l in 0..<(sizes.count - 1) {
            tensors.append(TensorSpec(name: "layers.\(l).weight", shape: [sizes[l + 1], sizes[l]]))
            tensors.append(TensorSpec(name: "layers.\(l).bias", shape: [sizes[l + 1]]))
        }
        self.init(tensors)
    }

    /// The length of the flat vector.
    public var count: Int { tensors.reduce(0) { $0 + $1.count } }

    /// The flat vector cut into the schema's tensors, in order.
    public func split(_ flat: [Double]) -> [[Double]] {
        precondition(flat.count == count, "a vector of \(flat.count) values for a schema of \(count)")
        var start = 0
        return tensors.map { spec in
            defer { start += spec.count }
            return Array(flat[start..<(start + spec.count)])
        }
    }
}
