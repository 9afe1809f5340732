import Foundation
import VeilCore
import VeilLearning

/// Writes a Veil model as a TensorFlow Lite file and reads such a file back (Specs/export.md
/// §3): one FULLY_CONNECTED per dense layer (ReLU fused into the hidden ones), a SOFTMAX,
/// input `features` [1, F] (batch resizable: shape signature [−1, F]), outputs `logits` and
/// `probabilities` [1, C], all float32. float16 stores the constants in binary16 behind
/// DEQUANTIZE; int8 is full-integer: QUANTIZE at the input, int8 activations and per-channel
/// int8 weights, int32 biases, DEQUANTIZE at the outputs.
public enum TFLiteModel {
    /// The TFLite schema version written and required.
    public static let schemaVersion: UInt32 = 3
    static let identifier = "TFL3"

    /// An int8 model's quantisation: the affine parameters of each activation (input, each
    /// hidden layer's output, the logits) and each layer's quantised weights and biases.
    public struct Int8Plan: Hashable, Sendable {
        public struct Affine: Hashable, Sendable {
            public let scale: Float
            public let zeroPoint: Int8
        }

        public struct Layer: Hashable, Sendable {
            /// out × in, row by row; symmetric in [−127, 127].
            public let weights: [Int8]
            /// One scale per output (row).
            public let weightScales: [Float]
            public let biases: [Int32]
            /// input scale × weight scale, per output.
            public let biasScales: [Float]
        }

        /// activations[0] is the input's, activations[l + 1] layer l's output's.
        public let activations: [Affine]
        public let layers: [Layer]

        /// Whether §3.3 could have made this plan: activation scales at least 2⁻¹⁶/255, each
        /// weight row reaching ±127 at its scale (or all zero at scale 1), weights in
        /// [−127, 127], bias scales binary32(s_in · w_o), biases other than −2³¹.
        var isCalibratedPlan: Bool {
            let floor = Float(0x1p-16 / 255)
            guard activations.allSatisfy({ $0.scale >= floor && $0.scale.isFinite }) else { return false }
            for (l, layer) in layers.enumerated() {
                let inputs = layer.weights.count / max(layer.weightScales.count, 1)
                for (o, scale) in layer.weightScales.enumerated() {
                    let row = layer.weights[(o * inputs)..<((o + 1) * inputs)]
                    guard row.allSatisfy({ $0 != -128 }) else { return false }
                    let top = row.map { abs(Int($0)) }.max() ?? 0
                    guard top == 127 || (top == 0 && scale == 1) else { return false }
                    guard layer.biasScales[o] == Float(Double(activations[l].scale) * Double(scale)) else {
                        return false
                    }
                }
                guard layer.biases.allSatisfy({ $0 != Int32.min }) else { return false }
            }
            return true
        }

        /// The parameters this plan computes with: q · scale, in §1's layout.
        public var parameters: [Double] {
            layers.flatMap { layer in
                let inputs = layer.weights.count / layer.weightScales.count
                return layer.weights.enumerated().map { Double($1) * Double(layer.weightScales[$0 / inputs]) }
                    + zip(layer.biases, layer.biasScales).map { Double($0) * Double($1) }
            }
        }
    }

