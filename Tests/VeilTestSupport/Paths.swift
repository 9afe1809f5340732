import Foundation

/// Locations in the repository, for tests that read `Vectors/` or run the `veil` binary.
public enum RepositoryPaths {
    /// The repository root: two folders above this file (`Tests/VeilTestSupport/`).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Vectors/`.
    public static var vectors: URL { root.appendingPathComponent("Vectors") }

    /// A fresh temporary directory, removed by the caller with `removeItem`.
    public static func temporaryDirectory(_ name: String = "veil-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A copy of `Vectors/` in a temporary directory, for tests that alter files.
    public static func copyOfVectors() throws -> URL {
        let directory = try temporaryDirectory("veil-vectors")
        let copy = directory.appendingPathComponent("Vectors")
        try FileManager.default.copyItem(at: vectors, to: copy)
        return copy
    }
}
