import Foundation
import SwiftProtobuf
import VeilCore
import VeilLearning

/// The precision of an exported model's weights and arithmetic.
public enum ExportPrecision: String, CaseIterable, Sendable {
    /// IEEE binary32 weights and arithmetic.
    case float32
    /// IEEE binary16 weights and arithmetic (half the size); inputs and outputs stay float32.
    case float16
    /// Full-integer: int8 weights (per-channel scales) and activations, int32 biases
    /// (TensorFlow Lite only; Specs/export.md §3.3).
    case int8

    /// The precisions an ONNX file is written in.
    public static let onnx: [ExportPrecision] = [.float32, .float16]

    var onnxType: Int32 {
        self == .float16
            ? Int32(Onnx_TensorProto.DataType.float16.rawValue) : Int32(Onnx_TensorProto.DataType.float.rawValue)
    }
}

/// Why a model file cannot be written or read back.
public enum ModelFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Not a model file at all (the protobuf or FlatBuffer does not parse).
    case malformed(String)
    /// An ONNX model, but not one of the graphs Specs/export.md describes.
    case unsupported(String)
    /// The parameters cannot be represented (a weight beyond float16's range).
    case unrepresentable(String)

    public var description: String {
        switch self {
        case .malformed(let why): "not a model file: \(why)"
        case .unsupported(let why): "not a model Veil exports (Specs/export.md): \(why)"
        case .unrepresentable(let why): "cannot export: \(why)"
        }
    }
}

/// Writes a Veil model as an ONNX file and reads such a file back (Specs/export.md): one Gemm
/// per dense layer (ReLU between them), a Softmax, input `features` [batch, F] and outputs
/// `logits` and `probabilities` [batch, C], all float32; a float16 model casts its input to
/// binary16, computes in binary16 and casts both outputs back.
public enum ONNXModel {
    /// The ONNX IR version written: 7, the first to carry opset 13.
    public static let irVersion: Int64 = 7
    /// The default-domain operator set written and required: 13 (Softmax over one axis).
    public static let opset: Int64 = 13

    /// The serialised ONNX model of `parameters` for `model`.
    /// - Throws: ``ModelFileError/unrepresentable(_:)`` for a float16 export of a weight
    ///   beyond binary16's largest finite value (65,504).
    public static func export(
        _ model: any Model, parameters: [Double], precision: ExportPrecision, round: Int = 0
    ) throws(ModelFileError) -> Data {
        let file = try makeFile(model, parameters: parameters, precision: precision, round: round)
        do { return try file.serializedBytes() } catch {
            // Serialising a complete proto2 message with no required fields cannot fail.
            preconditionFailure("serialising an ONNX model: \(error)")
        }
    }

    private static func makeFile(
        _ model: any Model, parameters: [Double], precision: ExportPrecision, round: Int
    ) throws(ModelFileError) -> Onnx_ModelProto {
        precondition(parameters.count == model.parameterCount, "the parameters do not fit the model")
        guard precision != .int8 else {
            throw .unrepresentable("ONNX files are float32 or float16; int8 is for tflite")
        }
        let layers = DenseLayers(model)
        if precision == .float32, let big = parameters.first(where: { !Float($0).isFinite }) {
            throw .unrepresentable("a parameter (\(big)) exceeds float32's range")
        }
        if precision == .float16,
            let big = parameters.first(where: { abs($0) > Double(Float16.greatestFiniteMagnitude) })
        {
            throw .unrepresentable("a parameter (\(big)) exceeds float16's range")
        }
        var graph = Onnx_GraphProto()
        graph.name = "veil_" + (layers.count == 1 ? "softmax" : "mlp")
        graph.input = [valueInfo("features", .float, ["batch", layers.sizes[0]])]
        graph.output = ["logits", "probabilities"].map { valueInfo($0, .float, ["batch", layers.sizes.last!]) }
        let half = precision == .float16
        var current = "features"
        if half {
            graph.node.append(node("Cast", [current], ["features.half"], ints: ["to": Int64(precision.onnxType)]))
            current = "features.half"
        }
        for l in 0..<layers.count {
            let (inputs, outputs) = (layers.sizes[l], layers.sizes[l + 1])
            let (w, b) = layers.offsets(l)
            graph.initializer.append(
                tensor("layer\(l).weight", [outputs, inputs], parameters[w..<b], precision))
            graph.initializer.append(tensor("layer\(l).bias", [outputs], parameters[b..<(b + outputs)], precision))
            let last = l == layers.count - 1
            let output = last ? (half ? "logits.half" : "logits") : "layer\(l).output"
            graph.node.append(
                node("Gemm", [current, "layer\(l).weight", "layer\(l).bias"], [output], ints: ["transB": 1]))
            current = output
            if !last {
                graph.node.append(node("Relu", [output], ["layer\(l).activation"]))
                current = "layer\(l).activation"
            }
        }
        let probabilities = half ? "probabilities.half" : "probabilities"
        graph.node.append(node("Softmax", [current], [probabilities], ints: ["axis": 1]))
        if half {
            let back = ["to": Int64(ExportPrecision.float32.onnxType)]
            graph.node.append(node("Cast", ["logits.half"], ["logits"], ints: back))
            graph.node.append(node("Cast", ["probabilities.half"], ["probabilities"], ints: back))
        }
        // Node names make runtime messages point at a node; they are the first output's name.
        for i in graph.node.indices { graph.node[i].name = graph.node[i].output[0] }

        var file = Onnx_ModelProto()
        file.irVersion = irVersion
        file.opsetImport = [
            .with {
                $0.domain = ""; $0.version = opset
            }
        ]
        file.producerName = "veil"
        file.producerVersion = VeilVersion.current
        file.modelVersion = Int64(max(round, 0))
        file.docString = "\(layers.specification) classifier trained by a Veil federation; Specs/export.md"
        file.graph = graph
        file.metadataProps = [
            .with {
                $0.key = "veil.model"; $0.value = layers.specification
            },
            .with {
                $0.key = "veil.precision"; $0.value = precision.rawValue
            },
            .with {
                $0.key = "veil.round"; $0.value = String(round)
            },
        ]
        return file
    }

