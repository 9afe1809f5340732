import Foundation
import VeilCore
import VeilCrypto
import VeilLearning

/// The project's `VEIL-LOCAL-TRAINING` file (`Specs/learning.md` §2): the FedAvg family's client
/// rule run by Veil's trainer from stated rows, parameters, plan, seed and stream, its update
/// w − w_global bit for bit; and the CSV format's reading and refusals. Every double is the 16
/// hex digits of its bit pattern.
enum LocalTrainingRunner: VectorRunner {
    static let algorithm = "VEIL-LOCAL-TRAINING"

    typealias Group = TestGroup<Test>

    /// The reals of a training plan, as bit patterns.
    struct Plan: Codable, Sendable {
        var algorithm: String
        var localEpochs: Int
        var batchSize: Int
        var learningRate: String
        var momentum: String
        var weightDecay: String
        var proximalMu: String
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// "train" or "parseCsv".
        var operation: String
        /// "train": the model, its shape, the broadcast parameters, the rows and labels, the
        /// plan, the generator's seed and the participant id whose SHA-256 gives the stream.
        var model: String?
        var features: Int?
        var classes: Int?
        var parameters: [String]?
        var rows: [[String]]?
        var labels: [Int]?
        var plan: Plan?
        var seed: String?
        var participantId: String?
        var stream: String?
        /// "train": the expected update and example count.
        var delta: [String]?
        var examples: Int?
        /// "parseCsv": the text and the class count given (nil: inferred); `rows`, `labels`,
        /// `features` and `classes` are then what it reads.
        var csv: String?
        var classCount: Int?
    }

    /// A refusal of the CSV reader, by the name of its ``DataError`` case.
    struct Refusal: Error {
        let code: String
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in judge(test) { try check(test) } }
        }
    }

    static func check(_ test: Test) throws {
        switch test.operation {
        case "train":
            let features = try field(test.features, "features")
            let classes = try field(test.classes, "classes")
            let rows = try field(test.rows, "rows").map { try doubles($0, "rows") }
            let data = try Dataset(
                features: rows.flatMap { $0 }, labels: try field(test.labels, "labels"), featureCount: features,
                classCount: classes)
            let model = try makeModel(try field(test.model, "model"), featureCount: features, classCount: classes)
            let parameters = try doubles(try field(test.parameters, "parameters"), "parameters")
            let plan = try field(test.plan, "plan")
            let stream = try decimal(try field(test.stream, "stream"), "stream")
            try expectEqual(streamFor(try field(test.participantId, "participantId")), stream, "stream")
            let (delta, examples) = train(
                model: model, parameters: parameters, data: data, plan: plan,
                optimizer: SGD(
                    learningRate: try double(plan.learningRate, "learningRate"),
                    momentum: try double(plan.momentum, "momentum"),
                    weightDecay: try double(plan.weightDecay, "weightDecay")),
                proximalMu: try double(plan.proximalMu, "proximalMu"),
                seed: try decimal(try field(test.seed, "seed"), "seed"), stream: stream)
            try expectEqual(delta.map(hexBits), try field(test.delta, "delta"), "delta")
            try expectEqual(examples, try field(test.examples, "examples"), "examples")
        case "parseCsv":
            let data: Dataset
            do {
                data = try CSVLoader.parse(try field(test.csv, "csv"), classCount: test.classCount, source: "csv")
            } catch { throw Refusal(code: code(error)) }
            let width = data.featureCount
            try expectEqual(
                (0..<data.count).map { row in data.features[(row * width)..<((row + 1) * width)].map(hexBits) },
                try field(test.rows, "rows"), "rows")
            try expectEqual(data.labels, try field(test.labels, "labels"), "labels")
            try expectEqual(width, try field(test.features, "features"), "features")
            try expectEqual(data.classCount, try field(test.classes, "classes"), "classes")
        default:
            throw VectorError.unreadable("unknown operation \(test.operation)")
        }
    }

    /// The FedAvg family's client rule as the participant runs it (`trainWithVeil` in
    /// VeilService): weight scale n, so p̃ = 1 and the payload's first part is w − w_global.
    static func train(
        model: any Model, parameters: [Double], data: Dataset, plan: Plan, optimizer: SGD, proximalMu: Double,
        seed: UInt64, stream: UInt64
    ) -> (delta: [Double], examples: Int) {
        let algorithm = FedAvgFamily(name: plan.algorithm, initial: parameters, proximalMu: proximalMu)
        var context = ClientContext(
            id: ParticipantID(1), data: data, model: model, epochs: plan.localEpochs, batchSize: plan.batchSize,
            optimizer: optimizer, weightScale: Double(max(data.count, 1)),
            generator: Xoshiro256(seed: seed, stream: stream), state: [:])
        let payload = algorithm.clientUpdate([parameters], &context)
        return (Array(payload.dropLast()), data.count)
    }

    /// The first 8 bytes of SHA-256(UTF-8 id), big-endian: a participant's training stream.
    static func streamFor(_ id: String) -> UInt64 {
        SHA256.hash(Array(id.utf8)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    static func hexBits(_ value: Double) -> String {
        let digits = String(value.bitPattern, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func double(_ text: String, _ name: String) throws -> Double {
        guard text.count == 16, text.allSatisfy({ $0.isHexDigit && !$0.isUppercase }),
            let bits = UInt64(text, radix: 16)
        else {
            throw VectorError.malformedField(tcId: nil, field: name, detail: "\"\(text)\" is not 16 hex digits")
        }
        return Double(bitPattern: bits)
    }

    static func doubles(_ texts: [String], _ name: String) throws -> [Double] {
        try texts.map { try double($0, name) }
    }

    static func field<T>(_ value: T?, _ name: String) throws -> T {
        guard let value else { throw VectorError.malformedField(tcId: nil, field: name, detail: "missing") }
        return value
    }

    static func code(_ error: any Error) -> String {
        guard let error = error as? DataError else { return String(describing: type(of: error)) }
        switch error {
        case .shape: return "shape"
        case .raggedRow: return "raggedRow"
        case .notNumeric: return "notNumeric"
        case .unknownLabel: return "unknownLabel"
        case .empty: return "empty"
        case .unreadable: return "unreadable"
        case .invalidSpecification: return "invalidSpecification"
        }
    }
}
