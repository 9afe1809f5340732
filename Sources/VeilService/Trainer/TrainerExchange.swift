import Foundation
import VeilLearning

#if canImport(Glibc)
    import Glibc
#endif

/// What the trainer is asked to do in one round (`Specs/trainer.md` §2): the global model as
/// named tensors, and the coordinator's training plan, which the trainer applies as it can.
public struct TrainingRequest: Sendable {
    public var round: UInt64
    /// A seed for the trainer's own randomness (shuffling): fresh for every session, below 2^53
    /// so that every JSON reader holds it exactly.
    public var seed: UInt64
    public var model: String
    public var features: Int
    public var classes: Int
    public var algorithm: String
    public var localEpochs: Int
    public var batchSize: Int
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double
    public var proximalMu: Double
    /// join.json's `trainer.data`, passed through.
    public var data: String?
    public var schema: TensorSchema
    /// The global parameters, flat in the schema's order.
    public var global: [Double]
}

/// What the trainer returned: its parameters after local training (flat, in the schema's
/// order), the number of examples it trained on, and the metrics it chose to report (kept on
/// the participant: they are never sent).
public struct TrainedModel: Sendable {
    public var parameters: [Double]
    public var examples: Int
    public var metrics: [String: Double]
}

/// Why an external trainer's round failed. Each description is what the participant tells the
/// coordinator when it declines the round, so none carries the trainer's output: that is
/// logged on the participant only.
public enum TrainerError: Error, Hashable, Sendable, CustomStringConvertible {
    case exchange(String)
    case launch(String)
    case timedOut(seconds: Double)
    case exited(status: Int32)
    case signalled(Int32)
    case result(String)
    case tensor(name: String, String)

    public var description: String {
        switch self {
        case .exchange(let why): "the trainer's exchange folder: \(why)"
        case .launch(let why): "the trainer could not be started: \(why)"
        case .timedOut(let seconds): "the trainer did not finish within \(seconds) s and was killed"
        case .exited(let status):
            "the trainer exited with status \(status)"
                + (status == 127 ? " (command not found)" : status == 126 ? " (not executable)" : "")
        case .signalled(let signal): "the trainer was killed by signal \(signal)"
        case .result(let why): "the trainer's result.json: \(why)"
        case .tensor(let name, let why): "the trainer's tensor '\(name)': \(why)"
        }
    }
}

/// The exchange's files in one round's folder (`Specs/trainer.md` §3), without running
/// anything: `request.json` and `global/<i>.npy` written for the trainer, `result.json` and
/// `result/<i>.npy` read back and checked against the schema.
public struct TrainerExchange: Sendable {
    public static let format = "veil-trainer"
    public static let version = 1
    /// result.json larger than this is refused unread.
    static let maxResultBytes = 1 << 20
    /// The largest example count a result may give (every JSON reader holds it exactly).
    static let maxExamples = 1 << 53

    public let folder: URL

    public init(folder: URL) { self.folder = folder }

    public var requestFile: URL { folder.appendingPathComponent("request.json") }
    var resultFile: URL { folder.appendingPathComponent("result.json") }

    func globalFile(_ index: Int) -> String { "global/\(index).npy" }
    func resultTensorFile(_ index: Int) -> String { "result/\(index).npy" }

