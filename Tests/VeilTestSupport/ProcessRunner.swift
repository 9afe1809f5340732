import Foundation
import Synchronization

/// Runs programs for tests: to completion (capturing both streams), or in the background
/// (output to files) so that a test can kill and restart them.
public enum ProcessRunner {
    /// Runs `executable arguments…` in `directory` and waits.
    public static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws
        -> VeilProcess.Output
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read before waiting: a full pipe would block the child.
        let stderrData = Mutex(Data())
        let reader = Thread { stderrData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() } }
        reader.start()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        return VeilProcess.Output(
            stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderrData.withLock { $0 }, as: UTF8.self), status: process.terminationStatus)
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

        /// SIGKILL: the process gets no chance to clean up.
        public func kill() {
            if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        /// Waits for the process to end, at most `timeout` seconds; true if it ended.
        @discardableResult
        public func wait(timeout: Double) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            return !process.isRunning
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
