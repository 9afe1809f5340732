import Foundation

/// Why a configuration file was refused.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

func decodeFile<T: Decodable>(_ path: String) throws -> T {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ConfigurationError("cannot read the configuration file \(path)")
    }
    try ConfigurationKeys.check(Array(data))
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do { return try decoder.decode(T.self, from: data) } catch let error as DecodingError {
        throw ConfigurationError("\(path): \(describe(error))")
    }
}

func describe(_ error: DecodingError) -> String {
    // The file's spelling (snake_case), not the decoder's.
    func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map { $0.intValue.map(String.init) ?? snakeCase($0.stringValue) }.joined(separator: ".")
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "missing key \(path(context).isEmpty ? "" : path(context) + ".")\(snakeCase(key.stringValue))"
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "wrong type at \(path(context)): \(context.debugDescription)"
    case .dataCorrupted(let context): return "invalid \(path(context)): \(context.debugDescription)"
    @unknown default: return "\(error)"
    }
}

extension KeyedDecodingContainer {
    /// Decodes `key` into `value` when the file has it; otherwise `value` keeps its default.
    func take<T: Decodable>(_ key: Key, _ value: inout T) throws {
        if let v = try decodeIfPresent(T.self, forKey: key) { value = v }
    }

    /// As `take`, for a value from a closed set of names: a name outside it is refused with
    /// the names allowed and the closest one.
    func take<T: ConfigurationName>(_ key: Key, _ value: inout T) throws {
        if let v = try name(T.self, forKey: key) { value = v }
    }

    /// A value from a closed set of names, or nil when the key is absent or null.
    func name<T: ConfigurationName>(_: T.Type, forKey key: Key) throws -> T? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        if let value = T(rawValue: text) { return value }
        let allowed = T.allCases.map(\.rawValue)
        let path = (codingPath + [key]).map { snakeCase($0.stringValue) }.joined(separator: ".")
        throw ConfigurationError(
            "\(path): \"\(text)\" is not one of \(allowed.joined(separator: ", "))\(suggestion(text, among: allowed))")
    }
}

/// A configuration value that is one of a fixed set of names (`secure_sum`, `algorithm`, …).
protocol ConfigurationName: RawRepresentable, CaseIterable, Decodable where RawValue == String {}

/// Any key of a JSON object.
private struct AnyKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Refuses an object with a key its type does not know, naming the key as the file spells it
/// and the known key closest to it: a typo must not silently drop a setting (`"privcy"` would
/// otherwise run a federation without differential privacy).
func refuseUnknownKeys<Keys: CodingKey & CaseIterable>(_ decoder: any Decoder, _: Keys.Type, in section: String) throws
{
    let known = Keys.allCases.map(\.stringValue)
    let container = try decoder.container(keyedBy: AnyKey.self)
    if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
        throw ConfigurationError(
            "\(section): unknown key \"\(snakeCase(unknown))\"\(suggestion(snakeCase(unknown), among: known.map(snakeCase)))"
        )
    }
}

/// The file's spelling of a key (the decoder converts snake_case to camelCase).
func snakeCase(_ key: String) -> String {
    key.reduce(into: "") { out, c in
        if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
    }
}

/// "; did you mean X?" for the candidate nearest `text` in edit distance, when it is near
/// enough to be a typo (at most a third of the longer spelling); otherwise nothing.
func suggestion(_ text: String, among candidates: [String]) -> String {
    let scored = candidates.map { ($0, editDistance(text.lowercased(), $0.lowercased())) }
    guard let (best, distance) = scored.min(by: { $0.1 < $1.1 }),
        distance <= max(2, max(text.count, best.count) / 3)
    else { return "" }
    return "; did you mean \"\(best)\"?"
}

/// Levenshtein distance (insertions, deletions, substitutions).
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

extension URL {
    /// `path` as written when absolute, else relative to this folder (a configuration file's:
    /// relative paths in a configuration are relative to the file).
    func resolving(_ path: String) -> String {
        path.hasPrefix("/") ? path : appendingPathComponent(path).path
    }
}
