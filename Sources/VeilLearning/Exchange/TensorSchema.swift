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

extension TensorSchema {
    /// The specification of a model known only by its tensors: `tensors:NAME=D1xD2x…,NAME=…`
    /// (`Specs/trainer.md` §2.1).
    public static let prefix = "tensors:"
    /// The most tensors, and the most values in all, a schema may have.
    public static let maxTensors = 4096
    public static let maxParameters = 1 << 24
    /// The longest tensor name.
    public static let maxNameLength = 128
    /// The longest specification text.
    public static let maxSpecificationBytes = 1 << 20

    /// Parses `tensors:NAME=D1xD2x…,NAME=…`: names of letters, digits, `_`, `.`, `-` and `/`,
    /// each once; dimensions positive decimal integers without leading zeros.
    public init(parsing text: String) throws(DataError) {
        guard text.hasPrefix(Self.prefix) else {
            throw .invalidSpecification("a tensor schema starts with \(Self.prefix)")
        }
        // The longest valid text (4,096 tensors of 128-character names and eight 8-digit
        // dimensions) is under 900 kB: a longer one is refused before it is split.
        guard text.utf8.count <= Self.maxSpecificationBytes else {
            throw .invalidSpecification("a tensor schema is at most \(Self.maxSpecificationBytes) bytes")
        }
        let entries = text.dropFirst(Self.prefix.count).split(separator: ",", omittingEmptySubsequences: false)
        guard !entries.isEmpty, entries.count <= Self.maxTensors else {
            throw .invalidSpecification("a tensor schema has 1 to \(Self.maxTensors) tensors")
        }
        var tensors: [TensorSpec] = []
        var names: Set<String> = []
        var total = 0
        for entry in entries {
            guard let equals = entry.lastIndex(of: "=") else {
                throw .invalidSpecification("tensor \"\(entry.prefix(64))\" is not NAME=D1xD2x…")
            }
            let name = String(entry[..<equals])
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")
            guard (1...Self.maxNameLength).contains(name.count), name.allSatisfy(allowed.contains) else {
                throw .invalidSpecification(
                    "tensor name \"\(name.prefix(64))\" must be 1 to \(Self.maxNameLength) letters, digits, _ . - /")
            }
            guard names.insert(name).inserted else { throw .invalidSpecification("tensor \(name) appears twice") }
            let dimensions = entry[entry.index(after: equals)...].split(
                separator: "x", omittingEmptySubsequences: false)
            let shape = dimensions.compactMap { d -> Int? in
                guard !d.isEmpty, d.count <= 8, d.allSatisfy({ ("0"..."9").contains($0) }), d.first != "0" else {
                    return nil
                }
                return Int(d)
            }
            guard shape.count == dimensions.count, (1...8).contains(shape.count) else {
                throw .invalidSpecification(
                    "tensor \(name)'s shape must be 1 to 8 positive dimensions D1xD2x…, got \(entry[entry.index(after: equals)...].prefix(64))"
                )
            }
            // Each dimension is below 10^8: the product is checked as it grows.
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, product <= Self.maxParameters else {
                    throw .invalidSpecification("tensor \(name) has more than \(Self.maxParameters) values")
                }
                count = product
            }
            total += count
            guard total <= Self.maxParameters else {
                throw .invalidSpecification("the schema has more than \(Self.maxParameters) values")
            }
            tensors.append(TensorSpec(name: name, shape: shape))
        }
        self.init(tensors)
    }

    /// The canonical specification, which ``init(parsing:)`` reads back.
    public var specification: String {
        Self.prefix
            + tensors.map { "\($0.name)=" + $0.shape.map(String.init).joined(separator: "x") }.joined(separator: ",")
    }

    /// Starting values (`Specs/trainer.md` §2.1), the defaults of common frameworks' layers: a
    /// tensor of two or more dimensions, and a one-dimensional `P.bias` beside such a
    /// `P.weight`, uniform in ±1/√fan_in with fan_in the product of the weight's dimensions
    /// after the first; a one-dimensional `…weight` or `…running_var` (a normalisation's
    /// scale or variance) ones; anything else zeros. Each uniform value is b·(2u − 1) with
    /// u = (next() >> 11)·2⁻⁵³, in schema order.
    public func initialParameters(using generator: inout some RandomNumberGenerator) -> [Double] {
        var fanIn: [String: Int] = [:]
        for t in tensors where t.shape.count >= 2 && t.name.hasSuffix(".weight") {
            fanIn[String(t.name.dropLast(".weight".count))] = t.shape.dropFirst().reduce(1, *)
        }
        var values: [Double] = []
        values.reserveCapacity(count)
        for t in tensors {
            let fan: Int?
            if t.shape.count >= 2 {
                fan = t.shape.dropFirst().reduce(1, *)
            } else if t.name.hasSuffix(".bias") {
                fan = fanIn[String(t.name.dropLast(".bias".count))]
            } else {
                fan = nil
            }
            if let fan {
                let bound = 1 / Double(fan).squareRoot()
                for _ in 0..<t.count {
                    let u = Double(generator.next() >> 11) * 0x1p-53
                    values.append(bound * (2 * u - 1))
                }
            } else {
                let one = t.name.hasSuffix("weight") || t.name.hasSuffix("running_var")
                values += repeatElement(one ? 1.0 : 0.0, count: t.count)
            }
        }
        return values
    }
}

/// A federation's model: one of Veil's own, which it trains and evaluates, or the user's,
/// known only by its tensors (`tensors:…`), which the user's trainer trains and Veil sums.
public enum FederatedModel: Sendable {
    case veil(any Model)
    case tensors(TensorSchema)

    /// `softmax`, `mlp:H1,…` (``makeModel(_:featureCount:classCount:)``) or `tensors:…`.
    public init(_ specification: String, featureCount: Int, classCount: Int) throws(DataError) {
        if specification.hasPrefix(TensorSchema.prefix) {
            self = .tensors(try TensorSchema(parsing: specification))
        } else {
            self = .veil(try makeModel(specification, featureCount: featureCount, classCount: classCount))
        }
    }

    /// Veil's model, when it is one of Veil's.
    public var veil: (any Model)? {
        if case .veil(let model) = self { return model }
        return nil
    }

    /// Its parameters as named tensors.
    public var schema: TensorSchema {
        switch self {
        case .veil(let model): TensorSchema(model: model)
        case .tensors(let schema): schema
        }
    }

    public var parameterCount: Int {
        switch self {
        case .veil(let model): model.parameterCount
        case .tensors(let schema): schema.count
        }
    }

    public func initialParameters(using generator: inout some RandomNumberGenerator) -> [Double] {
        switch self {
        case .veil(let model): model.initialParameters(using: &generator)
        case .tensors(let schema): schema.initialParameters(using: &generator)
        }
    }
}
