import Foundation

/// Runs the built `veil` executable, as swift-argument-parser's example tests do.
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
    public static func run(_ arguments: [String], in directory: URL = RepositoryPaths.root) throws -> Output {
        let process = Process()
        process.executableURL = try executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read before waiting: a full pipe would block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self),
            status: process.terminationStatus)
    }
}
