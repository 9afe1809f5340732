import Foundation
import VeilLearning

/// The file formats a model leaves Veil in.
public enum ModelFormat: String, CaseIterable, Sendable {
    case onnx
    case tflite

    /// The precisions each format is written in.
    public var precisions: [ExportPrecision] { self == .onnx ? ExportPrecision.onnx : ExportPrecision.allCases }
}

/// One entry point for both formats: what `veil model` and `veil simulate --export` call.
public enum ModelFile {
    /// A file read back, whichever its format.
    public struct Loaded: Sendable {
        public let format: ModelFormat
        public let model: any Model
        public let parameters: [Double]
        public let precision: ExportPrecision
        public let round: Int
    }

    /// The bytes of `checkpoint` as `format` at `precision`; int8 calibrates on `calibration`.
    public static func export(
        _ checkpoint: ModelCheckpoint, format: ModelFormat, precision: ExportPrecision, calibration: Dataset? = nil
    ) throws(ModelFileError) -> Data {
        guard format.precisions.contains(precision) else {
            throw .unrepresentable(
                "\(format.rawValue) files are \(format.precisions.map(\.rawValue).joined(separator: ", "))")
        }
        let model: any Model
        do { model = try checkpoint.makeModel() } catch { throw .unrepresentable(error.description) }
        switch format {
        case .onnx:
            return try ONNXModel.export(
                model, parameters: checkpoint.parameters, precision: precision, round: checkpoint.round)
        case .tflite:
            var plan: TFLiteModel.Int8Plan?
            if precision == .int8 {
                guard let calibration else { throw .unrepresentable("int8 needs calibration data") }
                plan = try TFLiteModel.plan(model, parameters: checkpoint.parameters, calibration: calibration)
            }
            return try TFLiteModel.export(
                model, parameters: checkpoint.parameters, precision: precision, round: checkpoint.round, plan: plan)
        }
    }

    /// Reads an ONNX or TFLite file Veil wrote (a TFLite file carries "TFL3" at bytes 4–7).
    public static func load(_ data: Data) throws(ModelFileError) -> Loaded {
        if data.count >= 8, Array(data[data.startIndex + 4..<data.startIndex + 8]) == Array("TFL3".utf8) {
            let file = try TFLiteModel.load(data)
            return Loaded(
                format: .tflite, model: file.model, parameters: file.parameters, precision: file.precision,
                round: file.round)
        }
        let file = try ONNXModel.load(data)
        return Loaded(
            format: .onnx, model: file.model, parameters: file.parameters, precision: file.precision, round: file.round)
    }

    /// The JSON `veil model evaluate --predictions` writes, which
    /// `Specs/reference/check_models.py` compares a runtime against: each test row's features
    /// and label, and the model's binary64 probabilities and predicted class.
    public static func predictions(_ model: any Model, parameters: [Double], on test: Dataset) throws -> Data {
        let rows = (0..<test.count).map {
            Array(test.features[($0 * test.featureCount)..<(($0 + 1) * test.featureCount)])
        }
        return try JSONSerialization.data(withJSONObject: [
            "features": rows, "labels": test.labels, "probabilities": model.probabilities(parameters, on: test),
            "predictions": model.predict(parameters, on: test),
        ])
    }
}
