import Foundation

/// A trained model as a file: its specification, shape and parameters, in JSON. `veil simulate
/// --export` writes one; `veil model export --checkpoint` reads it. Parameters are binary64 in
/// the model's own layout (``SoftmaxRegression``, ``MultilayerPerceptron``), written with the
/// shortest decimal that reads back to the same value, so a checkpoint loses nothing.
public struct ModelCheckpoint: Codable, Hashable, Sendable {
    /// The only format this version reads and writes.
    public static let currentFormat = "veil-checkpoint-1"

    public let format: String
    /// `softmax` or `mlp:H1,H2,…`, as ``makeModel(_:featureCount:classCount:)`` reads it.
    public let model: String
    public let features: Int
    public let classes: Int
    /// The round whose model this is (0 when unknown or untrained).
    public let round: Int
    public let parameters: [Double]

    /// Checks that the parameters fit the model.
    public init(model: String, features: Int, classes: Int, round: Int, parameters: [Double]) throws(DataError) {
        format = Self.currentFormat
        self.model = model
        self.features = features
        self.classes = classes
        self.round = round
        self.parameters = parameters
        try validate()
    }

    /// The model the checkpoint's parameters belong to.
    public func makeModel() throws(DataError) -> any Model {
        try VeilLearning.makeModel(model, featureCount: features, classCount: classes)
    }

    private func validate() throws(DataError) {
        guard format == Self.currentFormat else {
            throw .invalidSpecification("checkpoint format \"\(format)\" is not \(Self.currentFormat)")
        }
        guard features > 0, classes >= 2 else {
            throw .invalidSpecification(
                "a checkpoint needs features ≥ 1 and classes ≥ 2, got \(features) and \(classes)")
        }
        guard round >= 0 else { throw .invalidSpecification("checkpoint round \(round) is negative") }
        let expected = try makeModel().parameterCount
        guard parameters.count == expected else {
            throw .invalidSpecification(
                "the checkpoint's \(model) on \(features) features and \(classes) classes has \(expected) parameters, the file \(parameters.count)"
            )
        }
        guard parameters.allSatisfy(\.isFinite) else {
            throw .invalidSpecification("the checkpoint holds a parameter that is not finite")
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        // Exactly §1's keys: an unknown one is refused by name.
        let keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        if let unknown = keys.first(where: { CodingKeys(stringValue: $0) == nil }) {
            throw DataError.invalidSpecification("unknown checkpoint key \"\(unknown)\"")
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        format = try container.decode(String.self, forKey: .format)
        model = try container.decode(String.self, forKey: .model)
        features = try container.decode(Int.self, forKey: .features)
        classes = try container.decode(Int.self, forKey: .classes)
        round = try container.decode(Int.self, forKey: .round)
        parameters = try container.decode([Double].self, forKey: .parameters)
        try validate()
    }

    /// Reads a checkpoint file.
    public static func load(path: String) throws(DataError) -> ModelCheckpoint {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable("cannot read the checkpoint \(path)")
        }
        do {
            return try JSONDecoder().decode(ModelCheckpoint.self, from: data)
        } catch let error as DataError {
            throw .invalidSpecification("\(path): \(error.description)")
        } catch {
            throw .invalidSpecification("\(path) is not a Veil checkpoint (\(error))")
        }
    }

    /// Writes the checkpoint as JSON (keys sorted).
    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}
