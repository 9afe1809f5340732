import ArgumentParser
import Foundation
import VeilExport
import VeilLearning
import VeilService

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Trained models out of Veil: export them as ONNX, evaluate a model file.",
        discussion: """
            A model comes from a checkpoint file (`veil simulate --export DIR` writes DIR/checkpoint.json) or \
            from a coordinator's store (--config serve.json: the latest completed round). Specs/export.md gives \
            the ONNX graph: input `features` [batch, F], outputs `logits` and `probabilities` [batch, C], float32, \
            opset 13.
            """,
        subcommands: [Export.self, Evaluate.self]
    )

    /// Where a model comes from: exactly one of a checkpoint file or a coordinator's store.
    struct Source: ParsableArguments {
        @Option(help: "A checkpoint file (veil simulate --export DIR writes DIR/checkpoint.json).")
        var checkpoint: String?

        @Option(help: "A coordinator's configuration (serve.json): its store's latest completed round.")
        var config: String?

        func validate() throws {
            if (checkpoint == nil) == (config == nil) {
                throw ValidationError("give exactly one of --checkpoint and --config")
            }
        }

        func load() throws -> ModelCheckpoint {
            do {
                if let checkpoint { return try ModelCheckpoint.load(path: checkpoint) }
                return try ServeConfiguration.load(path: config!).latestModel()
            } catch { throw usageError("\(error)") }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a trained model as an ONNX or TensorFlow Lite file.",
            discussion: """
                float32 keeps binary32 weights and arithmetic; float16 stores binary16 weights (half the size; ONNX \
                computes in binary16, TFLite dequantises them once at load); int8 (tflite only) is full-integer: \
                per-channel int8 weights, int32 biases, int8 activations whose ranges are calibrated on \
                --calibration-rows rows of the held-out test set of --calibration-data with --seed (the data the \
                federation never trained on), or of a CSV file. Inputs and outputs are float32 in every case. \
                Prints the file's size.
                """)

        @OptionGroup var source: Source

        @Option(help: "The file format: onnx or tflite.")
        var format = "onnx"

        @Option(help: "float32, float16 or int8 (tflite only).")
        var precision = "float32"

        @OptionGroup var calibration: CalibrationOptions

        @Option(help: "The file to write.")
        var out: String

        func validate() throws {
            guard let format = ModelFormat(rawValue: format) else {
                throw ValidationError("unknown --format \"\(format)\": use onnx or tflite")
            }
            guard let precision = ExportPrecision(rawValue: precision), format.precisions.contains(precision) else {
                throw ValidationError(
                    "unknown --precision \"\(precision)\" for \(format.rawValue): use \(format.precisions.map(\.rawValue).joined(separator: ", "))"
                )
            }
        }

        func run() throws {
            let checkpoint = try source.load()
            let precision = ExportPrecision(rawValue: precision)!
            let data = precision == .int8 ? try calibration.dataset() : nil
            let bytes = try writeModel(
                checkpoint, format: ModelFormat(rawValue: format)!, precision: precision, calibration: data, to: out)
            print(
                "wrote \(out): \(checkpoint.model) from round \(checkpoint.round), \(format) \(precision.rawValue), \(bytes) bytes"
            )
        }
    }

    /// Where int8's activation ranges come from.
    struct CalibrationOptions: ParsableArguments {
        @Option(help: "int8 calibration: digits or csv:PATH; its held-out test split is used.")
        var calibrationData = "digits"

        @Option(help: "int8 calibration: how many rows (from the start of the split).")
        var calibrationRows = 200

        @Option(help: "int8 calibration: the seed of the data split (the simulation's --seed).")
        var seed: UInt64 = 0

        func validate() throws {
            guard calibrationRows > 0 else { throw ValidationError("--calibration-rows must be positive") }
        }

        func dataset() throws -> Dataset {
            do {
                let test = try FederatedSimulation.testSet(of: try DatasetSource(parsing: calibrationData), seed: seed)
                return test.subset(Array(0..<min(calibrationRows, test.count)))
            } catch { throw usageError("--calibration-data: \(error)") }
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a model on the held-out test set Veil's simulations use.",
            discussion: """
                Reads an ONNX file Veil exported (--model) — Veil reads it back and computes in binary64 from its \
                weights — or a checkpoint. The test set is the stratified 20% hold-out of the data with this seed, \
                the one `veil simulate --seed` evaluates on. --predictions writes, for each test example, its \
                features, label and the model's class probabilities, as JSON, for checking another runtime against \
                Veil (Specs/reference/check_onnx.py).
                """)

        @Option(help: "An ONNX or TFLite file written by `veil model export` or `veil simulate --export`.")
        var model: String?

        @Option(help: "A checkpoint file.")
        var checkpoint: String?

        @Option(help: "digits or csv:PATH (features…, label).")
        var dataset = "digits"

        @Option(help: "The seed of the data split (the simulation's --seed).")
        var seed: UInt64 = 0

        @Option(help: "Write the test set and the model's probabilities to this JSON file.")
        var predictions: String?

        @OptionGroup var output: OutputOptions

        func validate() throws {
            if (model == nil) == (checkpoint == nil) {
                throw ValidationError("give exactly one of --model and --checkpoint")
            }
        }

        func run() throws {
            let (network, parameters, description): (any Model, [Double], String)
            do {
                if let model {
                    guard let bytes = FileManager.default.contents(atPath: model) else {
                        throw usageError("cannot read \(model)")
                    }
                    let loaded = try ModelFile.load(bytes)
                    (network, parameters) = (loaded.model, loaded.parameters)
                    description =
                        "\(loaded.model.name) \(loaded.format.rawValue) \(loaded.precision.rawValue) from round \(loaded.round)"
                } else {
                    let file = try ModelCheckpoint.load(path: checkpoint!)
                    (network, parameters) = (try file.makeModel(), file.parameters)
                    description = "\(file.model) checkpoint from round \(file.round)"
                }
            } catch let error as ExitCode { throw error } catch { throw usageError("\(error)") }
            let test: Dataset
            do {
                test = try FederatedSimulation.testSet(of: try DatasetSource(parsing: dataset), seed: seed)
            } catch { throw usageError("\(error)") }
            guard test.featureCount == network.featureCount, test.classCount <= network.classCount else {
                throw usageError(
                    "the model takes \(network.featureCount) features and \(network.classCount) classes; \(dataset) has \(test.featureCount) and \(test.classCount)"
                )
            }
            let evaluation = network.evaluate(parameters, on: test)
            if let predictions {
                try writePredictions(network, parameters, test, to: predictions)
            }
            if output.json {
                let object: [String: Any] = [
                    "model": network.name, "examples": test.count, "accuracy": evaluation.accuracy,
                    "loss": evaluation.loss,
                ]
                print(
                    String(
                        decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
                        as: UTF8.self))
            } else {
                print(
                    String(
                        format: "%@ on %d test examples: accuracy %.4f, loss %.4f", description, test.count,
                        evaluation.accuracy, evaluation.loss))
            }
        }

        private func writePredictions(_ model: any Model, _ parameters: [Double], _ test: Dataset, to path: String)
            throws
        {
            let probabilities = model.probabilities(parameters, on: test)
            let rows = (0..<test.count).map {
                Array(test.features[($0 * test.featureCount)..<(($0 + 1) * test.featureCount)])
            }
            let object: [String: Any] = [
                "features": rows, "labels": test.labels, "probabilities": probabilities,
                "predictions": model.predict(parameters, on: test),
            ]
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        }
    }
}

/// Writes `checkpoint` as a model file; returns its size in bytes.
func writeModel(
    _ checkpoint: ModelCheckpoint, format: ModelFormat, precision: ExportPrecision, calibration: Dataset?,
    to path: String
) throws -> Int {
    do {
        let bytes = try ModelFile.export(checkpoint, format: format, precision: precision, calibration: calibration)
        try bytes.write(to: URL(fileURLWithPath: path), options: .atomic)
        return bytes.count
    } catch { throw usageError("\(error)") }
}
