import Foundation
import SwiftProtobuf
import Testing
import VeilCore
import VeilLearning
import VeilTestSupport

@testable import VeilExport

/// ONNX export (Specs/export.md): the file Veil writes, read back by Veil, refused when it is not
/// Veil's graph, and checked by the ONNX project's checker and onnxruntime.
@Suite struct ONNXModelTests {
    static let models: [any Model] = [
        SoftmaxRegression(featureCount: 64, classCount: 10),
        MultilayerPerceptron(layerSizes: [64, 32, 16, 10]),
    ]

    func randomParameters(_ model: any Model, seed: UInt64) -> [Double] {
        var generator = SplitMix64(seed: seed)
        return (0..<model.parameterCount).map { _ in Double.random(in: -3...3, using: &generator) }
    }

    @Test(arguments: [0, 1])
    func aFloat32FileReadsBackToTheBinary32Parameters(index: Int) throws {
        let model = Self.models[index]
        let parameters = randomParameters(model, seed: UInt64(index))
        let bytes = try ONNXModel.export(model, parameters: parameters, precision: .float32, round: 7)
        let loaded = try ONNXModel.load(bytes)
        #expect(loaded.model.name == model.name)
        #expect(loaded.model.parameterCount == model.parameterCount)
        #expect(loaded.precision == .float32 && loaded.round == 7)
        #expect(loaded.parameters == parameters.map { Double(Float($0)) })
        // Deterministic: the same model writes the same bytes.
        #expect(try ONNXModel.export(model, parameters: parameters, precision: .float32, round: 7) == bytes)
    }

    @Test(arguments: [0, 1])
    func aFloat16FileReadsBackToTheBinary16ParametersAndIsAboutHalfTheSize(index: Int) throws {
        let model = Self.models[index]
        let parameters = randomParameters(model, seed: 10 + UInt64(index))
        let half = try ONNXModel.export(model, parameters: parameters, precision: .float16)
        let full = try ONNXModel.export(model, parameters: parameters, precision: .float32)
        let loaded = try ONNXModel.load(half)
        #expect(loaded.precision == .float16)
        #expect(loaded.parameters == parameters.map { Double(Float16($0)) })
        // The weights take 2 bytes instead of 4; the three Cast nodes cost about 200 bytes.
        let saved = full.count - half.count
        #expect(saved >= 2 * model.parameterCount - 300 && saved <= 2 * model.parameterCount, "\(saved)")
    }

