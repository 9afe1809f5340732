import Foundation
import Testing
import VeilCore

@testable import VeilLearning

/// Magnitude pruning (Specs/export.md §4) and federated fine-tuning after it.
@Suite struct PruningTests {
    func checkpoint(_ model: String, features: Int = 4, classes: Int = 3, seed: UInt64 = 1) throws -> ModelCheckpoint {
        let m = try makeModel(model, featureCount: features, classCount: classes)
        var generator = Xoshiro256(seed: seed, purpose: .initialParameters)
        let p = (0..<m.parameterCount).map { _ in generator.standardNormal() }
        return try ModelCheckpoint(model: model, features: features, classes: classes, round: 1, parameters: p)
    }

    @Test func unstructuredZeroesEachLayersSmallestWeightsAndKeepsBiases() throws {
        let c = try checkpoint("mlp:5")
        let pruned = try c.pruned(Pruning(sparsity: 0.5, kind: .unstructured))
        #expect(pruned.model == "mlp:5")
        // Layer 0: 20 weights, 10 pruned; layer 1: 15 weights, 7 pruned; biases untouched.
        let layer0 = Array(pruned.parameters[0..<20])
        let layer1 = Array(pruned.parameters[25..<40])
        #expect(layer0.count { $0 == 0 } == 10 && layer1.count { $0 == 0 } == 7)
        #expect(Array(pruned.parameters[20..<25]) == Array(c.parameters[20..<25]))
        // What stays is at least as large as anything pruned, layer by layer.
        let kept0 = zip(layer0, c.parameters[0..<20]).filter { $0.0 != 0 }.map { abs($0.1) }
        let cut0 = zip(layer0, c.parameters[0..<20]).filter { $0.0 == 0 }.map { abs($0.1) }
        #expect(kept0.min()! >= cut0.max()!)
        #expect(pruned.nonzeroCount == c.parameters.count - 17)
    }

    /// Ties are broken by position, so the same parameters always give the same mask.
    @Test func tiesArePrunedInOrder() throws {
        let c = try ModelCheckpoint(
            model: "softmax", features: 2, classes: 2, round: 0, parameters: [1, 1, 1, 1, 0.5, 0.5])
        let pruned = try c.pruned(Pruning(sparsity: 0.5, kind: .unstructured))
        #expect(pruned.parameters == [0, 0, 1, 1, 0.5, 0.5])
    }

    /// Structured pruning removes whole units: the compacted, smaller model computes exactly
    /// what the masked one does.
    @Test func structuredRemovesUnitsAndTheSmallerModelComputesTheSame() throws {
        let c = try checkpoint("mlp:6,4", features: 5, classes: 3)
        let pruning = try Pruning(sparsity: 0.5, kind: .structured)
        let model = try c.makeModel()
        let masked = try c.masked(try pruning.mask(model, parameters: c.parameters))
        let compact = try masked.compacted()
        #expect(compact.model == "mlp:3,2")
        #expect(compact.parameters.count == 3 * 6 + 2 * 4 + 3 * 3)
        var generator = Xoshiro256(seed: 2, purpose: .dataSplit)
        let data = try Dataset(
            features: (0..<50).map { _ in generator.standardNormal() }, labels: (0..<10).map { $0 % 3 },
            featureCount: 5, classCount: 3)
        let before = model.probabilities(masked.parameters, on: data)
        let after = try compact.makeModel().probabilities(compact.parameters, on: data)
        for (a, b) in zip(before, after) {
            for (x, y) in zip(a, b) { #expect(abs(x - y) < 1e-12) }
        }
        // Every layer keeps a unit, however high the sparsity.
        #expect(try c.pruned(Pruning(sparsity: 0.99, kind: .structured)).model == "mlp:1,1")
        #expect(throws: DataError.self) {
            try checkpoint("softmax").pruned(Pruning(sparsity: 0.5, kind: .structured))
        }
    }

    @Test func refusals() {
        #expect(throws: DataError.self) { try Pruning(parsing: "1") }
        #expect(throws: DataError.self) { try Pruning(parsing: "-0.1") }
        #expect(throws: DataError.self) { try Pruning(parsing: "0.5:diagonal") }
        #expect((try? Pruning(parsing: "0.3:structured"))?.kind == .structured)
        var c = FederatedConfiguration()
        c.pruning = try? Pruning(parsing: "0.5:structured")
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }  // softmax
        c.model = "mlp:8"
        c.pruneRound = 51
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }
    }

    /// Fine-tuning: after the pruning round the pruned weights stay zero through every later
    /// server step, and training recovers accuracy the pruning lost.
    @Test func aFederationFineTunesAfterPruningWithTheMaskKept() throws {
        var c = FederatedConfiguration()
        c.model = "mlp:16"
        c.rounds = 20
        c.partition = .iid
        c.pruning = try Pruning(sparsity: 0.8, kind: .unstructured)
        c.pruneRound = 10
        let simulation = try FederatedSimulation(configuration: c)
        var sum = PlainSum()
        let outcome = try simulation.train(secureSum: &sum)
        // 80% of each layer's weights: ⌊0.8·1024⌋ + ⌊0.8·160⌋ zeros at least.
        #expect(outcome.parameters.count { $0 == 0 } >= 819 + 128)
        let atPruning = try #require(outcome.reports[9].accuracy)
        let final = try #require(outcome.reports.last?.accuracy)
        #expect(final > atPruning + 0.05, "\(atPruning) → \(final)")

        c.pruning = nil
        let unpruned = try FederatedSimulation(configuration: c)
        var plain = PlainSum()
        #expect(try unpruned.train(secureSum: &plain).parameters.count { $0 == 0 } < 10)
    }
}
