import Foundation
import VeilCore
import VeilExport
import VeilLearning

extension ProjectVectors {
    static func onnxExport() throws -> VectorFile<ModelExportRunner.Group> {
        var inputs = Inputs("onnx export")
        var tests: [ModelExportRunner.Test] = []
        func add(
            _ comment: String, _ flags: [String], _ result: ExpectedResult, error: String? = nil, _ operation: String,
            _ model: String, _ features: Int, _ classes: Int, round: Int, _ precision: ExportPrecision,
            _ parameters: [Double], file: [UInt8]
        ) {
            tests.append(
                .init(
                    tcId: tests.count + 1, comment: comment, flags: flags, result: result, error: error,
                    operation: operation, model: model, features: features, classes: classes, round: round,
                    precision: precision.rawValue, parameters: parameters, file: Hex.encode(file)))
        }
        /// Parameters in [−4, 4) from the public generator: 53 random bits each, so binary32
        /// and binary16 both round them.
        func parameters(_ count: Int) -> [Double] {
            (0..<count).map { _ in
                let word = inputs.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                return Double(word >> 11) * 0x1p-53 * 8 - 4
            }
        }
        func export(_ model: any Model, _ p: [Double], _ precision: ExportPrecision, round: Int) throws -> [UInt8] {
            [UInt8](try ONNXModel.export(model, parameters: p, precision: precision, round: round))
        }
        func widened(_ p: [Double], _ precision: ExportPrecision) -> [Double] {
            p.map { precision == .float32 ? Double(Float($0)) : Double(Float16($0)) }
        }

        // Valid exports and their round trips, for each shape and precision.
        var files: [(String, [UInt8])] = []
        for (specification, features, classes, round) in [
            ("softmax", 3, 2, 0), ("mlp:4", 3, 3, 12), ("mlp:3,2", 2, 2, 1),
        ] {
            let model = try makeModel(specification, featureCount: features, classCount: classes)
            var p = parameters(model.parameterCount)
            // A marker the invalid cases below find in the file: 1.5 is exact in both precisions.
            p[0] = 1.5
            for precision in ExportPrecision.onnx {
                let file = try export(model, p, precision, round: round)
                add(
                    "\(specification), \(features) features, \(classes) classes, \(precision.rawValue)", ["Normal"],
                    .valid, "export", specification, features, classes, round: round, precision, p, file: file)
                add(
                    "read back: the \(precision.rawValue) values widened to binary64", ["RoundTrip"], .valid, "load",
                    specification, features, classes, round: round, precision, widened(p, precision), file: file)
                files.append(("\(specification) \(precision.rawValue)", file))
            }
        }
        // Rounding at the edges: ties to even, the largest binary16, subnormals.
        let edgeModel = SoftmaxRegression(featureCount: 2, classCount: 3)
        for precision in ExportPrecision.onnx {
            // binary32's tie 2^24 + 1 is beyond binary16's range; 2049 is binary16's tie there.
            let edges: [Double] = [
                1 + 0x1p-11, 1 + 3 * 0x1p-11, 65504, -65504, 0x1p-24, 0x1p-25, 0.1, 1 + 0x1p-24,
                precision == .float32 ? 16_777_217 : 2049,
            ]
            let file = try export(edgeModel, edges, precision, round: 3)
            add(
                "rounding edges (ties to even, 65504, 2^-24, 2^-25) in \(precision.rawValue)", ["Rounding"], .valid,
                "export", "softmax", 2, 3, round: 3, precision, edges, file: file)
            add(
                "rounding edges read back in \(precision.rawValue)", ["Rounding"], .valid, "load", "softmax", 2, 3,
                round: 3, precision, widened(edges, precision), file: file)
        }

        // Refused exports.
        let small = SoftmaxRegression(featureCount: 2, classCount: 2)
        var big = parameters(small.parameterCount)
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

        // Refused files: each a valid export (mlp:3,2 float32 above) changed in one place (the first
        // occurrence of a pattern: the first layer's Relu, Gemm, weight).
        let (_, valid) = files[4]
        /// The file with the first occurrence of `old` replaced.
        func replacing(_ old: [UInt8], _ new: [UInt8], in file: [UInt8]) -> [UInt8] {
            let starts = (0...(file.count - old.count)).filter { Array(file[$0..<($0 + old.count)]) == old }
            precondition(!starts.isEmpty, "pattern \(old) not in the file")
            var copy = file
            copy.replaceSubrange(starts[0]..<(starts[0] + old.count), with: new)
            return copy
        }
        let opset13: [UInt8] = [0x42, 0x04, 0x0A, 0x00, 0x10, 0x0D]
        let refusedFiles: [(String, String, [UInt8])] = [
            (
                "operator set 12 instead of 13", "unsupported",
                replacing(opset13, [0x42, 0x04, 0x0A, 0x00, 0x10, 0x0C], in: valid)
            ),
            ("Tanh instead of Relu", "unsupported", replacing(Array("Relu".utf8), Array("Tanh".utf8), in: valid)),
            (
                "Gemm without transB (transB = 0)", "unsupported",
                replacing(Array("transB".utf8) + [0x18, 0x01], Array("transB".utf8) + [0x18, 0x00], in: valid)
            ),
            ("a NaN weight", "unsupported", replacing([0x00, 0x00, 0xC0, 0x3F], [0x00, 0x00, 0xC0, 0x7F], in: valid)),
            ("the file cut in half", "malformed", Array(valid.prefix(valid.count / 2))),
            ("an empty file: a model with no graph", "malformed", []),
            ("not protobuf", "malformed", [0x0A, 0xFF, 0x01]),
        ]
        for (comment, error, file) in refusedFiles {
            add(
                comment, ["ForeignFile"], .invalid, error: error, "load", "mlp:3,2", 2, 2, round: 1, .float32, [],
                file: file)
        }

        return VectorFile(
            algorithm: ModelExportRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's ONNX model files (Specs/export.md section 2), hex in `file`. \"export\" writes the checkpoint",
                "(model, features, classes, round, parameters) at `precision` and must give `file` byte for byte;",
                "\"load\" reads `file` back and must give the model, precision, round and the parameters as the file",
                "holds them, widened to binary64 — or refuse it with `error`.",
                "Project vectors, generated by `veil vectors generate`, confirmed by Specs/reference/export_reference.py.",
            ],
            notes: [
                "Normal": VectorNote(bugType: "BASIC", description: "A checkpoint written as ONNX."),
                "RoundTrip": VectorNote(bugType: "BASIC", description: "A file Veil wrote, read back."),
                "Rounding": VectorNote(
                    bugType: "EDGE_CASE", description: "Round to nearest, ties to even; binary16's extremes."),
                "Unrepresentable": VectorNote(
                    bugType: "DEFINED", description: "A parameter beyond binary16's largest finite value."),
                "BadCheckpoint": VectorNote(
                    bugType: "DEFINED", description: "Parameters that do not fit the model, or no such model."),
                "ForeignFile": VectorNote(
                    bugType: "DEFINED", description: "A file that is not exactly Veil's graph, or not ONNX at all."),
            ],
            testGroups: [.init(tests: tests)], numberOfTests: tests.count)
    }
}
