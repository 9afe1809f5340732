/// Lower-case hexadecimal, as used by every file under `Vectors/`.
public enum Hex {
    /// Encodes bytes as lower-case hexadecimal.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hexadecimal (either case); the empty string is zero bytes.
    /// - Throws: ``HexError`` on an odd length or a character that is not a hex digit.
    public static func decode(_ text: String) throws(HexError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { throw .oddLength(utf8.count) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]) else { throw .invalidCharacter(offset: index) }
            guard let low = nibble(utf8[index + 1]) else { throw .invalidCharacter(offset: index + 1) }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A malformed hexadecimal string.
public enum HexError: Error, Hashable, Sendable, CustomStringConvertible {
    case oddLength(Int)
    case invalidCharacter(offset: Int)

    public var description: String {
        switch self {
        case .oddLength(let n): "hex string has an odd number of digits (\(n))"
        case .invalidCharacter(let offset): "hex string has a non-hex character at offset \(offset)"
        }
    }
}
