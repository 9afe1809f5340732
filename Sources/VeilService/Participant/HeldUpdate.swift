import Foundation
import Synchronization
import VeilCrypto
import VeilLearning
import VeilWire

extension Veil_V1_ModelOffer {
    /// SHA-256("veil/v1/model-offer" ‖ 0x00 ‖ the offer's protobuf encoding): what a session's
    /// members must all have trained on (`Specs/wire.md` §4.4).
    var digest: [UInt8] {
        SHA256.hash(Array("veil/v1/model-offer".utf8) + [0], (try? serializedBytes() as [UInt8]) ?? [])
    }
}

/// An update a participant of an asynchronous federation trained and keeps until one session
/// uses it (`Specs/wire.md` §4.4): the difference w − w_base from the model of `baseVersion`,
/// unweighted, and the examples it was trained on. It is this participant's own secret, like
/// its data: never sent but masked, and never in a log.
struct HeldUpdate: Codable, Hashable, Sendable {
    var baseVersion: UInt64
    /// The plan's model it was trained for (`softmax`, `mlp:…`, `tensors:…`): an update is only
    /// ever summed into a round of that model.
    var model: String
    /// Hex of the offer's ``Veil_V1_ModelOffer/digest``: the model and plan it was trained on.
    var offerDigest: String
    var delta: [Double]
    var examples: Int
    /// Its DP-SGD training (`Specs/privacy.md` §8), charged to the example-level ledger when the
    /// update is spent; nil when it was trained without DP-SGD.
    var exampleLevel: ExampleLevelTraining?
}

/// What an update's DP-SGD training costs, given its example count: the mechanism and the
/// schedule it ran.
struct ExampleLevelTraining: Codable, Hashable, Sendable {
    var privacy: ExampleLevelPrivacy
    var batchSize: Int
    var epochs: Int
}

/// An asynchronous participant's state: the last model offered and the update it holds. In
/// `offline_state` (a 0700 folder, 0600 files written atomically and synced) when join.json
/// names one, so that a participant that stops — a phone going offline overnight — trains on
/// the model it last had and contributes its update once it reconnects, even after a restart.
final class AsynchronousState: Sendable {
    private struct State {
        var offer: Veil_V1_ModelOffer?
        var held: HeldUpdate?
    }

    private let folder: URL?
    private let state: Mutex<State>
    /// The largest file it reads back: a model of 2^24 parameters in JSON is well below this.
    static let maxFileBytes = 1 << 30
    static let offerFile = "offer.binpb"
    static let heldFile = "held-update.json"

    init(folder: String?) throws {
        self.folder = folder.map { URL(fileURLWithPath: $0) }
        var loaded = State()
        if let folder = self.folder {
            try Self.prepare(folder)
            if let bytes = try Self.read(folder.appendingPathComponent(Self.offerFile)) {
                do { loaded.offer = try Veil_V1_ModelOffer(serializedBytes: bytes) } catch {
                    throw ConfigurationError("offline_state \(folder.path): \(Self.offerFile) is not a model offer")
                }
            }
            if let bytes = try Self.read(folder.appendingPathComponent(Self.heldFile)) {
                let decoder = JSONDecoder()
                decoder.keyDecodingStrategy = .convertFromSnakeCase
                do { loaded.held = try decoder.decode(HeldUpdate.self, from: Data(bytes)) } catch {
                    throw ConfigurationError("offline_state \(folder.path): \(Self.heldFile) is not a held update")
                }
                guard let held = loaded.held, held.delta.allSatisfy(\.isFinite), held.examples >= 0 else {
                    throw ConfigurationError(
                        "offline_state \(folder.path): \(Self.heldFile) holds a value that is not finite or a negative count"
                    )
                }
            }
        }
        state = Mutex(loaded)
    }

    /// Makes the folder (0700), or checks the one there: a real folder, not a symbolic link
    /// (whose target would be made private and written to), and private.
    private static func prepare(_ folder: URL) throws {
        var info = stat()
        if lstat(folder.path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw ConfigurationError("offline_state \(folder.path) is not a folder (a symbolic link is refused)")
            }
            // Someone else's folder could be read or written by its owner.
            guard info.st_uid == geteuid() else {
                throw ConfigurationError("offline_state \(folder.path) belongs to another user")
            }
        } else {
            do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
                throw ConfigurationError("offline_state \(folder.path): \(error.localizedDescription)")
            }
        }
        guard chmod(folder.path, 0o700) == 0 else {
            throw ConfigurationError("offline_state \(folder.path): \(String(cString: strerror(errno)))")
        }
    }

    /// The file's bytes, nil when it does not exist; anything but a regular file is refused.
    private static func read(_ url: URL) throws -> [UInt8]? {
        switch TrainerExchange.readRegularFile(url.path, limit: maxFileBytes) {
        case .success(let bytes): return bytes
        case .failure(.missing): return nil
        case .failure(let why): throw ConfigurationError("offline_state: \(url.lastPathComponent) is \(why)")
        }
    }

    var offer: Veil_V1_ModelOffer? { state.withLock { $0.offer } }
    var held: HeldUpdate? { state.withLock { $0.held } }

    /// Keeps the latest offer (the model to train on while offline).
    func record(_ offer: Veil_V1_ModelOffer) throws {
        try write(Self.offerFile, try offer.serializedBytes() as [UInt8])
        state.withLock { $0.offer = offer }
    }

    /// Keeps a newly trained update, replacing any other: on disk first, so that one that
    /// cannot be kept is not held either.
    func hold(_ update: HeldUpdate) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try write(Self.heldFile, Array(try encoder.encode(update)))
        state.withLock { $0.held = update }
    }

    /// Gives up the held update: forgotten in memory and removed from disk — the removal
    /// synced — before it is used, so that no session uses it again, even after a crash or a
    /// power loss. nil when none is held or `accept` rejects it (then it is kept).
    func take(if accept: (HeldUpdate) -> Bool = { _ in true }) throws -> HeldUpdate? {
        let taken: HeldUpdate? = state.withLock { s in
            guard let held = s.held, accept(held) else { return nil }
            s.held = nil
            return held
        }
        if taken != nil, let folder {
            let path = folder.appendingPathComponent(Self.heldFile).path
            guard unlink(path) == 0 || errno == ENOENT else {
                throw ConfigurationError("cannot remove the spent update \(path): \(String(cString: strerror(errno)))")
            }
            try Self.sync(folder.path, directory: true)
        }
        return taken
    }

    /// Drops a held update that cannot be used.
    func discard() throws { _ = try take() }

    /// Writes `name` atomically: a private temporary file, synced, renamed over the old one,
    /// and the folder synced.
    private func write(_ name: String, _ bytes: [UInt8]) throws {
        guard let folder else { return }
        let path = folder.appendingPathComponent(name).path
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("create", temporary) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let error = Self.failure("write", temporary)
                close(fd)
                throw error
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let error = Self.failure("sync", temporary)
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw Self.failure("close", temporary) }
        guard rename(temporary, path) == 0 else { throw Self.failure("rename", path) }
        try Self.sync(folder.path, directory: true)
    }

    private static func sync(_ path: String, directory: Bool) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0))
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("sync", path) }
    }

    private static func failure(_ what: String, _ path: String) -> ConfigurationError {
        ConfigurationError("offline_state: cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
}
