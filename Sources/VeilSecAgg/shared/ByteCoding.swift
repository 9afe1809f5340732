import VeilCore

/// Reads canonical encodings; every failure is a ``SecAggWireError``.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func u8(_ field: String) throws(SecAggWireError) -> UInt8 {
        try raw(1, field)[0]
    }

    mutating func u32(_ field: String) throws(SecAggWireError) -> UInt32 {
        let b = try raw(4, field)
        return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
    }

    mutating func raw(_ count: Int, _ field: String) throws(SecAggWireError) -> [UInt8] {
        guard count >= 0, remaining >= count else {
            throw .malformed("\(field): needs \(count) bytes, \(remaining) left")
        }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func blob(_ field: String, max: Int = 1 << 30) throws(SecAggWireError) -> [UInt8] {
        let count = Int(try u32(field))
        guard count <= max else { throw .malformed("\(field): length \(count) exceeds \(max)") }
        return try raw(count, field)
    }

    /// A count of items that each take at least `itemBytes`, checked against what is left so
    /// that a hostile count cannot make the reader allocate.
    mutating func count(_ field: String, itemBytes: Int) throws(SecAggWireError) -> Int {
        let count = Int(try u32(field))
        guard count <= remaining / max(itemBytes, 1) else {
            throw .malformed("\(field): \(count) items cannot fit in \(remaining) bytes")
        }
        return count
    }

    func finish(_ what: String) throws(SecAggWireError) {
        guard isAtEnd else { throw .malformed("\(what): \(remaining) trailing bytes") }
    }
}

/// A message that does not parse.
public enum SecAggWireError: Error, Hashable, Sendable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed message: \(why)"
        }
    }
}

/// A set of participants as a bitmap over the roster: bit (i − 1) mod 8 of byte ⌊(i − 1)/8⌋,
/// least significant bit first, for participant i.
struct ParticipantBitmap: Hashable, Sendable {
    let clientCount: Int
    private(set) var bytes: [UInt8]

    init(clientCount: Int, members: some Sequence<ParticipantID> = []) {
        self.clientCount = clientCount
        bytes = [UInt8](repeating: 0, count: (clientCount + 7) / 8)
        for id in members { insert(id) }
    }

    init(clientCount: Int, bytes: [UInt8]) throws(SecAggWireError) {
        guard bytes.count == (clientCount + 7) / 8 else {
            throw .malformed("bitmap of \(bytes.count) bytes for \(clientCount) participants")
        }
        // Bits beyond n must be zero: one encoding per set.
        if clientCount % 8 != 0, let last = bytes.last, last >> UInt8(clientCount % 8) != 0 {
            throw .malformed("bitmap has bits set beyond participant \(clientCount)")
        }
        self.clientCount = clientCount
        self.bytes = bytes
    }

    mutating func insert(_ id: ParticipantID) {
        let i = Int(id.rawValue) - 1
        bytes[i / 8] |= 1 << UInt8(i % 8)
    }

    func contains(_ id: ParticipantID) -> Bool {
        let i = Int(id.rawValue) - 1
        guard i >= 0, i < clientCount else { return false }
        return bytes[i / 8] & (1 << UInt8(i % 8)) != 0
    }

    var members: [ParticipantID] {
        (1...max(clientCount, 1)).compactMap { contains(ParticipantID(UInt32($0))) ? ParticipantID(UInt32($0)) : nil }
    }

    func intersects(_ other: ParticipantBitmap) -> Bool {
        zip(bytes, other.bytes).contains { $0 & $1 != 0 }
    }
}
