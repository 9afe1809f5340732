import Foundation
import Logging
import Testing
import VeilLearning
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// Federations over loopback with mutual TLS whose participants train with the user's own
/// program (`Specs/trainer.md`): the NumPy example of `examples/numpy-logistic`.
@Suite(.serialized) struct TrainerFederationTests {
    static let example = [
        "python3", RepositoryPaths.root.appendingPathComponent("examples/numpy-logistic/train.py").path,
    ]

    func federation(clients: Int, rounds: Int, _ configure: (inout FederatedConfiguration) -> Void = { _ in })
        throws -> (NetworkSimulation, URL)
    {
        let directory = try RepositoryPaths.temporaryDirectory("veil-trainer-federation")
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = rounds
        configure(&c)
        return (try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 30), directory)
    }

    var quiet: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    /// Two NumPy participants and two of Veil's own train together; a fifth, whose trainer
    /// returns NaN, declines every round with its reason and costs no one else anything.
    @Test func numpyAndSwiftParticipantsTrainTogetherAndABrokenTrainerCostsOnlyItsRounds() async throws {
        var (network, directory) = try federation(clients: 5, rounds: 3) { $0.partition = .iid }
        defer { try? FileManager.default.removeItem(at: directory) }
        try network.useTrainer(Self.example, for: [0, 1])
        let broken = directory.appendingPathComponent("broken.py")
        try """
        import os, sys, numpy as np
        sys.path.insert(0, \(RepositoryPaths.root.appendingPathComponent("python").path.debugDescription))
        import veil_trainer
        request = veil_trainer.read_request()
        for spec in request.tensors:
            np.save(os.path.join(request.folder, spec.result_file), np.full(spec.shape, np.nan))
        with open(os.path.join(request.folder, "result.json"), "w") as f:
            f.write('{"format": "veil-trainer", "version": 1, "examples": 10}')
        """.write(to: broken, atomically: true, encoding: .utf8)
        try network.useTrainer(["python3", broken.path], for: [2])
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 3)
        #expect(summary.rounds.allSatisfy { $0.completed && $0.survivors == 4 }, "\(summary.rounds.map(\.survivors))")
        #expect((summary.finalAccuracy ?? 0) > 0.6)
        let participants = Dictionary(uniqueKeysWithValues: summary.participants.map { ($0.id, $0) })
        let hostile = try #require(participants["participant-3"])
        #expect(hostile.roundsCompleted == 0 && hostile.declines["training"] == 3, "\(hostile.declines)")
        #expect(hostile.lastDecline?.contains("not finite") == true, "\(hostile.lastDecline ?? "")")
        for id in ["participant-1", "participant-2", "participant-4", "participant-5"] {
            #expect(participants[id]?.roundsCompleted == 3, "\(id)")
        }
    }

    /// The NumPy example computes Veil's SGD: with full batches (so that the order of the rows
    /// does not matter) a federation trained by it reaches the accuracy of one trained by Veil's
    /// own trainer, within a point.
    @Test func theNumpyExampleReachesTheAccuracyOfVeilsTrainer() async throws {
        func accuracy(numpy: Bool) async throws -> Double {
            var (network, directory) = try federation(clients: 10, rounds: 8) {
                $0.batchSize = 10_000
                $0.localEpochs = 5
                $0.learningRate = 0.5
            }
            defer { try? FileManager.default.removeItem(at: directory) }
            if numpy { try network.useTrainer(Self.example, for: network.participants.indices) }
            let summary = try await network.run(logger: quiet)
            #expect(summary.completedRounds == 8 && summary.rounds.allSatisfy { $0.survivors == 10 })
            return try #require(summary.finalAccuracy)
        }
        let veil = try await accuracy(numpy: false)
        let numpy = try await accuracy(numpy: true)
        #expect(veil > 0.7)
        #expect(abs(veil - numpy) <= 0.01, "Veil's trainer \(veil), the NumPy example \(numpy)")
    }
}