    /// Quantises `parameters` to int8 (Specs/export.md §3.3), calibrating each activation's
    /// range on `calibration`'s rows (computed in binary64 with the unquantised parameters).
    public static func plan(_ model: any Model, parameters: [Double], calibration: Dataset) throws(ModelFileError)
        -> Int8Plan
    {
        let layers = DenseLayers(model)
        guard calibration.count > 0, calibration.featureCount == layers.sizes[0] else {
            throw .unrepresentable("int8 needs calibration rows of \(layers.sizes[0]) features")
        }
        // The range of every activation over the calibration rows, 0 included.
        var low = [Double](repeating: 0, count: layers.sizes.count)
        var high = low
        var activation = [Double](repeating: 0, count: layers.sizes.max()!)
        var next = activation
        for row in 0..<calibration.count {
            let x = calibration.features[(row * layers.sizes[0])..<((row + 1) * layers.sizes[0])]
            for (j, v) in x.enumerated() { activation[j] = v }
            for j in 0..<layers.sizes[0] {
                low[0] = min(low[0], activation[j])
                high[0] = max(high[0], activation[j])
            }
            for l in 0..<layers.count {
                let (inputs, outputs) = (layers.sizes[l], layers.sizes[l + 1])
                let (w, b) = layers.offsets(l)
                for o in 0..<outputs {
                    var s = parameters[b + o]
                    for i in 0..<inputs { s += parameters[w + o * inputs + i] * activation[i] }
                    next[o] = l == layers.count - 1 ? s : max(0, s)
                    low[l + 1] = min(low[l + 1], next[o])
                    high[l + 1] = max(high[l + 1], next[o])
                }
                swap(&activation, &next)
            }
        }
        guard (low + high).allSatisfy({ $0.isFinite && Float($0).isFinite }) else {
            throw .unrepresentable("the calibration rows drive an activation beyond binary32's range")
        }
        let affine = zip(low, high).map { low, high -> Int8Plan.Affine in
            let scale = Float(max(high - low, 0x1p-16) / 255)
            let zero = (-128 - low / Double(scale)).rounded(.toNearestOrAwayFromZero)
            return .init(scale: scale, zeroPoint: Int8(min(max(zero, -128), 127)))
        }
        var planned: [Int8Plan.Layer] = []
        for l in 0..<layers.count {
            let (inputs, outputs) = (layers.sizes[l], layers.sizes[l + 1])
            let (w, b) = layers.offsets(l)
            var weights: [Int8] = []
            var weightScales: [Float] = []
            var biases: [Int32] = []
            var biasScales: [Float] = []
            for o in 0..<outputs {
                let row = parameters[(w + o * inputs)..<(w + (o + 1) * inputs)]
                let largest = row.map(abs).max() ?? 0
                let scale = largest > 0 ? Float(largest / 127) : 1
                weightScales.append(scale)
                weights += row.map { Int8(min(max(($0 / Double(scale)).rounded(.toNearestOrAwayFromZero), -127), 127)) }
                let biasScale = Float(Double(affine[l].scale) * Double(scale))
                guard biasScale > 0 else { throw .unrepresentable("layer \(l)'s bias scale underflows binary32") }
                let q = (parameters[b + o] / Double(biasScale)).rounded(.toNearestOrAwayFromZero)
                guard abs(q) <= Double(Int32.max) else {
                    throw .unrepresentable("layer \(l)'s bias \(o) does not fit int32 at scale \(biasScale)")
                }
                biases.append(Int32(q))
                biasScales.append(biasScale)
            }
            planned.append(.init(weights: weights, weightScales: weightScales, biases: biases, biasScales: biasScales))
        }
        return Int8Plan(activations: affine, layers: planned)
    }

    /// The serialised TFLite model. int8 needs `plan` (``plan(_:parameters:calibration:)``).
    public static func export(
        _ model: any Model, parameters: [Double], precision: ExportPrecision, round: Int = 0, plan: Int8Plan? = nil
    ) throws(ModelFileError) -> Data {
        precondition(parameters.count == model.parameterCount, "the parameters do not fit the model")
        if precision == .float16,
            let big = parameters.first(where: { abs($0) > Double(Float16.greatestFiniteMagnitude) })
        {
            throw .unrepresentable("a parameter (\(big)) exceeds float16's range")
        }
        guard precision != .int8 || plan != nil else { throw .unrepresentable("int8 needs a calibrated plan") }
        if precision == .float32, let big = parameters.first(where: { !Float($0).isFinite }) {
            throw .unrepresentable("a parameter (\(big)) exceeds float32's range")
        }
        let layers = DenseLayers(model)
        var graph = Graph(precision: precision)
        graph.build(layers, parameters: parameters, plan: plan)
        return Data(graph.serialize(model: layers.specification, round: round))
    }

    /// A file read back: its model, parameters (the file's values widened, int8 dequantised),
    /// precision, round and, for int8, the plan.
    public struct Loaded: Sendable {
        public let model: any Model
        public let parameters: [Double]
        public let precision: ExportPrecision
        public let round: Int
        public let plan: Int8Plan?
    }

