import VeilCore

/// Labelled examples: a row-major matrix of features and one class label per row.
public struct Dataset: Sendable {
    /// The features, row after row (`count × featureCount`).
    public private(set) var features: [Double]
    /// The class of each row, in 0..<classCount.
    public private(set) var labels: [Int]
    public let featureCount: Int
    public let classCount: Int

    /// Wraps features and labels.
    /// - Throws: ``DataError`` when the shapes disagree or a label is outside 0..<classCount.
    public init(features: [Double], labels: [Int], featureCount: Int, classCount: Int) throws(DataError) {
        guard featureCount > 0, classCount > 1 else { throw .shape("need at least one feature and two classes") }
        guard features.count == labels.count * featureCount else {
            throw .shape("\(features.count) feature values for \(labels.count) rows of \(featureCount)")
        }
        if let bad = labels.firstIndex(where: { !(0..<classCount).contains($0) }) {
            throw .unknownLabel(row: bad + 1, label: String(labels[bad]), classCount: classCount)
        }
        self.features = features
        self.labels = labels
        self.featureCount = featureCount
        self.classCount = classCount
    }

    /// The number of rows.
    public var count: Int { labels.count }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: [Int]) -> Dataset {
        var f: [Double] = []
        f.reserveCapacity(indices.count * featureCount)
        for i in indices { f.append(contentsOf: features[(i * featureCount)..<((i + 1) * featureCount)]) }
        // Rows of a valid dataset make a valid dataset.
        return try! Dataset(
            features: f, labels: indices.map { labels[$0] }, featureCount: featureCount, classCount: classCount)
    }

    /// This dataset followed by `other` (same shape).
    public func appending(_ other: Dataset) -> Dataset {
        precondition(
            other.featureCount == featureCount && other.classCount == classCount, "datasets of different shapes")
        return try! Dataset(  // both valid, same shape
            features: features + other.features, labels: labels + other.labels, featureCount: featureCount,
            classCount: classCount)
    }

    /// Every feature multiplied by `factor` (digits are divided by 16).
    public func scaled(by factor: Double) -> Dataset {
        var copy = self
        copy.features = features.map { $0 * factor }
        return copy
    }

    /// Row indices by class.
    public var rowsByClass: [[Int]] {
        var rows = [[Int]](repeating: [], count: classCount)
        for (i, label) in labels.enumerated() { rows[label].append(i) }
        return rows
    }

    /// A stratified split: within each class, a shuffled `testFraction` of the rows (rounded
    /// to the nearest integer) goes to the test set.
    public func stratifiedSplit(testFraction: Double, using generator: inout some RandomNumberGenerator) -> (
        train: Dataset, test: Dataset
    ) {
        var train: [Int] = []
        var test: [Int] = []
        for var rows in rowsByClass {
            generator.shuffle(&rows)
            let testCount = Int((Double(rows.count) * testFraction).rounded())
            test += rows.prefix(testCount)
            train += rows.dropFirst(testCount)
        }
        return (subset(train.sorted()), subset(test.sorted()))
    }
}

/// Why data could not be loaded or used.
public enum DataError: Error, Hashable, Sendable, CustomStringConvertible {
    case shape(String)
    case raggedRow(row: Int, expected: Int, actual: Int)
    case notNumeric(row: Int, column: Int, cell: String)
    case unknownLabel(row: Int, label: String, classCount: Int)
    case empty(String)
    case unreadable(String)
    case invalidSpecification(String)

    public var description: String {
        switch self {
        case .shape(let why): "data shape: \(why)"
        case .raggedRow(let row, let expected, let actual): "row \(row) has \(actual) columns, expected \(expected)"
        case .notNumeric(let row, let column, let cell): "row \(row), column \(column): \"\(cell)\" is not a number"
        case .unknownLabel(let row, let label, let classCount):
            "row \(row): label \(label) is not a class (labels are integers 0...\(classCount - 1))"
        case .empty(let what): "\(what) holds no rows"
        case .unreadable(let why): why
        case .invalidSpecification(let why): why
        }
    }
}
