import ArgumentParser
import Foundation
import VeilExport
import VeilLearning
import VeilPostgres
import VeilService

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Trained models out of Veil: export (ONNX, TFLite), quantise, prune, evaluate.",
        discussion: """
            A model comes from a checkpoint file (`veil simulate --export DIR` writes DIR/checkpoint.json) or \
            from a coordinator's store (--config serve.json: the latest completed round). Specs/export.md gives \
            the ONNX graph: input `features` [batch, F], outputs `logits` and `probabilities` [batch, C], float32, \
            opset 13.
            """,
        subcommands: [Export.self, Quantize.self, Prune.self, Evaluate.self]
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
                return try ServeConfiguration.load(path: config!).latestModel(stores: PostgresStoreDriver())
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

        @Option(help: "int8 calibration: the seed of the data split (the simulation's --seed).")
        var seed: UInt64 = 0

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
            let data = precision == .int8 ? try calibration.dataset(seed: seed) : nil
            let bytes = try writeModel(
                checkpoint, format: ModelFormat(rawValue: format)!, precision: precision, calibration: data, to: out)
            print(
                "wrote \(out): \(checkpoint.model) from round \(checkpoint.round), \(format) \(precision.rawValue), \(bytes) bytes"
            )
        }
    }

    /// Where int8's activation ranges come from.
    struct CalibrationOptions: ParsableArguments {
        @Option(help: "int8 calibration: digits or csv:PATH; the rows come from its held-out test split (--seed).")
        var calibrationData = "digits"

        @Option(help: "int8 calibration: how many rows (from the start of the split).")
        var calibrationRows = 200

        func validate() throws {
            guard calibrationRows > 0 else { throw ValidationError("--calibration-rows must be positive") }
        }

        func dataset(seed: UInt64) throws -> Dataset {
            do {
                let test = try FederatedSimulation.testSet(of: try DatasetSource(parsing: calibrationData), seed: seed)
                return test.subset(Array(0..<min(calibrationRows, test.count)))
            } catch { throw usageError("--calibration-data: \(error)") }
        }
    }

    /// Where accuracy is measured: the held-out test split of a data set with a seed.
    struct TestSetOptions: ParsableArguments {
        @Option(help: "The data whose held-out test split measures accuracy: digits or csv:PATH.")
        var dataset = "digits"

        @Option(help: "The seed of the data split (the simulation's --seed).")
        var seed: UInt64 = 0

        func testSet() throws -> Dataset {
            do { return try FederatedSimulation.testSet(of: try DatasetSource(parsing: dataset), seed: seed) } catch {
                throw usageError("--dataset: \(error)")
            }
        }
    }

    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a model at reduced precision and report its size and accuracy against float32.",
            discussion: """
                Writes --out in --format (tflite by default: int8 or float16; onnx: float16) and prints, for the \
                float32 file of the same format and for the file written: the bytes stored, the bytes compressed \
                (zlib level 9) and the accuracy on the held-out test set — float32's computed from the checkpoint \
                in binary64, the quantised file's by Veil from the file's own values (int8 dequantised; the \
                activations stay binary64, so an int8 runtime can differ slightly: Specs/export.md §3.5). --json \
                prints the same as one object.
                """)

        @OptionGroup var source: Source

        @Option(help: "int8 (tflite only) or float16.")
        var precision = "int8"

        @Option(help: "tflite or onnx.")
        var format = "tflite"

        @OptionGroup var calibration: CalibrationOptions

        @OptionGroup var test: TestSetOptions

        @Option(help: "The file to write.")
        var out: String

        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard let format = ModelFormat(rawValue: format) else {
                throw ValidationError("unknown --format \"\(format)\": use tflite or onnx")
            }
            guard let precision = ExportPrecision(rawValue: precision), precision != .float32,
                format.precisions.contains(precision)
            else {
                throw ValidationError(
                    "--precision \"\(precision)\": \(format.rawValue) quantises to \(format.precisions.dropFirst().map(\.rawValue).joined(separator: " or "))"
                )
            }
        }

        func run() throws {
            let checkpoint = try source.load()
            let (format, precision) = (ModelFormat(rawValue: format)!, ExportPrecision(rawValue: precision)!)
            let test = try test.testSet()
            let rows = precision == .int8 ? try calibration.dataset(seed: self.test.seed) : nil
            let full = try measure(checkpoint, format: format, precision: .float32, calibration: nil, on: test)
            let reduced = try measure(checkpoint, format: format, precision: precision, calibration: rows, on: test)
            try reduced.bytes.write(to: URL(fileURLWithPath: out), options: .atomic)
            try report(
                [("float32", full), (precision.rawValue, reduced)], json: output.json,
                title: "\(checkpoint.model) from round \(checkpoint.round) as \(format.rawValue), wrote \(out)")
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prune a model by weight magnitude and report its size and accuracy before and after.",
            discussion: """
                --unstructured (the default) zeroes each layer's --sparsity fraction of weights with the smallest \
                magnitude; --structured removes each hidden layer's --sparsity fraction of units with the smallest \
                incoming weight norm (an mlp model only; at least one unit stays), which makes the model smaller. \
                Biases are kept. Writes the pruned checkpoint to --out (Specs/export.md §1, §4) and prints, before \
                and after: the parameters, the nonzero ones, the float32 TFLite file's bytes stored and compressed \
                (zlib level 9: pruned zeros compress) and the accuracy on the held-out test set. Pruning without \
                retraining loses accuracy; `veil simulate --prune` prunes during training and fine-tunes after.
                """)

        @OptionGroup var source: Source

        @Option(help: "The fraction to prune, in [0, 1).")
        var sparsity: Double

        @Flag(help: "Zero single weights (default) or remove whole hidden units.")
        var kind: Pruning.Kind = .unstructured

        @OptionGroup var test: TestSetOptions

        @Option(help: "The pruned checkpoint to write.")
        var out: String

        @OptionGroup var output: OutputOptions

        func run() throws {
            let checkpoint = try source.load()
            let pruned: ModelCheckpoint
            do { pruned = try checkpoint.pruned(try Pruning(sparsity: sparsity, kind: kind)) } catch {
                throw usageError("\(error)")
            }
            let test = try test.testSet()
            let before = try measure(checkpoint, format: .tflite, precision: .float32, calibration: nil, on: test)
            let after = try measure(pruned, format: .tflite, precision: .float32, calibration: nil, on: test)
            try pruned.write(to: URL(fileURLWithPath: out))
            try report(
                [("before", before), ("after", after)], json: output.json,
                title: "\(checkpoint.model) → \(pruned.model), \(kind.rawValue) at \(sparsity), wrote \(out)")
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a model on the held-out test set Veil's simulations use.",
            discussion: """
                Reads an ONNX or TFLite file Veil exported (--model) — Veil reads it back, exactly as written or \
                not at all, and computes in binary64 from its weights (int8 dequantised) — or a checkpoint. The test set is the stratified 20% hold-out of the data with this seed, \
                the one `veil simulate --seed` evaluates on. --predictions writes, for each test example, its \
                features, label and the model's class probabilities, as JSON, for checking another runtime against \
                Veil (Specs/reference/check_models.py).
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
            guard test.count > 0 else {
                throw usageError("\(dataset)'s held-out split is empty: nothing to evaluate on")
            }
            let evaluation = network.evaluate(parameters, on: test)
            if let predictions {
                do {
                    try ModelFile.predictions(network, parameters: parameters, on: test).write(
                        to: URL(fileURLWithPath: predictions))
                } catch {
                    throw usageError("cannot write \(predictions): \(error.localizedDescription)")
                }
            }
            if output.json {
                let object: [String: Any] = [
                    "model": network.name, "examples": test.count, "accuracy": evaluation.accuracy,
                    // JSON has no NaN or infinity: a loss that overflowed is null.
                    "loss": evaluation.loss.isFinite ? evaluation.loss : NSNull(),
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
    }
}

/// Writes `checkpoint` as a model file; returns its size in bytes.
func writeModel(
    _ checkpoint: ModelCheckpoint, format: ModelFormat, precision: ExportPrecision, calibration: Dataset?,
    to path: String
) throws -> Int {
    do {
        let bytes = try ModelFile.export(checkpoint, format: format, precision: precision, calibration: calibration)
        do { try bytes.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw usageError("cannot write \(path): \(error.localizedDescription)")
        }
        return bytes.count
    } catch let error as ExitCode { throw error } catch { throw usageError("\(error)") }
}

extension Pruning.Kind: EnumerableFlag {}

/// A model file's measurements: its bytes, their compressed size, its parameters and accuracy.
struct ModelMeasurement {
    let bytes: Data
    let compressed: Int
    let model: String
    let parameters: Int
    let nonzero: Int
    let accuracy: Double
}

/// Writes `checkpoint` in memory as `format` at `precision` and measures the file; the
/// accuracy is Veil's evaluation of the parameters the file holds (read back from it).
func measure(
    _ checkpoint: ModelCheckpoint, format: ModelFormat, precision: ExportPrecision, calibration: Dataset?,
    on test: Dataset
) throws -> ModelMeasurement {
    do {
        let bytes = try ModelFile.export(checkpoint, format: format, precision: precision, calibration: calibration)
        let file = try ModelFile.load(bytes)
        guard test.featureCount == file.model.featureCount, test.classCount <= file.model.classCount else {
            throw usageError(
                "the model takes \(file.model.featureCount) features; the test set has \(test.featureCount)")
        }
        return ModelMeasurement(
            bytes: bytes, compressed: ModelSize.compressed(bytes), model: file.model.name,
            parameters: file.parameters.count, nonzero: file.parameters.count { $0 != 0 },
            accuracy: file.model.evaluate(file.parameters, on: test).accuracy)
    } catch let error as ExitCode { throw error } catch { throw usageError("\(error)") }
}

/// Prints measurements side by side (text) or as one JSON object keyed by their labels.
func report(_ rows: [(label: String, measurement: ModelMeasurement)], json: Bool, title: String) throws {
    if json {
        var object: [String: Any] = [:]
        for (label, m) in rows {
            object[label] = [
                "model": m.model, "bytes": m.bytes.count, "compressed_bytes": m.compressed, "parameters": m.parameters,
                "nonzero": m.nonzero, "accuracy": m.accuracy,
            ]
        }
        print(
            String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        return
    }
    func padded(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }
    print(title)
    print("\(padded("", 9)) \(padded("model", 14)) parameters   nonzero      bytes  compressed  accuracy")
    for (label, m) in rows {
        print(
            "\(padded(label, 9)) \(padded(m.model, 14))"
                + String(
                    format: "%10d %9d %10d %11d    %.4f", m.parameters, m.nonzero, m.bytes.count, m.compressed,
                    m.accuracy))
    }
    if let first = rows.first?.measurement, let last = rows.last?.measurement, rows.count == 2 {
        print(
            String(
                format: "size %.1f%% smaller stored, %.1f%% compressed; accuracy %+.2f points",
                100 * (1 - Double(last.bytes.count) / Double(first.bytes.count)),
                100 * (1 - Double(last.compressed) / Double(first.compressed)), 100 * (last.accuracy - first.accuracy)))
    }
}