    /// Reads a file ``export(_:parameters:precision:round:plan:)`` wrote: the constants are read
    /// from it, the file is written again from them, and the two must be identical — any other
    /// graph, shape, type, quantisation or layout is refused.
    public static func load(_ data: Data) throws(ModelFileError) -> Loaded {
        let bytes = [UInt8](data)
        let root = try FlatBuffers.TableReader(root: bytes, identifier: identifier)
        guard try root.u32(0) == schemaVersion else { throw .unsupported("schema version \(try root.u32(0)), not 3") }
        let buffers = try root.tables(4).map { buffer throws(ModelFileError) in Array(try buffer.byteVector(0)) }
        var metadata: [String: String] = [:]
        for entry in try root.tables(6) {
            let index = Int(try entry.u32(1))
            guard let name = try entry.string(0), buffers.indices.contains(index) else {
                throw .unsupported("a metadata entry without a name or buffer")
            }
            metadata[name] = String(decoding: buffers[index], as: UTF8.self)
        }
        guard let precision = metadata["veil.precision"].flatMap(ExportPrecision.init(rawValue:)),
            let specification = metadata["veil.model"], let round = metadata["veil.round"].flatMap(Int.init),
            round >= 0
        else { throw .unsupported("no veil.model, veil.precision and veil.round metadata") }
        guard let subgraph = try root.tables(2).first else { throw .unsupported("no subgraph") }
        let tensors = try subgraph.tables(0)
        var byName: [String: FlatBuffers.TableReader] = [:]
        for tensor in tensors { byName[try tensor.string(3) ?? ""] = tensor }
        func constant(_ name: String) throws(ModelFileError) -> (
            shape: [Int32], bytes: [UInt8], tensor: FlatBuffers.TableReader
        ) {
            guard let tensor = byName[name] else { throw .unsupported("no tensor \(name)") }
            let index = Int(try tensor.u32(2))
            guard buffers.indices.contains(index) else { throw .unsupported("\(name)'s buffer is missing") }
            return (try tensor.int32s(0), buffers[index], tensor)
        }
        // The widths from the weights' shapes, as for ONNX.
        let suffix = precision == .float16 ? ".half" : ""
        var sizes: [Int] = []
        while byName["layer\(max(sizes.count - 1, 0)).weight\(suffix)"] != nil {
            let shape = try constant("layer\(max(sizes.count - 1, 0)).weight\(suffix)").shape
            guard sizes.count <= 65, shape.count == 2, shape.allSatisfy({ (1...(1 << 24)).contains($0) }),
                sizes.isEmpty || sizes.last == Int(shape[1])
            else { throw .unsupported("a weight of shape \(shape)") }
            if sizes.isEmpty { sizes.append(Int(shape[1])) }
            sizes.append(Int(shape[0]))
        }
        guard sizes.count >= 2, sizes.last! >= 2 else {
            throw .unsupported("no layer0.weight with two classes or more")
        }
        let layers = DenseLayers(sizes: sizes)
        // Every parameter takes at least a byte of the file: a shape that claims more is refused
        // before anything that size is allocated.
        guard layers.parameterCount <= data.count else {
            throw .unsupported(
                "the weights' shapes claim \(layers.parameterCount) parameters in a \(data.count)-byte file")
        }
        guard layers.specification == specification else {
            throw .unsupported("veil.model says \(specification), the weights make \(layers.specification)")
        }
        let model: any Model
        do { model = try makeModel(specification, featureCount: sizes[0], classCount: sizes.last!) } catch {
            throw .unsupported(error.description)
        }
        var parameters = [Double](repeating: 0, count: model.parameterCount)
        var plan: Int8Plan?
        switch precision {
        case .float32, .float16:
            for l in 0..<layers.count {
                let (w, b) = layers.offsets(l)
                for (name, start, count) in [
                    ("layer\(l).weight\(suffix)", w, b - w), ("layer\(l).bias\(suffix)", b, sizes[l + 1]),
                ] {
                    let values = try floats(try constant(name).bytes, count: count, half: precision == .float16, name)
                    for (i, v) in values.enumerated() { parameters[start + i] = v }
                }
            }
        case .int8:
            var activations: [Int8Plan.Affine] = []
            for name in ["features.int8"] + (0..<(layers.count - 1)).map { "layer\($0).activation" } + ["logits.int8"] {
                guard let tensor = byName[name], let q = try tensor.table(4) else {
                    throw .unsupported("\(name) is missing or not quantised")
                }
                let (scales, zeros) = (try q.floats(2), try q.int64s(3))
                guard scales.count == 1, zeros.count == 1, scales[0] > 0, scales[0].isFinite,
                    (-128...127).contains(zeros[0])
                else { throw .unsupported("\(name)'s quantisation is not one scale and zero point") }
                activations.append(.init(scale: scales[0], zeroPoint: Int8(zeros[0])))
            }
            var planned: [Int8Plan.Layer] = []
            for l in 0..<layers.count {
                let weight = try constant("layer\(l).weight")
                let bias = try constant("layer\(l).bias")
                guard let wq = try weight.tensor.table(4), let bq = try bias.tensor.table(4) else {
                    throw .unsupported("layer \(l)'s constants are not quantised")
                }
                let outputs = sizes[l + 1]
                let weightScales = try wq.floats(2)
                let biasScales = try bq.floats(2)
                guard weightScales.count == outputs, biasScales.count == outputs,
                    weight.bytes.count == outputs * sizes[l],
                    bias.bytes.count == 4 * outputs,
                    (weightScales + biasScales).allSatisfy({ $0 > 0 && $0.isFinite })
                else { throw .unsupported("layer \(l)'s quantised constants do not fit its shape") }
                let biases = (0..<outputs).map { o in
                    Int32(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bias.bytes[4 * o + $1]) << (8 * $1) })
                }
                planned.append(
                    .init(
                        weights: weight.bytes.map { Int8(bitPattern: $0) }, weightScales: weightScales, biases: biases,
                        biasScales: biasScales))
            }
            plan = Int8Plan(activations: activations, layers: planned)
            guard plan!.isCalibratedPlan else { throw .unsupported("the int8 quantisation is not §3.3's") }
            parameters = plan!.parameters
        }
        guard parameters.allSatisfy(\.isFinite) else { throw .unsupported("a constant is not finite") }
        // The file must be exactly what Veil writes for these constants.
        let rewritten = try export(model, parameters: parameters, precision: precision, round: round, plan: plan)
        guard rewritten == data else {
            throw .unsupported("the file is not Veil's \(specification) \(precision.rawValue) graph")
        }
        return Loaded(model: model, parameters: parameters, precision: precision, round: round, plan: plan)
    }

    private static func floats(_ bytes: [UInt8], count: Int, half: Bool, _ name: String) throws(ModelFileError)
        -> [Double]
    {
        let width = half ? 2 : 4
        guard bytes.count == count * width else {
            throw .unsupported("\(name) holds \(bytes.count) bytes, not \(count * width)")
        }
        return (0..<count).map { i in
            let at = i * width
            if half { return Double(Float16(bitPattern: UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8)) }
            let bits =
                UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3])
                << 24
            return Double(Float(bitPattern: bits))
        }
    }

    // MARK: - The graph

    /// TFLite's enumerations (schema.fbs): tensor types, builtin operators and options.
    enum TensorType: UInt8 {
        case float32 = 0, float16 = 1, int32 = 2, int8 = 9
    }

    enum Operator: Int32 {
        case dequantize = 6, fullyConnected = 9, softmax = 25, quantize = 114
    }

    private struct Tensor {
        let name: String
        let shape: [Int32]
        /// −1 for the batch dimension of activations; nil for constants.
        let signature: [Int32]?
        let type: TensorType
        let buffer: UInt32
        let quantization: (scales: [Float], zeroPoints: [Int64])?
    }

    private struct Node {
        let op: Operator
        let version: Int32
        let inputs: [Int32]
        let outputs: [Int32]
        /// FULLY_CONNECTED: its fused activation (0 none, 1 ReLU).
        let fusedActivation: Int8?
    }

    private struct Graph {
        let precision: ExportPrecision
        var tensors: [Tensor] = []
        var nodes: [Node] = []
        /// Buffer 0 is the empty buffer every non-constant tensor refers to.
        var buffers: [[UInt8]] = [[]]

        init(precision: ExportPrecision) { self.precision = precision }

        /// A tensor; an activation (`batched`) gets the shape signature with a dynamic batch.
        mutating func tensor(
            _ name: String, _ shape: [Int], _ type: TensorType, data: [UInt8]? = nil,
            quantization: (scales: [Float], zeroPoints: [Int64])? = nil, batched: Bool = true
        ) -> Int32 {
            var buffer: UInt32 = 0
            if let data {
                buffers.append(data)
                buffer = UInt32(buffers.count - 1)
            }
            let signature = data == nil && batched ? [-1] + shape.dropFirst().map(Int32.init) : nil
            tensors.append(
                Tensor(
                    name: name, shape: shape.map(Int32.init), signature: signature, type: type, buffer: buffer,
                    quantization: quantization))
            return Int32(tensors.count - 1)
        }

        mutating func node(_ op: Operator, version: Int32 = 1, _ inputs: [Int32], _ output: Int32, relu: Bool? = nil) {
            nodes.append(
                Node(
                    op: op, version: version, inputs: inputs, outputs: [output],
                    fusedActivation: relu.map { $0 ? 1 : 0 }))
        }

        mutating func build(_ layers: DenseLayers, parameters: [Double], plan: Int8Plan?) {
            let int8 = precision == .int8
            var current = tensor("features", [1, layers.sizes[0]], .float32)
            if let plan {
                let a = plan.activations[0]
                let quantized = tensor(
                    "features.int8", [1, layers.sizes[0]], .int8, quantization: ([a.scale], [Int64(a.zeroPoint)]))
                node(.quantize, [current], quantized)
                current = quantized
            }
            var logits: Int32 = 0
            for l in 0..<layers.count {
                let (inputs, outputs) = (layers.sizes[l], layers.sizes[l + 1])
                let (w, b) = layers.offsets(l)
                let weight: Int32
                let bias: Int32
                switch precision {
                case .float32:
                    weight = tensor("layer\(l).weight", [outputs, inputs], .float32, data: float32s(parameters[w..<b]))
                    bias = tensor("layer\(l).bias", [outputs], .float32, data: float32s(parameters[b..<(b + outputs)]))
                case .float16:
                    let halfWeight = tensor(
                        "layer\(l).weight.half", [outputs, inputs], .float16, data: float16s(parameters[w..<b]))
                    let halfBias = tensor(
                        "layer\(l).bias.half", [outputs], .float16, data: float16s(parameters[b..<(b + outputs)]))
                    // Dequantised constants: no batch dimension, so no shape signature.
                    weight = tensor("layer\(l).weight", [outputs, inputs], .float32, batched: false)
                    bias = tensor("layer\(l).bias", [outputs], .float32, batched: false)
                    // Constants are dequantised once, before the first inference.
                    nodes.append(
                        Node(op: .dequantize, version: 3, inputs: [halfWeight], outputs: [weight], fusedActivation: nil)
                    )
                    nodes.append(
                        Node(op: .dequantize, version: 3, inputs: [halfBias], outputs: [bias], fusedActivation: nil))
                case .int8:
                    let layer = plan!.layers[l]
                    weight = tensor(
                        "layer\(l).weight", [outputs, inputs], .int8, data: layer.weights.map { UInt8(bitPattern: $0) },
                        quantization: (layer.weightScales, [Int64](repeating: 0, count: outputs)))
                    bias = tensor(
                        "layer\(l).bias", [outputs], .int32,
                        data: layer.biases.flatMap { FlatBuffers.littleEndian($0) },
                        quantization: (layer.biasScales, [Int64](repeating: 0, count: outputs)))
                }
                let last = l == layers.count - 1
                let name = last ? (int8 ? "logits.int8" : "logits") : "layer\(l).activation"
                let output: Int32
                if let plan {
                    let a = plan.activations[l + 1]
                    output = tensor(name, [1, outputs], .int8, quantization: ([a.scale], [Int64(a.zeroPoint)]))
                } else {
                    output = tensor(name, [1, outputs], .float32)
                }
                node(.fullyConnected, version: int8 ? 4 : 1, [current, weight, bias], output, relu: !last)
                current = output
                logits = output
            }
            if int8 {
                // TFLite's int8 softmax requires the output scale 1/256 and zero point −128.
                let classes = layers.sizes.last!
                let probabilities = tensor(
                    "probabilities.int8", [1, classes], .int8, quantization: ([1.0 / 256], [-128]))
                node(.softmax, version: 2, [logits], probabilities)
                let logitsOut = tensor("logits", [1, classes], .float32)
                node(.dequantize, version: 2, [logits], logitsOut)
                let probabilitiesOut = tensor("probabilities", [1, classes], .float32)
                node(.dequantize, version: 2, [probabilities], probabilitiesOut)
            } else {
                let probabilities = tensor("probabilities", [1, layers.sizes.last!], .float32)
                node(.softmax, [logits], probabilities)
            }
        }

        func float32s(_ values: ArraySlice<Double>) -> [UInt8] {
            values.flatMap { FlatBuffers.littleEndian(Float($0).bitPattern) }
        }
        func float16s(_ values: ArraySlice<Double>) -> [UInt8] {
            values.flatMap { FlatBuffers.littleEndian(Float16($0).bitPattern) }
        }

        func serialize(model specification: String, round: Int) -> [UInt8] {
            typealias FB = FlatBuffers
            // Operator codes in the order of first use.
            var codes: [(Operator, Int32)] = []
            for node in nodes where !codes.contains(where: { $0 == (node.op, node.version) }) {
                codes.append((node.op, node.version))
            }
            let metadata = [
                ("veil.model", specification), ("veil.precision", precision.rawValue), ("veil.round", String(round)),
            ]
            var allBuffers = buffers
            var metadataTables: [FB.Table] = []
            for (name, value) in metadata {
                allBuffers.append(Array(value.utf8))
                var entry = FB.Table()
                entry[0] = .reference(.string(name))
                entry[1] = FB.scalar(UInt32(allBuffers.count - 1))
                metadataTables.append(entry)
            }
            let operatorCodes = codes.map { op, version -> FB.Table in
                var code = FB.Table()
                code[0] = FB.scalar(Int8(op.rawValue))
                code[2] = FB.scalar(version)
                code[3] = FB.scalar(op.rawValue)
                return code
            }
            let tensorTables = tensors.map { t -> FB.Table in
                var table = FB.Table()
                table[0] = .reference(FB.vector(t.shape))
                table[1] = FB.scalar(t.type.rawValue)
                table[2] = FB.scalar(t.buffer)
                table[3] = .reference(.string(t.name))
                if let q = t.quantization {
                    var quantization = FB.Table()
                    quantization[2] = .reference(FB.vector(q.scales))
                    quantization[3] = .reference(FB.vector(q.zeroPoints))
                    quantization[6] = FB.scalar(Int32(0))
                    table[4] = .reference(.table(quantization))
                }
                if let signature = t.signature { table[7] = .reference(FB.vector(signature)) }
                return table
            }
            let operatorTables = nodes.map { node -> FB.Table in
                var table = FB.Table()
                table[0] = FB.scalar(UInt32(codes.firstIndex { $0 == (node.op, node.version) }!))
                table[1] = .reference(FB.vector(node.inputs))
                table[2] = .reference(FB.vector(node.outputs))
                switch node.op {
                case .fullyConnected:
                    var options = FB.Table()
                    options[0] = FB.scalar(node.fusedActivation ?? 0)
                    table[3] = FB.scalar(UInt8(8))  // BuiltinOptions.FullyConnectedOptions
                    table[4] = .reference(.table(options))
                case .softmax:
                    var options = FB.Table()
                    options[0] = FB.scalar(Float(1))  // beta
                    table[3] = FB.scalar(UInt8(9))  // BuiltinOptions.SoftmaxOptions
                    table[4] = .reference(.table(options))
                case .quantize, .dequantize:
                    break
                }
                return table
            }
            var subgraph = FB.Table()
            subgraph[0] = .reference(.tables(tensorTables))
            subgraph[1] = .reference(FB.vector([Int32(0)]))
            let outputs = ["logits", "probabilities"].map { name in Int32(tensors.firstIndex { $0.name == name }!) }
            subgraph[2] = .reference(FB.vector(outputs))
            subgraph[3] = .reference(.tables(operatorTables))
            subgraph[4] = .reference(.string("main"))
            var root = FB.Table()
            root[0] = FB.scalar(schemaVersion)
            root[1] = .reference(.tables(operatorCodes))
            root[2] = .reference(.tables([subgraph]))
            root[3] = .reference(.string("\(specification) classifier trained by a Veil federation; Specs/export.md"))
            root[4] = .reference(
                .tables(
                    allBuffers.map { data in
                        var buffer = FB.Table()
                        // TFLite maps constants in place: their data is 16-byte aligned.
                        if !data.isEmpty { buffer[0] = .reference(FB.vector(data, alignment: 16)) }
                        return buffer
                    }))
            root[6] = .reference(.tables(metadataTables))
            return FB.serialize(root: root, identifier: TFLiteModel.identifier)
        }
    }
}
