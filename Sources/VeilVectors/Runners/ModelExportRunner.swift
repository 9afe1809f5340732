import Foundation
import VeilCore
import VeilExport
import VeilLearning

/// Veil's ONNX export (Specs/export.md §2): "export" writes the file of a checkpoint at a
/// precision and must give exactly `file`; "load" reads `file` back and must give the model,
/// precision, round and (widened) parameters, or refuse it.
enum ModelExportRunner: VectorRunner {
    static let algorithm = "VEIL-ONNX-EXPORT"

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
        var file: String
    }

    /// A checkpoint's refusal, as a vector error code.
    struct CheckpointRefused: Error {}

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
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
                        let bytes = try ONNXModel.export(
                            try checkpoint.makeModel(), parameters: checkpoint.parameters, precision: precision,
                            round: checkpoint.round)
                        try expectEqual(Hex.encode([UInt8](bytes)), test.file, "file")
                    case "load":
                        let loaded = try ONNXModel.load(Data(try hex(test.file, "file")))
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
