import Foundation

/// A participant's own data as CSV: one example per line, numeric features, the integer
/// class label in the last column; no header; blank lines ignored.
public enum CSVLoader {
    /// Loads a file.
    /// - Parameters:
    ///   - path: the file.
    ///   - classCount: the model's classes; labels must be in 0..<classCount. Nil: one more than the largest label.
    /// - Throws: ``DataError`` naming the row and column of a ragged row, a non-numeric cell or an unknown label.
    public static func load(path: String, classCount: Int? = nil) throws -> Dataset {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.unreadable("cannot read \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), classCount: classCount, source: path)
    }

    /// Parses CSV text (see ``load(path:classCount:)``).
    public static func parse(_ text: String, classCount: Int?, source: String) throws(DataError) -> Dataset {
        var features: [Double] = []
        var labels: [Int] = []
        var width: Int?
        var rawLabels: [(row: Int, text: String)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let cells = trimmed.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let row = number + 1
            if let width, cells.count != width { throw .raggedRow(row: row, expected: width, actual: cells.count) }
            guard cells.count >= 2 else { throw .raggedRow(row: row, expected: 2, actual: cells.count) }
            width = cells.count
            for (column, cell) in cells.dropLast().enumerated() {
                guard let value = Double(cell), value.isFinite else {
                    throw .notNumeric(row: row, column: column + 1, cell: cell)
                }
                features.append(value)
            }
            // At least two cells, by the guard above.
            rawLabels.append((row, cells.last!))
        }
        guard let width else { throw .empty(source) }
        for (row, text) in rawLabels {
            // Below the widest model a class count may be, so that the class count cannot overflow.
            guard let label = Int(text), label >= 0, label < maxModelWidth else {
                throw .unknownLabel(row: row, label: text, classCount: classCount ?? 0)
            }
            labels.append(label)
        }
        let classes = classCount ?? max(2, (labels.max() ?? 0) + 1)
        if let bad = labels.firstIndex(where: { $0 >= classes }) {
            throw .unknownLabel(row: rawLabels[bad].row, label: String(labels[bad]), classCount: classes)
        }
        return try Dataset(features: features, labels: labels, featureCount: width - 1, classCount: classes)
    }

    /// The rows as the text ``parse(_:classCount:source:)`` reads back exactly: the features
    /// (each in its shortest round-trip form), then the label, one row per line.
    public static func text(of data: Dataset) -> String {
        var out = ""
        for row in 0..<data.count {
            let features = data.features[(row * data.featureCount)..<((row + 1) * data.featureCount)]
            out += features.map { "\($0)" }.joined(separator: ",") + ",\(data.labels[row])\n"
        }
        return out
    }
}