    /// Writes the request and the global tensors.
    public func write(_ request: TrainingRequest) throws(TrainerError) {
        let tensors = request.schema.split(request.global)
        do {
            // Private to this user: the folder holds the model before and after local training.
            let owner: [FileAttributeKey: Any] = [.posixPermissions: 0o700]
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false, attributes: owner)
            for directory in ["global", "result"] {
                try FileManager.default.createDirectory(
                    at: folder.appendingPathComponent(directory), withIntermediateDirectories: false, attributes: owner)
            }
            for (i, values) in tensors.enumerated() {
                let array = NumpyArray(shape: request.schema.tensors[i].shape, values: values)
                try Data(array.encoded).write(to: folder.appendingPathComponent(globalFile(i)))
            }
            var body: [String: Any] = [
                "format": Self.format, "version": Self.version, "round": request.round, "seed": request.seed,
                "model": request.model, "features": request.features, "classes": request.classes,
                "algorithm": request.algorithm, "local_epochs": request.localEpochs, "batch_size": request.batchSize,
                "learning_rate": request.learningRate, "momentum": request.momentum,
                "weight_decay": request.weightDecay, "proximal_mu": request.proximalMu,
                "tensors": request.schema.tensors.enumerated().map { i, spec in
                    ["name": spec.name, "shape": spec.shape, "global": globalFile(i), "result": resultTensorFile(i)]
                },
                "result": "result.json",
            ]
            if let data = request.data { body["data"] = data }
            let json = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .prettyPrinted])
            try json.write(to: requestFile)
        } catch {
            throw .exchange("\(error)")
        }
    }

    /// Reads and checks what the trainer wrote: the format and version, a whole example count
    /// in 1...2^53, metrics that are numbers, and every tensor of the schema with its exact
    /// shape and only finite values.
    public func read(schema: TensorSchema) throws(TrainerError) -> TrainedModel {
        let object = try resultObject()
        let known: Set<String> = ["format", "version", "examples", "metrics"]
        // The reasons name nothing the trainer chose (a key, a metric's name): they go to the coordinator.
        guard object.keys.allSatisfy(known.contains) else {
            throw .result("a key other than format, version, examples and metrics")
        }
        guard object["format"] as? String == Self.format else { throw .result("format is not \"\(Self.format)\"") }
        guard Self.number(object["version"]) == Double(Self.version) else {
            throw .result("version is not \(Self.version)")
        }
        guard let count = Self.number(object["examples"]), count.rounded() == count, count >= 1,
            count <= Double(Self.maxExamples)
        else {
            throw .result("examples must be a whole number in 1...2^53")
        }
        var metrics: [String: Double] = [:]
        if let reported = object["metrics"] {
            guard let table = reported as? [String: Any] else { throw .result("metrics must be an object") }
            for (name, value) in table {
                guard let number = Self.number(value), number.isFinite else {
                    throw .result("a metric that is not a finite number")
                }
                metrics[name] = number
            }
        }
        var parameters: [Double] = []
        parameters.reserveCapacity(schema.count)
        for (i, spec) in schema.tensors.enumerated() {
            parameters += try tensor(i, spec)
        }
        return TrainedModel(parameters: parameters, examples: Int(count), metrics: metrics)
    }

    /// A JSON number's value; nil for anything else, `true` and `false` included (which
    /// Foundation reads as numbers too).
    static func number(_ value: Any?) -> Double? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        return number.doubleValue
    }

    private func resultObject() throws(TrainerError) -> [String: Any] {
        let data: [UInt8]
        switch Self.readRegularFile(resultFile.path, limit: Self.maxResultBytes) {
        case .success(let bytes): data = bytes
        case .failure(let why): throw .result(why.description)
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            throw .result("not a JSON object")
        }
        return object
    }

    /// Why a file the trainer left cannot be read.
    enum Unreadable: Error, CustomStringConvertible {
        case missing
        case notRegular
        case tooLarge(Int)
        case io(Int32)

        var description: String {
            switch self {
            case .missing: "missing"
            case .notRegular: "not a regular file (a symbolic link, a FIFO, a device or a folder)"
            case .tooLarge(let limit): "larger than the \(limit) bytes it may have"
            case .io(let code): "unreadable: \(String(cString: strerror(code)))"
            }
        }
    }

    /// The bytes of a regular file of at most `limit` bytes. Opened without following a final
    /// symbolic link and without blocking, then checked on the open descriptor: a FIFO that no
    /// one will ever write, a device, or a file swapped in after a check cannot stall or
    /// swell the participant.
    static func readRegularFile(_ path: String, limit: Int) -> Result<[UInt8], Unreadable> {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            return .failure(errno == ENOENT ? .missing : errno == ELOOP ? .notRegular : .io(errno))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.io(errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(.notRegular) }
        guard info.st_size <= limit else { return .failure(.tooLarge(limit)) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var count = 0
        while count <= limit {
            let got = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, limit + 1 - count) }
            if got == 0 { break }
            if got < 0 {
                if errno == EINTR { continue }
                return .failure(.io(errno))
            }
            count += got
        }
        // The file grew after fstat: still no more than the limit is read or accepted.
        guard count <= limit else { return .failure(.tooLarge(limit)) }
        return .success(Array(bytes[0..<count]))
    }

    private func tensor(_ index: Int, _ spec: TensorSpec) throws(TrainerError) -> [Double] {
        let path = folder.appendingPathComponent(resultTensorFile(index)).path
        let limit = NumpyArray.maxHeaderLength + 16 + spec.count * 8
        let bytes: [UInt8]
        switch Self.readRegularFile(path, limit: limit) {
        case .success(let read): bytes = read
        case .failure(let why): throw .tensor(name: spec.name, "\(resultTensorFile(index)) is \(why)")
        }
        let array: NumpyArray
        do { array = try NumpyArray(decoding: bytes) } catch { throw .tensor(name: spec.name, error.reason) }
        guard array.shape == spec.shape else {
            throw .tensor(name: spec.name, "the shape \(array.shape), where the schema says \(spec.shape)")
        }
        guard array.values.allSatisfy(\.isFinite) else {
            throw .tensor(name: spec.name, "a value that is not finite (NaN or infinity)")
        }
        return array.values
    }
}
