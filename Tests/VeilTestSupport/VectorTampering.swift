import Foundation

/// Alters vector files the way an implementation bug or a transcription error would.
public enum VectorTampering {
    /// The fields that hold an expected output, in the order they are tried.
    static let outputFields = [
        "shared", "sig", "ct", "okm", "digest", "outputs", "elements", "shares", "encoded", "sum", "c",
        "indices",
    ]

    /// Changes one digit of the first expected-output field of test `tcId` in the file at `url`.
    public static func alterExpectedValue(in url: URL, tcId: Int) throws {
        var root = try require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var groups = try require(root["testGroups"] as? [[String: Any]])
        for g in groups.indices {
            var tests = try require(groups[g]["tests"] as? [[String: Any]])
            guard let t = tests.firstIndex(where: { $0["tcId"] as? Int == tcId }) else { continue }
            guard let field = outputFields.first(where: { tests[t][$0] != nil }) else {
                throw CocoaError(
                    .coderValueNotFound, userInfo: [NSDebugDescriptionErrorKey: "tcId \(tcId) has no output"])
            }
            tests[t][field] = try altered(tests[t][field]!)
            groups[g]["tests"] = tests
            root["testGroups"] = groups
            try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys]).write(to: url)
            return
        }
        throw CocoaError(.coderValueNotFound, userInfo: [NSDebugDescriptionErrorKey: "tcId \(tcId) not found"])
    }

    /// A string with its first hex or decimal digit changed, a number plus one, or an array with
    /// its first element altered.
    static func altered(_ value: Any) throws -> Any {
        if var array = value as? [Any], !array.isEmpty {
            array[0] = try altered(array[0])
            return array
        }
        if let number = value as? Int { return number + 1 }
        guard let text = value as? String, let index = text.firstIndex(where: \.isHexDigit) else {
            throw CocoaError(
                .coderInvalidValue, userInfo: [NSDebugDescriptionErrorKey: "no digit to alter in \(value)"])
        }
        var result = text
        result.replaceSubrange(index...index, with: text[index] == "1" ? "2" : "1")
        return result
    }
}

/// `#require` for helpers outside a test: throws instead of recording an issue.
private func require<T>(_ value: T?) throws -> T {
    guard let value else { throw CocoaError(.coderValueNotFound) }
    return value
}
