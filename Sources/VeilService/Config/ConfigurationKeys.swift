import Foundation

/// The spelling rules for configuration keys, checked on the file's bytes before decoding.
///
/// `JSONDecoder` cannot enforce them: its snake-case conversion also accepts the camelCase
/// spelling (`"learningRate"` and `"learning__rate"` decode as `learning_rate`), and a key
/// written twice silently keeps its last value — so a file could say `"epsilon": 1` at the top
/// and `"epsilon": 50` further down, and a reviewer reading the first would be misled. Every
/// key must therefore be snake_case (`[a-z][a-z0-9]*` words joined by single underscores) and
/// appear at most once in its object.
///
/// A file the scanner cannot follow is refused too (with the byte where it stopped), never
/// passed on unchecked: the decoder also reads a byte-order mark or UTF-16, which the scanner
/// would otherwise skip over, keys and all.
///
/// Audit files (exports, journals, the key holder's record) are *strict JSON*
/// (`Specs/audit.md` §4): keys of any spelling, but compared after their escapes are decoded,
/// and every number an integer of at most 19 digits without fraction or exponent — so that
/// no two JSON readers can see different contents in one file.
struct ConfigurationKeys {
    enum Rules {
        /// Configuration files: snake_case keys, any JSON number.
        case configuration
        /// Audit files: unique keys of any spelling, integers only.
        case audit
    }

    private let bytes: [UInt8]
    private var index = 0
    /// The object keys leading to the current position, for the error message.
    private var path: [String] = []
    private var rules = Rules.configuration
    /// Nesting deeper than this is refused (the decoder's own limit), before the recursion
    /// could exhaust the stack.
    static let maxDepth = 512

    /// Checks every object key in `data`.
    /// - Throws: ``ConfigurationError`` naming the first key that is not snake_case or is
    ///   repeated, or the byte where the file stops being plain UTF-8 JSON.
    static func check(_ data: [UInt8], rules: Rules = .configuration) throws {
        guard String(validating: data, as: UTF8.self) != nil else { throw ConfigurationError("not UTF-8") }
        var scanner = ConfigurationKeys(bytes: data)
        scanner.rules = rules
        let complete = try scanner.value()
        scanner.skipSpace()
        guard complete, scanner.index == data.count else {
            throw ConfigurationError(
                "not plain UTF-8 JSON at byte \(min(scanner.index, data.count)) (one object; no byte-order mark, UTF-16 or comments)"
            )
        }
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    /// Scans one value; false when the input is not JSON (the decoder will say where).
    private mutating func value() throws -> Bool {
        guard path.count < Self.maxDepth else {
            throw ConfigurationError("the JSON nests deeper than \(Self.maxDepth) levels")
        }
        skipSpace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return try string() != nil
        default:
            // Numbers, true, false, null: their characters only (the decoder checks the
            // spelling); anything else — a byte-order mark, a UTF-16 NUL — stops the scan.
            let start = index
            while index < bytes.count, Self.scalar.contains(bytes[index]) { index += 1 }
            if rules == .audit { try Self.checkInteger(bytes[start..<index], at: path) }
            return index > start
        }
    }

