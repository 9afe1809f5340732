import Foundation
import Logging
import VeilLearning

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the user's trainer for one round (`Specs/trainer.md` §4): a fresh folder, the request
/// written into it, the command started in its own process group under an address-space limit,
/// killed at the timeout, its output kept in `trainer.log` (logged here when it fails, never
/// sent), the result read and checked, and the folder removed. Whatever the trainer does, the
/// cost is this participant's round: every failure is a ``TrainerError``.
public struct ExternalTrainer: Sendable {
    public let configuration: TrainerConfiguration
    let logger: Logger

    public init(configuration: TrainerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The most of `trainer.log` logged when a round fails.
    static let logTail = 2_000

    public func train(_ request: TrainingRequest) throws(TrainerError) -> TrainedModel {
        let parent =
            configuration.workDirectory.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
        let folder = parent.appendingPathComponent("veil-trainer-\(request.round)-\(UUID().uuidString)")
        let exchange = TrainerExchange(folder: folder)
        defer { try? FileManager.default.removeItem(at: folder) }
        try exchange.write(request)
        let log = folder.appendingPathComponent("trainer.log")
        do {
            try run(in: folder, log: log, request: exchange.requestFile)
            return try exchange.read(schema: request.schema)
        } catch {
            logger.warning(
                "the trainer failed",
                metadata: ["round": "\(request.round)", "error": "\(error)", "log": "\(Self.tail(of: log))"])
            throw error
        }
    }

    /// The command in a process group of its own (so that the timeout kills what it started
    /// too), with no descriptor of the participant's but its standard streams, through `sh` for
    /// the folder and the limits (files private to the user, no core files, the address space),
    /// then `exec`: no shell parses the user's arguments.
    private func run(in folder: URL, log: URL, request: URL) throws(TrainerError) {
        let script = "cd \"$1\" && umask 077 && ulimit -c 0 && ulimit -v \"$2\" && shift 2 && exec \"$@\""
        let directory = configuration.runDirectory ?? FileManager.default.currentDirectoryPath
        let arguments =
            ["/bin/sh", "-c", script, "veil-trainer", directory, String(configuration.maxMemoryBytes / 1024)]
            + configuration.command
        var environment = ProcessInfo.processInfo.environment
        environment["VEIL_TRAINER_REQUEST"] = request.path
        let process = try TrainerProcess.spawn(
            arguments, environment: environment.map { "\($0.key)=\($0.value)" }, log: log.path)
        let deadline = ContinuousClock.now + .seconds(configuration.timeoutSeconds)
        var ended = process.poll()
        while ended == nil, ContinuousClock.now < deadline {
            usleep(10_000)
            ended = process.poll()
        }
        // Whatever the trainer left running in its group goes with it; at the timeout, the
        // trainer too.
        process.killGroup()
        guard let ended else {
            _ = process.wait()
            throw .timedOut(seconds: configuration.timeoutSeconds)
        }
        switch ended {
        case .exited(0): break
        case .exited(let status): throw .exited(status: status)
        case .signalled(let signal): throw .signalled(signal)
        }
    }

    /// The end of the trainer's log, as text.
    static func tail(of log: URL) -> String {
        guard let handle = try? FileHandle(forReadingFrom: log) else { return "" }
        defer { try? handle.close() }
        let end = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: end > UInt64(logTail) ? end - UInt64(logTail) : 0)
        let bytes = (try? handle.readToEnd()) ?? Data()
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A child process started with `posix_spawn` as the leader of a new process group, its
/// standard input empty and its output to a file.
struct TrainerProcess {
    enum Ending: Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    let pid: pid_t

    static func spawn(_ arguments: [String], environment: [String], log: String) throws(TrainerError) -> TrainerProcess
    {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        guard posix_spawn_file_actions_init(&actions) == 0 else { throw .launch("posix_spawn_file_actions_init") }
        defer { posix_spawn_file_actions_destroy(&actions) }
        guard posix_spawnattr_init(&attributes) == 0 else { throw .launch("posix_spawnattr_init") }
        defer { posix_spawnattr_destroy(&attributes) }
        var everySignal = sigset_t()
        var noSignal = sigset_t()
        sigfillset(&everySignal)
        sigemptyset(&noSignal)
        // Its own group (pgid = its pid); default dispositions and an empty mask, whatever this
        // process ignores or blocks (SIGPIPE, for one).
        let flags = Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        guard posix_spawnattr_setflags(&attributes, flags) == 0, posix_spawnattr_setpgroup(&attributes, 0) == 0,
            posix_spawnattr_setsigdefault(&attributes, &everySignal) == 0,
            posix_spawnattr_setsigmask(&attributes, &noSignal) == 0,
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) == 0,
            posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600) == 0,
            posix_spawn_file_actions_adddup2(&actions, 1, 2) == 0, closeInherited(&actions)
        else { throw .launch("cannot set up the trainer's process") }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard status == 0 else { throw .launch(String(cString: strerror(status))) }
        return TrainerProcess(pid: pid)
    }

    /// Closes, in the child, every descriptor above standard error: the participant's sockets
    /// (its link to the coordinator, in a simulation the coordinator's own) must not be the
    /// trainer's to read, write or shut down. glibc's `posix_spawn_file_actions_addclosefrom_np`
    /// (2.34 and later, found at run time) closes them all at spawn; without it, each descriptor
    /// open now is closed.
    private static func closeInherited(_ actions: inout posix_spawn_file_actions_t) -> Bool {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            return unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3) == 0
        }
        guard let open = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return false }
        for fd in open.compactMap({ Int32($0) }) where fd > 2 {
            guard posix_spawn_file_actions_addclose(&actions, fd) == 0 else { return false }
        }
        return true
    }

    /// How it ended, or nil while it runs.
    func poll() -> Ending? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return result == -1 ? .signalled(SIGKILL) : nil }
        return Self.ending(status)
    }

    /// Waits for it to end.
    func wait() -> Ending {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno != EINTR { return .signalled(SIGKILL) }
        }
        return Self.ending(status)
    }

    /// SIGKILL to every process of its group (its own included, if it still runs).
    func killGroup() { kill(-pid, SIGKILL) }

    /// The wait status: the low 7 bits are the terminating signal, 0 for an exit whose code
    /// is the next byte.
    static func ending(_ status: Int32) -> Ending {
        status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
    }
}
