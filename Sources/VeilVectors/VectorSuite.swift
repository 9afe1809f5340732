import Foundation

/// Checks every vector file under a directory: `veil vectors verify` and the test suite.
public enum VectorSuite {
    /// The result of checking one file.
    public struct FileReport: Sendable {
        /// The path relative to the checked directory.
        public let path: String
        /// The family: the first folder under the checked directory.
        public let family: String
        /// The file's `algorithm`, when it could be read.
        public let algorithm: String?
        /// One outcome per test case.
        public let outcomes: [CaseOutcome]
        /// Why the file could not be checked at all (counts as one failure).
        public let error: VectorError?

        public var passed: Int { outcomes.count { $0.passed } }
        public var failed: Int { outcomes.count { !$0.passed } + (error == nil ? 0 : 1) }
    }

    /// The result of checking a directory.
    public struct Report: Sendable {
        public let files: [FileReport]

        public var passed: Int { files.reduce(0) { $0 + $1.passed } }
        public var failed: Int { files.reduce(0) { $0 + $1.failed } }

        /// Per family, in order: passed and failed counts and the number of files.
        public var families: [(family: String, passed: Int, failed: Int, files: Int)] {
            var totals: [(family: String, passed: Int, failed: Int, files: Int)] = []
            for file in files {
                if let i = totals.firstIndex(where: { $0.family == file.family }) {
                    totals[i].passed += file.passed
                    totals[i].failed += file.failed
                    totals[i].files += 1
                } else {
                    totals.append((file.family, file.passed, file.failed, 1))
                }
            }
            return totals
        }
    }

    /// Why a directory could not be checked.
    public enum SuiteError: Error, CustomStringConvertible {
        case notADirectory(String)
        case empty(String)

        public var description: String {
            switch self {
            case .notADirectory(let path): "\(path) is not a directory"
            case .empty(let path): "no .json vector files under \(path)"
            }
        }
    }

    /// Checks every `.json` file under `directory`, in path order.
    /// - Throws: ``SuiteError`` when the directory is missing or holds no vector file.
    public static func verify(directory: URL) throws -> Report {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw SuiteError.notADirectory(directory.path)
        }
        let paths = jsonFiles(under: directory)
        guard !paths.isEmpty else { throw SuiteError.empty(directory.path) }
        return Report(files: paths.map { verify(file: directory.appendingPathComponent($0), relativePath: $0) })
    }

    /// Checks one file.
    public static func verify(file: URL, relativePath: String) -> FileReport {
        let components = relativePath.split(separator: "/")
        let family = components.count > 1 ? String(components[0]) : file.deletingPathExtension().lastPathComponent
        func failure(_ error: VectorError, algorithm: String? = nil) -> FileReport {
            FileReport(path: relativePath, family: family, algorithm: algorithm, outcomes: [], error: error)
        }
        guard let data = try? Data(contentsOf: file) else { return failure(.unreadable("cannot read the file")) }
        let header: VectorFileHeader
        do { header = try JSONDecoder().decode(VectorFileHeader.self, from: data) } catch {
            return failure(.unreadable(String(describing: error)))
        }
        guard let runner = runners[header.algorithm] else {
            return failure(.unknownAlgorithm(header.algorithm), algorithm: header.algorithm)
        }
        do {
            let outcomes = try runner.run(data)
            return FileReport(
                path: relativePath, family: family, algorithm: header.algorithm, outcomes: outcomes, error: nil)
        } catch {
            return failure(error, algorithm: header.algorithm)
        }
    }

    /// The algorithms a runner exists for.
    public static var algorithms: [String] { runners.keys.sorted() }

    private static func jsonFiles(under directory: URL) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory.path) else { return [] }
        return enumerator.compactMap { $0 as? String }.filter { $0.hasSuffix(".json") }.sorted()
    }
}
