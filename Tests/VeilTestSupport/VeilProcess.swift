import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Runs the built `veil` executable (and other programs) to completion for tests, through
/// swift-subprocess: the test awaits the child without blocking a thread of the cooperative
/// pool, so tests that run in parallel with it keep their timers and streams going.
public enum VeilProcess {
    /// What a run printed and how it ended.
    public struct Output: Sendable {
        public let stdout: String
        public let stderr: String
        public let status: Int32
    }

    /// The `veil` binary next to the test bundle in the build products directory.
    public static var executable: URL {
        get throws {
            var directory = Bundle.main.bundleURL
            for _ in 0..<3 {
                let candidate = directory.appendingPathComponent("veil")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
                directory.deleteLastPathComponent()
            }
            throw CocoaError(
                .fileNoSuchFile, userInfo: [NSFilePathErrorKey: "veil next to \(Bundle.main.bundleURL.path)"])
        }
    }

    /// Runs `veil arguments…` in `directory` (the repository root by default) and waits.
    public static func run(_ arguments: [String], in directory: URL = RepositoryPaths.root) async throws -> Output {
        try await ProcessRunner.run(try executable.path, arguments, in: directory)
    }
}

/// Runs programs for tests: to completion (capturing both streams), or in the background
/// (output to files) so that a test can signal, kill and restart them.
public enum ProcessRunner {
    /// Output beyond this is an error, not a truncation (the runs here print kilobytes).
    static let outputLimit = 64 << 20

    /// At most one child per core runs at once: the tests run in parallel, and two dozen
    /// CPU-bound `veil` processes on two cores would stretch every wall-clock deadline in the
    /// suite, the children's own included.
    static let slots = ProcessSlots(count: max(2, ProcessInfo.processInfo.activeProcessorCount))

    /// Runs `executable arguments…` in `directory` and waits, with standard input closed.
    public static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) async throws
        -> VeilProcess.Output
    {
        await slots.acquire()
        defer { Task { await slots.release() } }
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(arguments),
            workingDirectory: directory.map { FilePath($0.path) }, input: .none,
            output: .string(limit: outputLimit), error: .string(limit: outputLimit))
        let status: Int32 =
            switch result.terminationStatus {
            case .exited(let code): Int32(code)
            case .signaled(let signal): 128 + Int32(signal)
            }
        return VeilProcess.Output(
            stdout: result.standardOutput ?? "", stderr: result.standardError ?? "", status: status)
    }

    /// A program running in the background, its output going to files.
    public final class Background: @unchecked Sendable {
        public let process: Process
        public let stdoutURL: URL
        public let stderrURL: URL

        init(process: Process, stdoutURL: URL, stderrURL: URL) {
            self.process = process
            self.stdoutURL = stdoutURL
            self.stderrURL = stderrURL
        }

        public var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
        public var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

        /// Sends `signal` if the process is still running.
        public func signal(_ signal: Int32) {
            if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
        }

        /// SIGKILL: the process gets no chance to clean up.
        public func kill() {
            signal(SIGKILL)
            process.waitUntilExit()
        }

        /// Waits for the process to end, at most `timeout` seconds; true if it ended.
        @discardableResult
        public func wait(timeout: Double) async -> Bool {
            await eventually(timeout: timeout) { !process.isRunning }
        }
    }

    /// Starts `executable arguments…` in `directory`, stdout and stderr to `name.out` and `name.err` there.
    public static func start(_ executable: URL, _ arguments: [String], in directory: URL, name: String) throws
        -> Background
    {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = directory.appendingPathComponent("\(name).out")
        let err = directory.appendingPathComponent("\(name).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return Background(process: process, stdoutURL: out, stderrURL: err)
    }
}

/// A counting semaphore for child processes, awaited without blocking a thread.
actor ProcessSlots {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { free = count }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