    @Test func float16RefusesAWeightBeyondItsRange() {
        let model = SoftmaxRegression(featureCount: 2, classCount: 2)
        #expect(throws: ModelFileError.self) {
            try ONNXModel.export(model, parameters: [0, 0, 70_000, 0, 0, 0], precision: .float16)
        }
        #expect((try? ONNXModel.export(model, parameters: [0, 0, 70_000, 0, 0, 0], precision: .float32)) != nil)
    }

    /// A file that is not exactly Veil's graph is refused with the reason, never guessed at.
    @Test func whatIsNotVeilsGraphIsRefused() throws {
        let model = MultilayerPerceptron(layerSizes: [4, 3, 2])
        let bytes = try ONNXModel.export(model, parameters: randomParameters(model, seed: 3), precision: .float32)
        let file = try Onnx_ModelProto(serializedBytes: bytes)

        func refusal(_ change: (inout Onnx_ModelProto) -> Void) throws -> ModelFileError? {
            var copy = file
            change(&copy)
            let bytes: Data = try copy.serializedBytes()
            do {
                _ = try ONNXModel.load(bytes)
                return nil
            } catch { return error }
        }
        func expectUnsupported(_ why: String, _ change: (inout Onnx_ModelProto) -> Void) throws {
            let error = try refusal(change)
            guard case .unsupported(let reason) = error else {
                Issue.record("\(why): \(String(describing: error))")
                return
            }
            #expect(!reason.isEmpty)
        }
        #expect(try refusal { _ in } == nil)
        try expectUnsupported("opset 12") { $0.opsetImport[0].version = 12 }
        try expectUnsupported("a second opset") {
            $0.opsetImport.append(
                .with {
                    $0.domain = "com.example"; $0.version = 1
                })
        }
        try expectUnsupported("Sigmoid for Relu") { $0.graph.node[1].opType = "Sigmoid" }
        try expectUnsupported("no Softmax") { $0.graph.node.removeLast() }
        try expectUnsupported("transB 0") { $0.graph.node[0].attribute[0].i = 0 }
        try expectUnsupported("a renamed output") { $0.graph.output[1].name = "scores" }
        try expectUnsupported("an extra initializer") { $0.graph.initializer.append($0.graph.initializer[0]) }
        try expectUnsupported("a short weight") { $0.graph.initializer[0].rawData.removeLast() }
        try expectUnsupported("a double weight") {
            $0.graph.initializer[0].dataType = Int32(Onnx_TensorProto.DataType.double.rawValue)
        }
        try expectUnsupported("a NaN weight") {
            $0.graph.initializer[0].rawData.replaceSubrange(0..<4, with: [0x00, 0x00, 0xC0, 0x7F])
        }
        // Shapes that claim 2^48 parameters, with no data: refused before any allocation.
        try expectUnsupported("a shape bomb") {
            $0.graph.initializer[0].dims = [1 << 24, 4]
            $0.graph.initializer[2].dims = [2, 1 << 24]
        }
        try expectUnsupported("layers that do not chain") {
            $0.graph.initializer[2].dims = [2, 5]
        }
        #expect(throws: ModelFileError.self) { try ONNXModel.load(Data([0x0A, 0xFF, 0x01])) }
        #expect(throws: ModelFileError.self) { try ONNXModel.load(bytes.prefix(bytes.count / 2)) }
        #expect(throws: ModelFileError.self) { try ONNXModel.load(Data()) }
    }

    /// The ONNX project's checker accepts every file, and onnxruntime computes Veil's
    /// predictions from it: classes agree on ≥ 99.5% of the digits test set, float32
    /// probabilities within 1e-5 (Specs/reference/check_models.py).
    @Test(arguments: ["softmax", "mlp:32,16"])
    func onnxruntimeAgreesWithVeilOnTheDigitsTestSet(model specification: String) async throws {
        var c = FederatedConfiguration()
        c.clients = 5
        c.rounds = 8
        c.partition = .iid
        c.model = specification
        let simulation = try FederatedSimulation(configuration: c)
        var sum = PlainSum()
        let outcome = try simulation.train(secureSum: &sum)
        let model = simulation.model
        let test = simulation.data.test
        #expect((outcome.reports.last?.accuracy ?? 0) > 0.8)

        let directory = try RepositoryPaths.temporaryDirectory("veil-onnx")
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for precision in ExportPrecision.onnx {
            let path = directory.appendingPathComponent("\(precision.rawValue).onnx")
            try ONNXModel.export(model, parameters: outcome.parameters, precision: precision).write(to: path)
            paths.append(path.path)
        }
        let reports = try await runtimeReports(
            paths, model: model, parameters: outcome.parameters, test: test, in: directory)
        #expect(reports.count == 2)
        let veilAccuracy = model.evaluate(outcome.parameters, on: test).accuracy
        for report in reports {
            let agreement = report["agreement"] as? Double ?? 0
            let difference = report["max_probability_difference"] as? Double ?? .infinity
            #expect(agreement >= 0.995)
            #expect((report["failures"] as? [Any])?.isEmpty == true)
            #expect(abs((report["veil_accuracy"] as? Double ?? -1) - veilAccuracy) < 1e-12)
            if report["precision"] as? String == "float32" { #expect(difference <= 1e-5) }
            // float16 still computes the same classes, to within a point of accuracy.
            #expect(abs((report["accuracy"] as? Double ?? -1) - veilAccuracy) <= 0.01)
        }
    }
}