    private mutating func object() throws -> Bool {
        index += 1
        var seen: Set<String> = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return true
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let raw = try string() else { return false }
            // Compared as a reader sees them: `"r\u0065cord"` is `record`.
            let key = rules == .audit ? Self.decoded(raw) ?? raw : raw
            let location = (path + [key]).joined(separator: ".")
            guard rules == .audit || Self.isSnakeCase(key) else {
                throw ConfigurationError(
                    "unknown key \"\(location)\": keys are snake_case\(Self.snakeCaseSuggestion(key))")
            }
            guard seen.insert(key).inserted else {
                throw ConfigurationError("the key \"\(location)\" appears twice; give each setting once")
            }
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            index += 1
            guard let closed = try entry(key, closer: UInt8(ascii: "}")) else { return false }
            if closed { return true }
        }
    }

    private mutating func array() throws -> Bool {
        index += 1
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return true
        }
        var element = 0
        while true {
            guard let closed = try entry(String(element), closer: UInt8(ascii: "]")) else { return false }
            if closed { return true }
            element += 1
        }
    }

    /// One member's value (or one element), named `name` in the path, and what follows it:
    /// true when `closer` ends the container, false after a comma, nil when it is not JSON.
    private mutating func entry(_ name: String, closer: UInt8) throws -> Bool? {
        path.append(name)
        let scanned = try value()
        path.removeLast()
        guard scanned else { return nil }
        skipSpace()
        guard index < bytes.count else { return nil }
        index += 1
        if bytes[index - 1] == closer { return true }
        return bytes[index - 1] == UInt8(ascii: ",") ? false : nil
    }

    /// A string's raw text between its quotes (escapes left as written: a key with an escape
    /// is not snake_case anyway), or nil when it is unterminated.
    /// - Throws: for a raw control character in it, which JSON forbids and some readers take.
    private mutating func string() throws -> String? {
        index += 1
        let start = index
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
            guard bytes[index] >= 0x20 else {
                throw ConfigurationError("a raw control character inside a string, at byte \(index)")
            }
            if bytes[index] == UInt8(ascii: "\\"), let unit = escapedUnit(at: index) {
                // A surrogate escape must be a high one followed by a low one: a lone one is
                // refused by some readers and replaced by others.
                if (0xD800...0xDBFF).contains(unit), let low = escapedUnit(at: index + 6),
                    (0xDC00...0xDFFF).contains(low)
                {
                    index += 12
                    continue
                }
                guard !(0xD800...0xDFFF).contains(unit) else {
                    throw ConfigurationError("a string escapes a lone surrogate, at byte \(index)")
                }
            }
            index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
        }
        guard index < bytes.count else { return nil }
        defer { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// The UTF-16 unit of a `\uXXXX` escape starting at `position`, if there is one.
    private func escapedUnit(at position: Int) -> UInt16? {
        guard position + 6 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
            bytes[position + 1] == UInt8(ascii: "u")
        else { return nil }
        return UInt16(String(decoding: bytes[(position + 2)..<(position + 6)], as: UTF8.self), radix: 16)
    }

    /// A key's text with its escapes decoded, as a JSON reader sees it; nil when it is not a
    /// valid JSON string (the decoder then refuses the file).
    private static func decoded(_ raw: String) -> String? {
        guard raw.contains("\\") else { return raw }
        return try? JSONDecoder().decode(String.self, from: Data("\"\(raw)\"".utf8))
    }

    /// Audit files: a number must be an integer — an optional minus, then 0 or a digit 1–9
    /// followed by digits, at most 19 — so that `1.0`, `1e0` and `01` cannot be read as 1 by
    /// one reader and refused by another. `true`, `false` and `null` pass.
    private static func checkInteger(_ token: ArraySlice<UInt8>, at path: [String]) throws {
        let text = String(decoding: token, as: UTF8.self)
        guard !["true", "false", "null"].contains(text) else { return }
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.count <= 19, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            digits == "0" || !digits.hasPrefix("0")
        else {
            throw ConfigurationError(
                "\"\(path.joined(separator: "."))\": \(text.prefix(24)) is not an integer of at most 19 digits")
        }
    }

    fileprivate mutating func skipSpace() {
        while index < bytes.count, Self.space.contains(bytes[index]) { index += 1 }
    }

    private static let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
    private static let scalar = Set("0123456789+-.eEtrufalsn".utf8)

    /// `[a-z][a-z0-9]*` words joined by single underscores.
    static func isSnakeCase(_ key: String) -> Bool {
        let words = key.split(separator: "_", omittingEmptySubsequences: false)
        return words.allSatisfy { word in
            guard let first = word.first, first.isASCII, first.isLowercase else { return false }
            return word.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) }
        }
    }

    /// "; did you mean …?" with the snake_case spelling of a camelCase or mis-underscored key.
    private static func snakeCaseSuggestion(_ key: String) -> String {
        let words = snakeCase(key).lowercased().split(separator: "_").filter { !$0.isEmpty }
        let candidate = words.joined(separator: "_")
        return isSnakeCase(candidate) && candidate != key ? "; did you mean \"\(candidate)\"?" : ""
    }
}