    /// A model file read back: the model, its parameters (the file's float32 or float16
    /// values widened exactly to binary64), its precision and the round it records.
    public struct Loaded: Sendable {
        public let model: any Model
        public let parameters: [Double]
        public let precision: ExportPrecision
        public let round: Int
    }

    /// Reads a file ``export(_:parameters:precision:round:)`` wrote. Anything else — another
    /// graph, operator set, type or shape — is refused with the reason, never guessed at.
    public static func load(_ bytes: Data) throws(ModelFileError) -> Loaded {
        let file: Onnx_ModelProto
        do { file = try Onnx_ModelProto(serializedBytes: bytes) } catch { throw .malformed("\(error)") }
        guard file.hasGraph else { throw .malformed("the model has no graph") }
        let opsets = file.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }
        guard opsets.count == 1, opsets[0].version == opset, file.opsetImport.count == 1 else {
            throw .unsupported(
                "the operator sets are \(file.opsetImport.map { "\($0.domain):\($0.version)" }), not ai.onnx:\(opset) alone"
            )
        }
        let graph = file.graph
        let precision: ExportPrecision
        switch graph.node.first?.opType {
        case "Cast": precision = .float16
        case "Gemm": precision = .float32
        default: throw .unsupported("the graph starts with \(graph.node.first?.opType ?? "no node")")
        }
        // The layer sizes from the weights: layer l's weight is [out, in].
        var sizes: [Int] = []
        var l = 0
        while let weight = graph.initializer.first(where: { $0.name == "layer\(l).weight" }) {
            guard sizes.count <= 65, weight.dims.count == 2, weight.dims.allSatisfy({ (1...(1 << 24)).contains($0) })
            else {
                throw .unsupported("layer\(l).weight has shape \(weight.dims)")
            }
            if l == 0 { sizes.append(Int(weight.dims[1])) }
            guard sizes.last == Int(weight.dims[1]) else {
                throw .unsupported(
                    "layer\(l).weight takes \(weight.dims[1]) inputs, the layer before gives \(sizes.last!)")
            }
            sizes.append(Int(weight.dims[0]))
            l += 1
        }
        guard sizes.count >= 2, sizes.last! >= 2 else {
            throw .unsupported("no layer0.weight with two classes or more")
        }
        let layers = DenseLayers(sizes: sizes)
        // Every parameter takes at least a byte of the file: a shape that claims more is refused
        // before anything that size is allocated.
        guard layers.parameterCount <= bytes.count else {
            throw .unsupported(
                "the weights' shapes claim \(layers.parameterCount) parameters in a \(bytes.count)-byte file")
        }
        let model: any Model
        do { model = try makeModel(layers.specification, featureCount: sizes[0], classCount: sizes.last!) } catch {
            throw .unsupported(error.description)
        }
        // The graph must be exactly the one export writes for this model and precision: the
        // file is then known to compute what the parameters below compute in Veil.
        let reference = try makeFile(
            model, parameters: [Double](repeating: 0, count: model.parameterCount), precision: precision, round: 0
        ).graph
        guard graph.node == reference.node else {
            throw .unsupported("the graph's nodes are not Veil's \(layers.specification) graph")
        }
        guard graph.input == reference.input, graph.output == reference.output else {
            throw .unsupported("the graph's inputs or outputs are not features → logits, probabilities")
        }
        guard graph.initializer.count == reference.initializer.count else {
            throw .unsupported(
                "the graph has \(graph.initializer.count) initializers, expected \(reference.initializer.count)")
        }
        var parameters = [Double](repeating: 0, count: model.parameterCount)
        for l in 0..<layers.count {
            let (w, b) = layers.offsets(l)
            let outputs = sizes[l + 1]
            for (name, dims, start) in [
                ("layer\(l).weight", [outputs, sizes[l]], w), ("layer\(l).bias", [outputs], b),
            ] {
                guard let t = graph.initializer.first(where: { $0.name == name }), t.dims == dims.map(Int64.init) else {
                    throw .unsupported("\(name) is missing or not of shape \(dims)")
                }
                let values = try decode(t, count: dims.reduce(1, *), precision: precision)
                for (i, v) in values.enumerated() { parameters[start + i] = v }
            }
        }
        guard let roundText = file.metadataProps.first(where: { $0.key == "veil.round" })?.value,
            roundText.allSatisfy(\.isASCII), let round = Int(roundText), round >= 0, String(round) == roundText
        else { throw .unsupported("no veil.round metadata with a round") }
        // The file must be exactly what Veil writes for these parameters (§2.4): every other
        // field — IR version, producer, metadata, documentation — is checked by this.
        guard try export(model, parameters: parameters, precision: precision, round: round) == bytes else {
            throw .unsupported(
                "the file is not Veil's \(layers.specification) \(precision.rawValue) model byte for byte")
        }
        return Loaded(model: model, parameters: parameters, precision: precision, round: round)
    }

    // MARK: - Building blocks

    private static func valueInfo(_ name: String, _ type: Onnx_TensorProto.DataType, _ dims: [Any])
        -> Onnx_ValueInfoProto
    {
        .with { info in
            info.name = name
            info.type.tensorType.elemType = Int32(type.rawValue)
            info.type.tensorType.shape.dim = dims.map { d in
                .with { if let n = d as? Int { $0.dimValue = Int64(n) } else { $0.dimParam = "\(d)" } }
            }
        }
    }

    private static func node(_ op: String, _ inputs: [String], _ outputs: [String], ints: [String: Int64] = [:])
        -> Onnx_NodeProto
    {
        .with { n in
            n.opType = op
            n.input = inputs
            n.output = outputs
            n.attribute = ints.sorted { $0.key < $1.key }.map { key, value in
                .with {
                    $0.name = key
                    $0.type = .int
                    $0.i = value
                }
            }
        }
    }

    /// A tensor with little-endian raw data (ONNX's layout for raw_data).
    private static func tensor(
        _ name: String, _ dims: [Int], _ values: ArraySlice<Double>, _ precision: ExportPrecision
    ) -> Onnx_TensorProto {
        // export refuses int8 before any tensor is made: float16 or float32 here.
        let half = precision == .float16
        var raw = Data(capacity: values.count * (half ? 2 : 4))
        for v in values {
            if half {
                withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { raw.append(contentsOf: $0) }
            } else {
                withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { raw.append(contentsOf: $0) }
            }
        }
        return .with {
            $0.name = name
            $0.dims = dims.map(Int64.init)
            $0.dataType = precision.onnxType
            $0.rawData = raw
        }
    }

    /// A tensor's values, from raw_data (the only place Veil writes them).
    private static func decode(_ t: Onnx_TensorProto, count: Int, precision: ExportPrecision) throws(ModelFileError)
        -> [Double]
    {
        guard t.dataType == precision.onnxType else {
            throw .unsupported("\(t.name) has element type \(t.dataType), the graph computes in \(precision.rawValue)")
        }
        let width = precision == .float32 ? 4 : 2
        guard t.rawData.count == count * width else {
            throw .unsupported("\(t.name) holds \(t.rawData.count) bytes, not \(count * width)")
        }
        let bytes = [UInt8](t.rawData)
        var values = [Double](repeating: 0, count: count)
        for i in 0..<count {
            let at = i * width
            if width == 4 {
                let bits =
                    UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3])
                    << 24
                values[i] = Double(Float(bitPattern: bits))
            } else {
                values[i] = Double(Float16(bitPattern: UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8))
            }
            guard values[i].isFinite else { throw .unsupported("\(t.name) holds a value that is not finite") }
        }
        return values
    }
}
