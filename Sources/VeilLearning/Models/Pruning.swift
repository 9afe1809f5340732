import Foundation

/// Magnitude pruning of a dense model (Specs/export.md §4): which weights a pruned model keeps.
/// Biases are never pruned alone; structured pruning removes whole hidden units.
public struct Pruning: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        /// Each layer's smallest-magnitude weights, one by one.
        case unstructured
        /// Each hidden layer's units with the smallest incoming weight norm, whole: the unit's
        /// incoming row, its bias and its outgoing column.
        case structured
    }

    /// The fraction pruned, in [0, 1).
    public let sparsity: Double
    public let kind: Kind

    public init(sparsity: Double, kind: Kind) throws(DataError) {
        guard sparsity >= 0, sparsity < 1 else {
            throw .invalidSpecification("the sparsity must be in [0, 1), got \(sparsity)")
        }
        self.sparsity = sparsity
        self.kind = kind
    }

    /// Parses `S` (unstructured) or `S:structured` / `S:unstructured`.
    public init(parsing text: String) throws(DataError) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let sparsity = parts.first.flatMap(Double.init),
            let kind = parts.count == 2 ? Kind(rawValue: parts[1]) : .unstructured
        else {
            throw .invalidSpecification("pruning \"\(text)\": use S, S:unstructured or S:structured with S in [0, 1)")
        }
        try self.init(sparsity: sparsity, kind: kind)
    }

    public var description: String { "\(sparsity):\(kind.rawValue)" }

    /// The mask of `parameters` (true: kept) for `model`.
    /// - Throws: ``DataError`` for structured pruning of a model without hidden units.
    public func mask(_ model: any Model, parameters: [Double]) throws(DataError) -> [Bool] {
        let layers = DenseLayers(model)
        let sizes = layers.sizes
        var keep = [Bool](repeating: true, count: parameters.count)
        let starts = (0..<layers.count).map { layers.offsets($0).weights }
        switch kind {
        case .unstructured:
            for l in 0..<layers.count {
                let count = sizes[l + 1] * sizes[l]
                let pruned = Int((sparsity * Double(count)).rounded(.down))
                // The smallest magnitudes, ties by position: the same parameters give the same mask.
                let order = (0..<count).sorted {
                    (abs(parameters[starts[l] + $0]), $0) < (abs(parameters[starts[l] + $1]), $1)
                }
                for i in order.prefix(pruned) { keep[starts[l] + i] = false }
            }
        case .structured:
            guard sizes.count > 2 else {
                throw .invalidSpecification("structured pruning removes hidden units: use an mlp model")
            }
            for l in 0..<(sizes.count - 2) {
                let (inputs, units) = (sizes[l], sizes[l + 1])
                // At least one unit stays in every layer.
                let pruned = min(Int((sparsity * Double(units)).rounded(.down)), units - 1)
                let norms = (0..<units).map { o in
                    (0..<inputs).reduce(0.0) {
                        $0 + parameters[starts[l] + o * inputs + $1] * parameters[starts[l] + o * inputs + $1]
                    }
                }
                let order = (0..<units).sorted { (norms[$0], $0) < (norms[$1], $1) }
                let next = sizes[l + 2]
                for o in order.prefix(pruned) {
                    for i in 0..<inputs { keep[starts[l] + o * inputs + i] = false }
                    keep[starts[l] + units * inputs + o] = false
                    for r in 0..<next { keep[starts[l + 1] + r * units + o] = false }
                }
            }
        }
        return keep
    }
}

extension ModelCheckpoint {
    /// The checkpoint with the parameters `keep` marks false set to zero.
    public func masked(_ keep: [Bool]) throws(DataError) -> ModelCheckpoint {
        precondition(keep.count == parameters.count, "the mask does not fit the parameters")
        return try ModelCheckpoint(
            model: model, features: features, classes: classes, round: round,
            parameters: zip(parameters, keep).map { $1 ? $0 : 0 })
    }

    /// The same function with every hidden unit whose incoming weights and bias are all zero
    /// removed (its output is ReLU(0) = 0 for every input, so its outgoing weights never count);
    /// each layer keeps at least one unit. A softmax checkpoint is returned unchanged.
    public func compacted() throws(DataError) -> ModelCheckpoint {
        guard case let mlp as MultilayerPerceptron = try makeModel() else { return self }
        var sizes = mlp.layerSizes
        var p = parameters
        for l in 0..<(sizes.count - 2) {
            let (inputs, units, next) = (sizes[l], sizes[l + 1], sizes[l + 2])
            let (start, _) = DenseLayers(sizes: sizes).offsets(l)
            let nextStart = start + units * (inputs + 1)
            let dead = (0..<units).filter { o in
                p[start + units * inputs + o] == 0 && (0..<inputs).allSatisfy { p[start + o * inputs + $0] == 0 }
            }
            let removed = Set(dead.prefix(units - 1))
            if removed.isEmpty { continue }
            let kept = (0..<units).filter { !removed.contains($0) }
            let weights = kept.flatMap { o in p[(start + o * inputs)..<(start + (o + 1) * inputs)] }
            let biases = kept.map { p[start + units * inputs + $0] }
            let nextWeights = (0..<next).flatMap { r in kept.map { p[nextStart + r * units + $0] } }
            let nextBiases = p[(nextStart + next * units)..<(nextStart + next * (units + 1))]
            p.replaceSubrange(
                start..<(nextStart + next * (units + 1)), with: weights + biases + nextWeights + nextBiases)
            sizes[l + 1] = kept.count
        }
        return try ModelCheckpoint(
            model: DenseLayers(sizes: sizes).specification, features: features, classes: classes, round: round,
            parameters: p)
    }

    /// Pruned at `pruning` (masked, then compacted: structured pruning gives a smaller model).
    public func pruned(_ pruning: Pruning) throws(DataError) -> ModelCheckpoint {
        try masked(try pruning.mask(try makeModel(), parameters: parameters)).compacted()
    }

    /// The count of nonzero parameters.
    public var nonzeroCount: Int { parameters.count { $0 != 0 } }
}
