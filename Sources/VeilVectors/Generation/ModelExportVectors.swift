import Foundation
import VeilCore
import VeilExport
import VeilLearning

extension ProjectVectors {
    static func onnxExport() throws -> VectorFile<ModelExportCases.Group> { try modelFiles(.onnx) }
    static func tfliteExport() throws -> VectorFile<ModelExportCases.Group> { try modelFiles(.tflite) }

    /// Exports, round trips and refusals of one model-file format (Specs/export.md §2 or §3).
    private static func modelFiles(_ format: ModelFormat) throws -> VectorFile<ModelExportCases.Group> {
        var inputs = Inputs("\(format.rawValue) export")
        var tests: [ModelExportCases.Test] = []
        func add(
            _ comment: String, _ flags: [String], _ result: ExpectedResult, error: String? = nil, _ operation: String,
            _ model: String, _ features: Int, _ classes: Int, round: Int, _ precision: ExportPrecision,
            _ parameters: [Double], calibration: [[Double]]? = nil, file: [UInt8]
        ) {
            tests.append(
                .init(
                    tcId: tests.count + 1, comment: comment, flags: flags, result: result, error: error,
                    operation: operation, model: model, features: features, classes: classes, round: round,
                    precision: precision.rawValue, parameters: parameters, calibration: calibration,
                    file: Hex.encode(file)))
        }
        /// Values in [low, low + width) from the public generator: 53 random bits each, so
        /// binary32 and binary16 both round them.
        func values(_ count: Int, low: Double = -4, width: Double = 8) -> [Double] {
            (0..<count).map { _ in
                let word = inputs.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                return Double(word >> 11) * 0x1p-53 * width + low
            }
        }
        func rows(_ features: Int) -> [[Double]] { (0..<6).map { _ in values(features, low: 0, width: 1) } }
        func dataset(_ rows: [[Double]]) throws -> Dataset {
            try Dataset(
                features: rows.flatMap { $0 }, labels: [Int](repeating: 0, count: rows.count),
                featureCount: rows[0].count, classCount: 2)
        }
        func checkpoint(_ model: String, _ features: Int, _ classes: Int, _ round: Int, _ p: [Double]) throws
            -> ModelCheckpoint
        { try ModelCheckpoint(model: model, features: features, classes: classes, round: round, parameters: p) }
        /// What a reader gives back: the stored values widened, or int8's dequantised plan.
        func readBack(_ file: [UInt8]) throws -> [Double] { try ModelFile.load(Data(file)).parameters }

        // Valid exports and their round trips, for each shape and precision.
        var files: [String: [UInt8]] = [:]
        for (specification, features, classes, round) in [
            ("softmax", 3, 2, 0), ("mlp:4", 3, 3, 12), ("mlp:3,2", 2, 2, 1),
        ] {
            let model = try makeModel(specification, featureCount: features, classCount: classes)
            var p = values(model.parameterCount)
            // A marker the invalid cases below find in the file: 1.5 is exact in every precision.
            p[0] = 1.5
            for precision in format.precisions {
                let calibration = precision == .int8 ? rows(features) : nil
                let file = [UInt8](
                    try ModelFile.export(
                        try checkpoint(specification, features, classes, round, p), format: format,
                        precision: precision, calibration: try calibration.map(dataset)))
                add(
                    "\(specification), \(features) features, \(classes) classes, \(precision.rawValue)", ["Normal"],
                    .valid, "export", specification, features, classes, round: round, precision, p,
                    calibration: calibration, file: file)
                add(
                    precision == .int8
                        ? "read back: the int8 weights and biases dequantised, q · scale"
                        : "read back: the \(precision.rawValue) values widened to binary64", ["RoundTrip"], .valid,
                    "load", specification, features, classes, round: round, precision, try readBack(file), file: file)
                files["\(specification) \(precision.rawValue)"] = file
            }
        }
        // Rounding at the edges: ties to even, the largest binary16, subnormals.
        for precision in format.precisions where precision != .int8 {
            // binary32's tie 2^24 + 1 is beyond binary16's range; 2049 is binary16's tie there.
            let edges: [Double] = [
                1 + 0x1p-11, 1 + 3 * 0x1p-11, 65504, -65504, 0x1p-24, 0x1p-25, 0.1, 1 + 0x1p-24,
                precision == .float32 ? 16_777_217 : 2049,
            ]
            let file = [UInt8](
                try ModelFile.export(try checkpoint("softmax", 2, 3, 3, edges), format: format, precision: precision))
            add(
                "rounding edges (ties to even, 65504, 2^-24, 2^-25) in \(precision.rawValue)", ["Rounding"], .valid,
                "export", "softmax", 2, 3, round: 3, precision, edges, file: file)
            add(
                "rounding edges read back in \(precision.rawValue)", ["Rounding"], .valid, "load", "softmax", 2, 3,
                round: 3, precision, try readBack(file), file: file)
        }
        if format == .tflite {
            // int8 at its edges: a constant input (its range is forced to include 0 and to be at
            // least 2^-16 wide), an all-zero weight row (scale 1), a weight exactly on a half step.
            let rows = [[0.5, 0.5], [0.5, 0.5]]
            let p = [0, 0, 127 * 0.01, 63.5 * 0.01, 0.25, -0.25]
            let file = [UInt8](
                try ModelFile.export(
                    try checkpoint("softmax", 2, 2, 0, p), format: .tflite, precision: .int8,
                    calibration: try dataset(rows)))
            add(
                "int8 edges: constant calibration rows, a zero weight row, a weight on a half step", ["Rounding"],
                .valid, "export", "softmax", 2, 2, round: 0, .int8, p, calibration: rows, file: file)
            add(
                "int8 edges read back", ["Rounding"], .valid, "load", "softmax", 2, 2, round: 0, .int8,
                try readBack(file), file: file)
        }

        // Refused exports.
        var big = values(6)
        big[2] = 65_505
        add(
            "float16 cannot hold 65505 (beyond its largest finite value)", ["Unrepresentable"], .invalid,
            error: "unrepresentable", "export", "softmax", 2, 2, round: 0, .float16, big, file: [])
        add(
            "one parameter too few for softmax on 2 features and 2 classes", ["BadCheckpoint"], .invalid,
            error: "invalidCheckpoint", "export", "softmax", 2, 2, round: 0, .float32, Array(big.dropLast()), file: [])
        add(
            "an unknown model", ["BadCheckpoint"], .invalid, error: "invalidCheckpoint", "export", "cnn:3", 2, 2,
            round: 0, .float32, big, file: [])
        if format == .onnx {
            add(
                "int8 is not an ONNX precision Veil writes", ["Unrepresentable"], .invalid, error: "unrepresentable",
                "export", "softmax", 2, 2, round: 0, .int8, values(6), calibration: [[0, 1]], file: [])
        } else {
            add(
                "int8 without calibration rows", ["Unrepresentable"], .invalid, error: "unrepresentable", "export",
                "softmax", 2, 2, round: 0, .int8, values(6), file: [])
            add(
                "int8 with calibration rows of the wrong width", ["Unrepresentable"], .invalid,
                error: "unrepresentable", "export", "softmax", 2, 2, round: 0, .int8, values(6),
                calibration: [[0, 1, 0]], file: [])
        }

        // Refused files: each a valid export (mlp:3,2 float32 above) changed in one place (the
        // first occurrence of a pattern: the first layer's Relu, Gemm, weight).
        let valid = files["mlp:3,2 float32"]!
        /// The file with the first occurrence of `old` replaced.
        func replacing(_ old: [UInt8], _ new: [UInt8], in file: [UInt8]) -> [UInt8] {
            let starts = (0...(file.count - old.count)).filter { Array(file[$0..<($0 + old.count)]) == old }
            precondition(!starts.isEmpty, "pattern \(old) not in the file")
            var copy = file
            copy.replaceSubrange(starts[0]..<(starts[0] + old.count), with: new)
            return copy
        }
        var refusedFiles: [(String, String, [UInt8])] = []
        switch format {
        case .onnx:
            let opset13: [UInt8] = [0x42, 0x04, 0x0A, 0x00, 0x10, 0x0D]
            refusedFiles = [
                (
                    "operator set 12 instead of 13", "unsupported",
                    replacing(opset13, [0x42, 0x04, 0x0A, 0x00, 0x10, 0x0C], in: valid)
                ),
                ("Tanh instead of Relu", "unsupported", replacing(Array("Relu".utf8), Array("Tanh".utf8), in: valid)),
                (
                    "Gemm without transB (transB = 0)", "unsupported",
                    replacing(Array("transB".utf8) + [0x18, 0x01], Array("transB".utf8) + [0x18, 0x00], in: valid)
                ),
                (
                    "a NaN weight", "unsupported",
                    replacing([0x00, 0x00, 0xC0, 0x3F], [0x00, 0x00, 0xC0, 0x7F], in: valid)
                ),
            ]
        case .tflite:
            var identifier = valid
            identifier[7] = UInt8(ascii: "4")
            let root = try FlatBuffers.TableReader(root: valid, identifier: "TFL3")
            var version = valid
            let versionAt = try root.field(0)!
            version.replaceSubrange(versionAt..<(versionAt + 4), with: [2, 0, 0, 0])
            // Model.subgraphs[0].operators[0].builtin_options.fused_activation_function
            var unfused = valid
            unfused[try root.tables(2)[0].tables(3)[0].table(4)!.field(0)!] = 0
            refusedFiles = [
                ("the file identifier TFL4", "malformed", identifier),
                ("schema version 2", "unsupported", version),
                ("the hidden layer's ReLU not fused (fused_activation_function 0)", "unsupported", unfused),
                (
                    "veil.precision says float16 of a float32 file", "unsupported",
                    replacing(Array("float32".utf8), Array("float16".utf8), in: valid)
                ),
                (
                    "a NaN weight", "unsupported",
                    replacing([0x00, 0x00, 0xC0, 0x3F], [0x00, 0x00, 0xC0, 0x7F], in: valid)
                ),
            ]
        }
        refusedFiles += [
            ("the file cut in half", "malformed", Array(valid.prefix(valid.count / 2))),
            ("an empty file", "malformed", []),
            ("not a model file", "malformed", [0x0A, 0xFF, 0x01]),
        ]
        for (comment, error, file) in refusedFiles {
            add(
                comment, ["ForeignFile"], .invalid, error: error, "load", "mlp:3,2", 2, 2, round: 1, .float32, [],
                file: file)
        }

        let section = format == .onnx ? "section 2" : "section 3"
        return VectorFile(
            algorithm: format == .onnx ? ONNXExportRunner.algorithm : TFLiteExportRunner.algorithm,
            generatorVersion: version,
            header: [
                "Veil's \(format == .onnx ? "ONNX" : "TensorFlow Lite") model files (Specs/export.md \(section)), hex in `file`.",
                "\"export\" writes the checkpoint (model, features, classes, round, parameters) at `precision`",
                "(int8 calibrated on the rows of `calibration`) and must give `file` byte for byte; \"load\" reads `file`",
                "back and must give the model, precision, round and the parameters as the file holds them (widened to",
                "binary64; int8 dequantised) — or refuse it with `error`.",
                "Project vectors, generated by `veil vectors generate`, confirmed by Specs/reference/export_reference.py.",
            ],
            notes: [
                "Normal": VectorNote(bugType: "BASIC", description: "A checkpoint written as a model file."),
                "RoundTrip": VectorNote(bugType: "BASIC", description: "A file Veil wrote, read back."),
                "Rounding": VectorNote(
                    bugType: "EDGE_CASE", description: "Round to nearest, ties to even; binary16's extremes; int8's."),
                "Unrepresentable": VectorNote(
                    bugType: "DEFINED", description: "What the format or precision cannot hold."),
                "BadCheckpoint": VectorNote(
                    bugType: "DEFINED", description: "Parameters that do not fit the model, or no such model."),
                "ForeignFile": VectorNote(
                    bugType: "DEFINED",
                    description: "A file that is not exactly Veil's graph, or not a model file at all."),
            ],
            testGroups: [.init(tests: tests)], numberOfTests: tests.count)
    }
}
