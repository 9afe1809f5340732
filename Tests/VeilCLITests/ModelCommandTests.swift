import Foundation
import Testing
import VeilTestSupport

/// `veil simulate --export`, `veil model export` and `veil model evaluate` (Specs/export.md).
@Suite struct ModelCommandTests {
    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func aSimulationExportsItsModelWhichEvaluatesToTheAccuracyItReported() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-model")
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("out").path
        let simulation = try await VeilProcess.run([
            "simulate", "--transport", "in-process", "--rounds", "3", "--model", "mlp:16", "--export", out, "--json",
        ])
        #expect(simulation.status == 0, "\(simulation.stderr)")
        let summary = try json(simulation.stdout)
        let names = [
            "checkpoint.json", "model.onnx", "model_fp16.onnx", "model.tflite", "model_fp16.tflite",
            "model_int8.tflite",
        ]
        #expect((summary["exported"] as? [String]) == names.map { "\(out)/\($0)" })
        let accuracy = try #require(summary["final_accuracy"] as? Double)

        // The checkpoint is the model exactly; the ONNX files round their weights.
        let fromCheckpoint = try await VeilProcess.run([
            "model", "evaluate", "--checkpoint", "\(out)/checkpoint.json", "--json",
        ])
        #expect(fromCheckpoint.status == 0, "\(fromCheckpoint.stderr)")
        #expect(try json(fromCheckpoint.stdout)["accuracy"] as? Double == accuracy)
        #expect(try json(fromCheckpoint.stdout)["model"] as? String == "mlp:16")
        for file in names.dropFirst() {
            let evaluation = try await VeilProcess.run(["model", "evaluate", "--model", "\(out)/\(file)", "--json"])
            #expect(evaluation.status == 0, "\(evaluation.stderr)")
            let other = try #require(try json(evaluation.stdout)["accuracy"] as? Double)
            // Within a point: int8 dequantised, the others rounded.
            #expect(abs(other - accuracy) <= 0.01, "\(file): \(other) against \(accuracy)")
        }
        let text = try await VeilProcess.run(["model", "evaluate", "--model", "\(out)/model_fp16.onnx"])
        #expect(text.stdout.hasPrefix("mlp:16 onnx float16 from round 3 on 359 test examples: accuracy "))

