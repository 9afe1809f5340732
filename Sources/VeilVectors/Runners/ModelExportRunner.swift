import Foundation
import VeilCore
import VeilExport
import VeilLearning

/// Veil's model files (Specs/export.md §2, §3): "export" writes the checkpoint at a precision
/// (int8 calibrated on `calibration`) and must give exactly `file`; "load" reads `file` back and
/// must give the model, precision, round and (widened or dequantised) parameters, or refuse it.
enum ModelExportCases {
    typealias Group = TestGroup<Test>

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        var operation: String
        var model: String
        var features: Int
        var classes: Int
        var round: Int
        var precision: String
        var parameters: [Double]
        /// int8 only: the calibration rows (features only).
        var calibration: [[Double]]?
        var file: String
    }

    /// A checkpoint's refusal, as a vector error code.
    struct CheckpointRefused: Error {}

    static func run(_ data: Data, format: ModelFormat) throws(VectorError) -> [CaseOutcome] {
        try ONNXExportRunner.runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    guard let precision = ExportPrecision(rawValue: test.precision) else {
                        throw VectorError.malformedField(tcId: test.tcId, field: "precision", detail: test.precision)
                    }
                    switch test.operation {
                    case "export":
                        let checkpoint: ModelCheckpoint
                        do {
                            checkpoint = try ModelCheckpoint(
                                model: test.model, features: test.features, classes: test.classes, round: test.round,
                                parameters: test.parameters)
                        } catch { throw CheckpointRefused() }
                        let calibration = try test.calibration.map { rows in
                            try Dataset(
                                features: rows.flatMap { $0 }, labels: [Int](repeating: 0, count: rows.count),
                                featureCount: rows.first?.count ?? 1, classCount: 2)
                        }
                        let bytes = try ModelFile.export(
                            checkpoint, format: format, precision: precision, calibration: calibration)
                        try expectEqual(Hex.encode([UInt8](bytes)), test.file, "file")
                    case "load":
                        let loaded = try ModelFile.load(Data(try hex(test.file, "file")))
                        try expectEqual(loaded.format, format, "format")
                        try expectEqual(loaded.model.name, test.model, "model")
                        try expectEqual(loaded.model.featureCount, test.features, "features")
                        try expectEqual(loaded.model.classCount, test.classes, "classes")
                        try expectEqual(loaded.precision, precision, "precision")
                        try expectEqual(loaded.round, test.round, "round")
                        try expectEqual(loaded.parameters, test.parameters, "parameters")
                    default:
                        throw VectorError.malformedField(tcId: test.tcId, field: "operation", detail: test.operation)
                    }
                }
            }
        }
    }
}

/// `Vectors/model/veil_onnx_export.json`.
enum ONNXExportRunner: VectorRunner {
    static let algorithm = "VEIL-ONNX-EXPORT"
    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] { try ModelExportCases.run(data, format: .onnx) }
}

/// `Vectors/model/veil_tflite_export.json`.
enum TFLiteExportRunner: VectorRunner {
    static let algorithm = "VEIL-TFLITE-EXPORT"
    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try ModelExportCases.run(data, format: .tflite)
    }
}
