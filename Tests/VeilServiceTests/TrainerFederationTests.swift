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

    /// An architecture Veil does not know: serve.json's model is only its tensors (the numpy
    /// CNN's, which are the PyTorch module's state_dict), trained by the participants' NumPy
    /// trainers and summed by Veil; the final parameters, read from the store, classify the
    /// digits test split well in NumPy. A participant with Veil's own trainer declines every
    /// round with the reason.
    @Test func aModelKnownOnlyByItsTensorsIsTrainedByTheParticipantsOwnTrainers() async throws {
        var (network, directory) = try federation(clients: 4, rounds: 8) { $0.partition = .iid }
        defer { try? FileManager.default.removeItem(at: directory) }
        let schema = "tensors:conv.weight=4x1x3x3,conv.bias=4,fc.weight=10x144,fc.bias=10"
        network.serve.model = try ModelArchitecture(parsing: schema)
        network.serve.evaluate = nil
        let cnn = RepositoryPaths.root.appendingPathComponent("examples/numpy-cnn/train.py").path
        try network.useTrainer(["python3", cnn], for: [0, 1, 2])
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 8)
        #expect(summary.rounds.allSatisfy { $0.completed && $0.survivors == 3 }, "\(summary.rounds.map(\.survivors))")
        let own = try #require(summary.participants.first { $0.id == "participant-4" })
        #expect(own.declines["training"] == 8 && own.lastDecline?.contains("known by its tensors only") == true)

        let parameters = try #require(
            try CoordinatorStore(readingAt: network.serve.state).latestCheckpoint()?.state.parameters)
        #expect(parameters.count == 1490)
        var c = FederatedConfiguration()
        c.clients = 4
        c.partition = .iid
        let test = try FederatedSimulation(configuration: c).data.test
        try Data(CSVLoader.text(of: test).utf8).write(to: directory.appendingPathComponent("test.csv"))
        try Data(parameters.map { "\($0)" }.joined(separator: "\n").utf8).write(
            to: directory.appendingPathComponent("parameters.txt"))
        let script = """
            import importlib.util, numpy as np
            spec = importlib.util.spec_from_file_location("cnn", \(cnn.debugDescription))
            cnn = importlib.util.module_from_spec(spec); spec.loader.exec_module(cnn)
            flat = np.loadtxt("parameters.txt")
            params, start = {}, 0
            for name, shape in cnn.SCHEMA.items():
                n = int(np.prod(shape)); params[name] = flat[start:start + n].reshape(shape); start += n
            table = np.loadtxt("test.csv", delimiter=",", ndmin=2)
            print(cnn.accuracy(params, table[:, :-1], table[:, -1].astype(int)))
            """
        let evaluated = try await ProcessRunner.run(
            "/usr/bin/env", ["python3", "-c", script], in: directory)
        let accuracy = try #require(Double(evaluated.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(accuracy > 0.8, "\(evaluated.stdout) \(evaluated.stderr)")
    }
}
