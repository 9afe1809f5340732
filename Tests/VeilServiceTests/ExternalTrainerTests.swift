import Foundation
import Glibc
import Logging
import Testing
import VeilLearning
import VeilTestSupport

@testable import VeilService

/// The user's trainer (`Specs/trainer.md`): hostile and broken trainers cost their round, with
/// a typed reason that carries nothing the trainer printed.
@Suite(.serialized) struct ExternalTrainerTests {
    /// softmax on 3 features and 2 classes: layers.0.weight [2, 3], layers.0.bias [2].
    static let schema = TensorSchema(model: SoftmaxRegression(featureCount: 3, classCount: 2))

    static func request(round: UInt64 = 4) -> TrainingRequest {
        TrainingRequest(
            round: round, seed: 12345, model: "softmax", features: 3, classes: 2, algorithm: "fedavg",
            localEpochs: 1, batchSize: 32, learningRate: 0.1, momentum: 0, weightDecay: 0, proximalMu: 0,
            data: "rows.csv", schema: schema, global: [1, 2, 3, 4, 5, 6, 7, 8])
    }

    /// Runs `python` (a Python program, with the repository's veil_trainer importable) as the
    /// trainer of one round.
    func train(
        _ python: String, timeout: Double = 20, memory: UInt64 = 4 << 30, request: TrainingRequest = request()
    ) throws -> Result<TrainedModel, TrainerError> {
        let directory = try RepositoryPaths.temporaryDirectory("veil-trainer")
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("train.py")
        let prelude =
            "import sys; sys.path.insert(0, \(RepositoryPaths.root.appendingPathComponent("python").path.debugDescription))\n"
        try (prelude + python).write(to: script, atomically: true, encoding: .utf8)
        return try run(["python3", script.path], in: directory, timeout: timeout, memory: memory, request: request)
    }

    func run(
        _ command: [String], in directory: URL, timeout: Double = 20, memory: UInt64 = 4 << 30,
        request: TrainingRequest = request()
    ) throws -> Result<TrainedModel, TrainerError> {
        var configuration = TrainerConfiguration(command: command)
        configuration.timeoutSeconds = timeout
        configuration.maxMemoryBytes = memory
        configuration.runDirectory = directory.path
        configuration.workDirectory = directory.appendingPathComponent("work").path
        try FileManager.default.createDirectory(
            atPath: configuration.workDirectory!, withIntermediateDirectories: true)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let trainer = ExternalTrainer(configuration: configuration, logger: logger)
        let result = Result { () throws(TrainerError) in try trainer.train(request) }
        // Every round's folder is removed, whatever happened.
        #expect(try FileManager.default.contentsOfDirectory(atPath: configuration.workDirectory!).isEmpty)
        return result
    }

    func failure(_ result: Result<TrainedModel, TrainerError>) -> TrainerError? {
        if case .failure(let error) = result { return error }
        return nil
    }

    @Test func aTrainerReadsTheRequestAndReturnsItsParameters() throws {
        let result = try train(
            """
            import veil_trainer
            def train(request):
                assert request.round == 4 and request.seed == 12345 and request.data == "rows.csv", request.plan
                assert [t.name for t in request.tensors] == ["layers.0.weight", "layers.0.bias"]
                w = request.global_tensors["layers.0.weight"]
                assert w.tolist() == [[1, 2, 3], [4, 5, 6]], w
                return {name: a * 10 for name, a in request.global_tensors.items()}, 7, {"loss": 0.25}
            veil_trainer.run(train)
            """)
        let trained = try result.get()
        #expect(trained.parameters == [10, 20, 30, 40, 50, 60, 70, 80])
        #expect(trained.examples == 7 && trained.metrics == ["loss": 0.25])
    }