        // `veil model export` writes what `simulate --export` wrote, byte for byte.
        let again = directory.appendingPathComponent("again.onnx").path
        let export = try await VeilProcess.run([
            "model", "export", "--checkpoint", "\(out)/checkpoint.json", "--precision", "float16", "--out", again,
        ])
        #expect(export.status == 0, "\(export.stderr)")
        let size = try Data(contentsOf: URL(fileURLWithPath: again)).count
        #expect(export.stdout == "wrote \(again): mlp:16 from round 3, onnx float16, \(size) bytes\n")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: again))
                == Data(contentsOf: URL(fileURLWithPath: "\(out)/model_fp16.onnx")))
        // And the int8 TFLite file, calibrated on the same 200 held-out rows.
        let int8 = directory.appendingPathComponent("again.tflite").path
        let quantized = try await VeilProcess.run([
            "model", "export", "--checkpoint", "\(out)/checkpoint.json", "--format", "tflite", "--precision", "int8",
            "--out", int8,
        ])
        #expect(quantized.status == 0, "\(quantized.stderr)")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: int8))
                == Data(contentsOf: URL(fileURLWithPath: "\(out)/model_int8.tflite")))

        // --predictions: the test set and the probabilities, for another runtime to check.
        let predictions = directory.appendingPathComponent("p.json").path
        let written = try await VeilProcess.run([
            "model", "evaluate", "--checkpoint", "\(out)/checkpoint.json", "--predictions", predictions,
        ])
        #expect(written.status == 0)
        let object = try json(String(decoding: try Data(contentsOf: URL(fileURLWithPath: predictions)), as: UTF8.self))
        #expect((object["features"] as? [[Double]])?.count == 359)
        #expect((object["features"] as? [[Double]])?.first?.count == 64)
        #expect((object["probabilities"] as? [[Double]])?.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-9 } == true)
    }

    @Test func badRequestsAreRefusedByName() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-model")
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("checkpoint.json")
        try Data(
            #"{"format": "veil-checkpoint-1", "model": "softmax", "features": 2, "classes": 2, "round": 1, "parameters": [1, 2, 3, 4, 5]}"#
                .utf8
        ).write(to: checkpoint)
        let valid = directory.appendingPathComponent("valid.json")
        try Data(
            #"{"format": "veil-checkpoint-1", "model": "softmax", "features": 2, "classes": 2, "round": 1, "parameters": [1, 2, 3, 4, 5, 6]}"#
                .utf8
        ).write(to: valid)
        let unknownKey = directory.appendingPathComponent("unknown.json")
        try Data(
            #"{"format": "veil-checkpoint-1", "model": "softmax", "features": 2, "classes": 2, "round": 1, "parameters": [1, 2, 3, 4, 5, 6], "note": 1}"#
                .utf8
        ).write(to: unknownKey)
        let plus = directory.appendingPathComponent("plus.json")
        try Data(
            #"{"format": "veil-checkpoint-1", "model": "mlp:+1", "features": 1, "classes": 2, "round": 1, "parameters": [1, 2, 3, 4, 5]}"#
                .utf8
        ).write(to: plus)
        let huge = directory.appendingPathComponent("huge.json")
        try Data(
            #"{"format": "veil-checkpoint-1", "model": "softmax", "features": 2, "classes": 2, "round": 1, "parameters": [1e308, 2, 3, 4, 5, 6]}"#
                .utf8
        ).write(to: huge)
        let notONNX = directory.appendingPathComponent("x.onnx")
        try Data("hello".utf8).write(to: notONNX)
        let out = directory.appendingPathComponent("m.onnx").path
        let cases: [([String], String)] = [
            (
                ["model", "export", "--checkpoint", checkpoint.path, "--config", "serve.json", "--out", out],
                "give exactly one of --checkpoint and --config"
            ),
            (["model", "export", "--out", out], "give exactly one of --checkpoint and --config"),
            (
                ["model", "export", "--checkpoint", checkpoint.path, "--precision", "int4", "--out", out],
                "unknown --precision \"int4\" for onnx: use float32, float16"
            ),
            (
                ["model", "export", "--checkpoint", checkpoint.path, "--precision", "int8", "--out", out],
                "unknown --precision \"int8\" for onnx: use float32, float16"
            ),
            (
                [
                    "model", "export", "--checkpoint", valid.path, "--format", "tflite", "--precision", "int8",
                    "--calibration-data", "synthetic:1,1", "--out", out,
                ],
                "--calibration-data: synthetic data has no held-out test set of its own"
            ),
            (
                [
                    "model", "export", "--checkpoint", valid.path, "--format", "tflite", "--precision", "int8",
                    "--out", out,
                ],
                "int8 needs calibration rows of 2 features"
            ),
            (
                ["model", "export", "--checkpoint", checkpoint.path, "--format", "pmml", "--out", out],
                "unknown --format \"pmml\": use onnx or tflite"
            ),
            (
                ["model", "export", "--checkpoint", checkpoint.path, "--out", out],
                "the checkpoint's softmax on 2 features and 2 classes has 6 parameters, the file 5"
            ),
            (["model", "evaluate", "--model", notONNX.path], "not a model file"),
            (["model", "evaluate", "--checkpoint", unknownKey.path], "unknown checkpoint key \"note\""),
            (["model", "evaluate", "--checkpoint", plus.path], "needs positive layer widths"),
            (["model", "export", "--checkpoint", huge.path, "--out", out], "exceeds float32's range"),
            (
                [
                    "model", "evaluate", "--checkpoint", valid.path, "--dataset", "digits", "--predictions",
                    "/nonexistent/p.json",
                ],
                "the model takes 2 features"
            ),
            (["model", "evaluate", "--model", "/nonexistent.onnx"], "cannot read /nonexistent.onnx"),
            (
                ["model", "evaluate", "--checkpoint", valid.path, "--dataset", "synthetic:1,1"],
                "synthetic data has no held-out test set of its own"
            ),
            (
                ["model", "evaluate", "--checkpoint", valid.path],
                "the model takes 2 features and 2 classes; digits has 64 and 10"
            ),
            (["model", "evaluate", "--model", notONNX.path, "--checkpoint", valid.path], "give exactly one of"),
        ]
        for (arguments, message) in cases {
            let output = try await VeilProcess.run(arguments)
            #expect(output.status == 64, "\(arguments): \(output.status)")
            #expect(output.stderr.contains(message), "\(arguments): \(output.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// `veil model quantize` and `veil model prune` report before and after; `veil simulate
    /// --prune` fine-tunes and exports the smaller model.
    @Test func quantizeAndPruneReportSizeAndAccuracyAndSimulatePruneFineTunes() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-model")
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("out").path
        let simulation = try await VeilProcess.run([
            "simulate", "--transport", "in-process", "--rounds", "12", "--model", "mlp:16", "--prune", "0.5:structured",
            "--prune-round", "6", "--export", out, "--json",
        ])
        #expect(simulation.status == 0, "\(simulation.stderr)")
        let summary = try json(simulation.stdout)
        let pruning = try #require(summary["pruning"] as? [String: Any])
        #expect(pruning["model"] as? String == "mlp:8" && pruning["round"] as? Int == 6)
        #expect(pruning["kind"] as? String == "structured" && pruning["parameters"] as? Int == 16 * 65 + 10 * 17)
        let checkpoint = "\(out)/checkpoint.json"
        let exported = try json(String(decoding: try Data(contentsOf: URL(fileURLWithPath: checkpoint)), as: UTF8.self))
        #expect(exported["model"] as? String == "mlp:8")
        let evaluation = try await VeilProcess.run(["model", "evaluate", "--checkpoint", checkpoint, "--json"])
        #expect(try json(evaluation.stdout)["accuracy"] as? Double == summary["final_accuracy"] as? Double)

        let quantized = try await VeilProcess.run([
            "model", "quantize", "--checkpoint", checkpoint, "--out", "\(out)/q.tflite", "--json",
        ])
        #expect(quantized.status == 0, "\(quantized.stderr)")
        let q = try json(quantized.stdout)
        let full = try #require(q["float32"] as? [String: Any])
        let int8 = try #require(q["int8"] as? [String: Any])
        #expect((int8["bytes"] as? Int ?? .max) < (full["bytes"] as? Int ?? 0))
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(out)/q.tflite")).count == int8["bytes"] as? Int)
        #expect(abs((int8["accuracy"] as? Double ?? 0) - (full["accuracy"] as? Double ?? 1)) <= 0.01)

        let text = try await VeilProcess.run([
            "model", "prune", "--checkpoint", checkpoint, "--sparsity", "0.5", "--out", "\(out)/p.json",
        ])
        #expect(text.status == 0, "\(text.stderr)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "mlp:8 → mlp:8, unstructured at 0.5, wrote \(out)/p.json")
        #expect(lines.count == 5 && lines[4].hasPrefix("size 0.0% smaller stored, "))
        let refusals: [([String], String)] = [
            (["simulate", "--transport", "in-process", "--prune", "0.5:structured"], "use an mlp model"),
            (["simulate", "--transport", "in-process", "--prune-round", "3"], "--prune-round needs --prune"),
            (["simulate", "--transport", "in-process", "--prune", "1"], "the sparsity must be in [0, 1)"),
            (["simulate", "--transport", "network", "--prune", "0.5"], "--prune is simulated in-process"),
            (
                ["model", "prune", "--checkpoint", checkpoint, "--sparsity", "0.5", "--out", "x.json", "--structured"]
                    + ["--dataset", "synthetic:1,1"], "--dataset: synthetic data"
            ),
            (
                ["model", "quantize", "--checkpoint", checkpoint, "--format", "onnx", "--out", "x.onnx"],
                "--precision \"int8\": onnx quantises to float16"
            ),
        ]
        for (arguments, message) in refusals {
            let output = try await VeilProcess.run(arguments)
            #expect(output.status == 64, "\(arguments): \(output.status)")
            #expect(output.stderr.contains(message), "\(arguments): \(output.stderr)")
        }
    }
}
