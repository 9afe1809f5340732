import Foundation

/// The one shape of every file under `Vectors/`, Wycheproof's:
/// `{algorithm, numberOfTests, header, notes, testGroups: [{…, tests: [{tcId, comment, flags, result, …}]}]}`.
///
/// `Group` carries a family's group-level fields and its tests; published Wycheproof files
/// decode unchanged (unknown fields are ignored).
public struct VectorFile<Group: Codable & Sendable>: Codable, Sendable {
    public var algorithm: String
    public var schema: String?
    public var generatorVersion: String?
    public var numberOfTests: Int
    public var header: [String]?
    public var notes: [String: VectorNote]?
    public var testGroups: [Group]

    public init(
        algorithm: String, generatorVersion: String, header: [String], notes: [String: VectorNote], testGroups: [Group],
        numberOfTests: Int
    ) {
        self.algorithm = algorithm
        self.schema = nil
        self.generatorVersion = generatorVersion
        self.header = header
        self.notes = notes
        self.testGroups = testGroups
        self.numberOfTests = numberOfTests
    }

    /// Decodes a file.
    /// - Throws: ``VectorError/unreadable(_:)`` with the decoder's explanation.
    public static func decode(_ data: Data) throws(VectorError) -> VectorFile {
        do {
            return try JSONDecoder().decode(VectorFile.self, from: data)
        } catch {
            throw .unreadable(String(describing: error))
        }
    }

    /// The canonical encoding of project-generated files: sorted keys, two-space indent.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        return data
    }
}

/// A test group with no fields of its own.
public struct TestGroup<Test: VectorCase>: Codable, Sendable {
    public var tests: [Test]

    public init(tests: [Test]) { self.tests = tests }
}

/// What a flag in `notes` means.
public struct VectorNote: Codable, Hashable, Sendable {
    public var bugType: String?
    public var description: String
    public var effect: String?

    public init(bugType: String, description: String) {
        self.bugType = bugType
        self.description = description
        self.effect = nil
    }
}

/// The expected outcome of a test, as Wycheproof defines it.
public enum ExpectedResult: String, Codable, Sendable {
    /// The operation must succeed with the listed output.
    case valid
    /// The operation must fail (reject the input, or at least not produce the listed output).
    case invalid
    /// Either: a correct implementation may accept (with the listed output) or reject.
    case acceptable
}

/// The fields every test case has.
public protocol VectorCase: Codable, Sendable {
    var tcId: Int { get }
    var comment: String { get }
    var flags: [String] { get }
    var result: ExpectedResult { get }
    /// For project invalid cases: the code of the error the implementation must raise.
    var error: String? { get }
}

extension VectorCase {
    public var error: String? { nil }
}

/// The top-level fields, read first to pick the runner.
struct VectorFileHeader: Decodable {
    var algorithm: String
    var numberOfTests: Int
}

/// Why a vector file could not be checked at all.
public enum VectorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file is not JSON of the expected shape.
    case unreadable(String)
    /// No runner knows the file's algorithm.
    case unknownAlgorithm(String)
    /// `numberOfTests` disagrees with the tests present.
    case countMismatch(declared: Int, actual: Int)
    /// A field of a test case (or of its group) is missing or cannot be read as what it
    /// holds. `tcId` is nil only until ``judge(_:_:)`` names the case.
    case malformedField(tcId: Int?, field: String, detail: String)

    public var description: String {
        switch self {
        case .unreadable(let why): "cannot parse: \(why)"
        case .unknownAlgorithm(let name): "no runner for algorithm \"\(name)\""
        case .countMismatch(let declared, let actual): "numberOfTests is \(declared) but the file has \(actual) tests"
        case .malformedField(let tcId, let field, let detail):
            "\(tcId.map { "test case \($0)" } ?? "a test case"), field \(field): \(detail)"
        }
    }
}