    @Test func aCrashAMissingProgramAndAKillAreTheirOwnReasons() throws {
        let crashed = try train("import sys\nprint('SECRET-ROW 0.1,0.2', file=sys.stderr)\nsys.exit(3)")
        #expect(failure(crashed) == .exited(status: 3))
        // What the trainer printed stays on the participant.
        #expect(failure(crashed)?.description.contains("SECRET") == false)
        let directory = try RepositoryPaths.temporaryDirectory("veil-trainer")
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(failure(try run(["no-such-trainer-program"], in: directory)) == .exited(status: 127))
        #expect(
            failure(try train("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")) == .signalled(SIGSEGV))
        // No result at all, from a trainer that exits 0.
        #expect(failure(try train("pass")) == .result("missing"))
    }

    /// A hung trainer is killed at the timeout, with what it started.
    @Test func aHungTrainerIsKilledWithItsChildren() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-trainer-hang")
        defer { try? FileManager.default.removeItem(at: directory) }
        let pids = directory.appendingPathComponent("pids")
        let started = ContinuousClock.now
        let result = try train(
            """
            import os, subprocess, time
            child = subprocess.Popen(["sleep", "300"])
            with open(\(pids.path.debugDescription), "w") as f:
                f.write("%d %d" % (os.getpid(), child.pid))
            time.sleep(300)
            """, timeout: 1.5)
        #expect(failure(result) == .timedOut(seconds: 1.5))
        #expect(ContinuousClock.now - started < .seconds(20))
        let text = try String(contentsOf: pids, encoding: .utf8)
        let ids = text.split(separator: " ").compactMap { pid_t($0) }
        #expect(ids.count == 2)
        for pid in ids {
            // Gone, once the init process has reaped the orphaned child.
            var alive = true
            for _ in 0..<50 where alive {
                alive = kill(pid, 0) == 0 && !Self.isZombie(pid)
                if alive { usleep(100_000) }
            }
            #expect(!alive, "process \(pid) survived the timeout")
        }
    }

    static func isZombie(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        // The state follows the command's closing parenthesis.
        return stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true
    }

    @Test func theMemoryLimitHolds() throws {
        let result = try train("x = bytearray(1 << 31)\nprint(len(x))", memory: 256 << 20)
        // Python's MemoryError ends it with status 1.
        #expect(failure(result) == .exited(status: 1))
        #expect(
            try train("x = bytearray(1 << 20)\nimport sys; sys.exit(5)", memory: 256 << 20).failure
                == .exited(status: 5))
    }

    /// What the trainer returns is checked against the schema, bypassing the package's own checks.
    @Test func wrongShapesNonFiniteValuesAndBadCountsAreRefused() throws {
        /// `tensors` runs before the files are written, `after` once they are.
        func raw(_ tensors: String, _ result: String, after: String = "") throws -> TrainerError? {
            failure(
                try train(
                    """
                    import json, numpy as np, os
                    folder = os.path.dirname(os.environ["VEIL_TRAINER_REQUEST"])
                    w, b = np.zeros((2, 3)), np.zeros(2)
                    \(tensors)
                    np.save(os.path.join(folder, "result/0.npy"), w)
                    np.save(os.path.join(folder, "result/1.npy"), b)
                    with open(os.path.join(folder, "result.json"), "w") as f:
                        f.write(\(result.debugDescription))
                    \(after)
                    """))
        }
        let good = #"{"format": "veil-trainer", "version": 1, "examples": 5}"#
        #expect(try raw("", good) == nil)
        #expect(
            try raw("w[1, 2] = np.nan", good)
                == .tensor(name: "layers.0.weight", "a value that is not finite (NaN or infinity)"))
        #expect(
            try raw("b[0] = np.inf", good)
                == .tensor(name: "layers.0.bias", "a value that is not finite (NaN or infinity)"))
        #expect(
            try raw("w = np.zeros((3, 2))", good)
                == .tensor(name: "layers.0.weight", "the shape [3, 2], where the schema says [2, 3]"))
        #expect(
            try raw("w = np.zeros((2, 3), dtype=np.int64)", good)
                == .tensor(name: "layers.0.weight", NumpyError.dtype("<i8").reason))
        #expect(try raw("b = np.zeros(100000)", good)?.description.contains("is larger than the 10032 bytes") == true)
        // Files a reader could block on or be led astray by: refused on the open descriptor.
        let notRegular = "not a regular file (a symbolic link, a FIFO, a device or a folder)"
        // The links are made after the files are written: a write through a link to a system
        // file would overwrite it (this test once truncated /etc/passwd that way).
        #expect(
            try raw(
                "", good,
                after:
                    "os.remove(os.path.join(folder, 'result/1.npy')); os.symlink(os.path.join(folder, 'global/1.npy'), os.path.join(folder, 'result/1.npy'))"
            ) == .tensor(name: "layers.0.bias", "result/1.npy is \(notRegular)"))
        #expect(
            try raw(
                "", good,
                after:
                    "os.remove(os.path.join(folder, 'result/0.npy')); os.symlink('/dev/zero', os.path.join(folder, 'result/0.npy'))"
            ) == .tensor(name: "layers.0.weight", "result/0.npy is \(notRegular)"))
        for (json, why) in [
            (
                #"{"format": "veil-trainer", "version": 1, "examples": 0}"#,
                "examples must be a whole number in 1...2^53"
            ),
            (
                #"{"format": "veil-trainer", "version": 1, "examples": 2.5}"#,
                "examples must be a whole number in 1...2^53"
            ),
            (
                #"{"format": "veil-trainer", "version": 1, "examples": "5"}"#,
                "examples must be a whole number in 1...2^53"
            ),
            (
                #"{"format": "veil-trainer", "version": 1, "examples": true}"#,
                "examples must be a whole number in 1...2^53"
            ),
            (#"{"format": "veil-trainer", "version": 2, "examples": 5}"#, "version is not 1"),
            (#"{"format": "veil-trainer", "version": true, "examples": 5}"#, "version is not 1"),
            (
                #"{"format": "veil-trainer", "version": 1, "examples": 5, "metrics": {"loss": false}}"#,
                "a metric that is not a finite number"
            ),
            (#"{"format": "other", "version": 1, "examples": 5}"#, #"format is not "veil-trainer""#),
            (
                #"{"format": "veil-trainer", "version": 1, "examples": 5, "update": 1}"#,
                "a key other than format, version, examples and metrics"
            ),
            (
                #"{"format": "veil-trainer", "version": 1, "examples": 5, "metrics": {"loss": "low"}}"#,
                "a metric that is not a finite number"
            ),
            (#"[1, 2]"#, "not a JSON object"),
            (#"{"format": "veil-trainer", "#, "not a JSON object"),
        ] {
            #expect(try raw("", json) == .result(why), "\(json)")
        }
        #expect(
            try raw("", String(repeating: " ", count: 2 << 20) + good)
                == .result("larger than the 1048576 bytes it may have"))
        // A FIFO that no one writes would block a plain read for ever.
        let started = ContinuousClock.now
        let fifo = try train(
            """
            import os, numpy as np
            folder = os.path.dirname(os.environ["VEIL_TRAINER_REQUEST"])
            np.save(os.path.join(folder, "result/0.npy"), np.zeros((2, 3)))
            np.save(os.path.join(folder, "result/1.npy"), np.zeros(2))
            os.mkfifo(os.path.join(folder, "result.json"))
            """)
        #expect(failure(fifo) == .result(notRegular))
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    /// The trainer gets none of the participant's descriptors (its link to the coordinator), a
    /// folder only its user can read, and a umask that keeps what it writes private.
    @Test func theTrainerInheritsNoSocketAndWritesPrivately() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(socket > 2)
        defer { close(socket) }
        let result = try train(
            """
            import os, stat, sys, veil_trainer
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if int(fd) > 2 and os.readlink("/proc/self/fd/" + fd).startswith("socket:"):
                        sys.exit(9)
                except OSError:
                    pass
            folder = os.path.dirname(os.environ["VEIL_TRAINER_REQUEST"])
            if stat.S_IMODE(os.stat(folder).st_mode) != 0o700 or os.umask(0) != 0o077:
                sys.exit(8)
            veil_trainer.run(lambda request: (request.global_tensors, 3))
            """)
        #expect(try result.get().examples == 3)
    }

    @Test func aReasonIsBounded() {
        let reason = Declined(.declineTraining, String(repeating: "x", count: 100_000)).reason
        #expect(reason.count == Declined.maxReasonLength && reason.hasSuffix("…"))
    }

    /// The package checks what Veil checks, and says so by name before Veil sees anything.
    @Test func thePackageRefusesAWrongResultByName() throws {
        let result = try train(
            """
            import sys, numpy as np, veil_trainer
            def train(request):
                return {"layers.0.weight": np.full((2, 3), np.nan), "layers.0.bias": np.zeros(2)}, 3
            veil_trainer.run(train)
            """)
        #expect(failure(result) == .exited(status: 1))
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
