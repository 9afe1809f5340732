import Foundation
import Glibc
import VeilCore

/// The ciphertext files of `veil paillier` (`Specs/paillier.md` §8.1), in one of two formats:
///
/// - **decimal**: one decimal ciphertext per line, nothing else — python-paillier's
///   `ciphertext()` values, for interoperability;
/// - **veil**: a one-line JSON header naming the key (its fingerprint), the count, how many
///   vectors were summed into the file, and the packing if any (and Damgård–Jurik's s when it
///   is not 1); then one ciphertext per line, standard padded base64 of its fixed-width
///   big-endian bytes (⌈(s + 1)·|n|/8⌉ of them).
///
/// Reading splits lines on bytes and decodes them on every core: a decimal file of 10,000
/// 2048-bit ciphertexts is 12 MB, and splitting it as Swift `String`s cost most of `add`.
public struct PaillierCiphertextFile: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case decimal, veil
    }

    /// Signed values packed several to a ciphertext: `values` of them, each a signed
    /// `valueBits`-bit integer, with headroom for the sum of `addends` files.
    public struct Packing: Hashable, Sendable {
        public let valueBits: Int
        public let addends: Int
        public let values: Int

        /// The residues are taken modulo 2^w, w = valueBits + ⌈log₂ addends⌉, wide enough for the
        /// signed sum of `addends` values; the slots add ⌈log₂ addends⌉ more (§5).
        public let layout: PaillierPacking

        public init(valueBits: Int, addends: Int, values: Int, keyBits: Int, degree: Int = 1) throws(PaillierError) {
            guard (2...62).contains(valueBits) else {
                throw .invalidPacking("value bits must be in 2...62, got \(valueBits)")
            }
            guard addends >= 1, addends <= 1 << 20 else {
                throw .invalidPacking("addends must be in 1...\(1 << 20), got \(addends)")
            }
            guard values >= 0 else { throw .invalidPacking("a negative count of values") }
            let headroom = Int.bitWidth - (addends - 1).leadingZeroBitCount
            guard valueBits + headroom <= 64 else {
                throw .invalidPacking("\(valueBits)-bit values summed \(addends) times exceed 64 bits")
            }
            self.valueBits = valueBits
            self.addends = addends
            self.values = values
            layout = try PaillierPacking(
                bitWidth: try! BitWidth(valueBits + headroom),  // 3...64 by the guards
                maxAddends: addends, keyBits: keyBits, degree: degree)
        }

        /// The residues mod 2^w of signed values; a value outside the signed range is refused by index.
        public func residues(_ values: [Int64]) throws(PaillierError) -> ModularVector {
            let bound = Int64(1) << Int64(valueBits - 1)
            var elements: [UInt64] = []
            elements.reserveCapacity(values.count)
            for (index, value) in values.enumerated() {
                guard value >= -bound, value < bound else {
                    throw .invalidPacking("value \(index + 1) (\(value)) is not a signed \(valueBits)-bit integer")
                }
                elements.append(UInt64(bitPattern: value) & layout.bitWidth.mask)
            }
            return try! ModularVector(elements: elements, bitWidth: layout.bitWidth)  // reduced above
        }

        /// The signed sums from the summed residues mod 2^w.
        public func signed(_ sum: ModularVector) -> [Int64] {
            // Sign extension from bit w − 1: shift the residue's top bit into bit 63, then back
            // arithmetically (no 2^w is formed, which overflows Int64 at w = 63).
            let spare = UInt64(64 - layout.bitWidth.bits)
            return sum.elements.map { x in Int64(bitPattern: x << spare) >> spare }
        }
    }

    public let format: Format
    public let ciphertexts: [PaillierCiphertext]
    /// How many encrypted vectors were multiplied into these ciphertexts (1 for a fresh file).
    public let summed: Int
    /// Veil format only.
    public let packing: Packing?

    public init(format: Format, ciphertexts: [PaillierCiphertext], summed: Int = 1, packing: Packing? = nil) {
        self.format = format
        self.ciphertexts = ciphertexts
        self.summed = summed
        self.packing = packing
    }

    static let formatName = "veil-paillier-ciphertexts/1"

    static func decimalIsPaillier(_ s: Int) -> String {
        "a decimal file holds Paillier ciphertexts (s = 1); Damgård–Jurik s = \(s) needs the veil format, whose header records s"
    }
    /// The most files a sum may record (A ≤ 2^20, §8.1).
    public static let maxSummed = 1 << 20

    /// Why a file was refused, and where: line 1 is the header of a veil file.
    public struct DecodingError: Error, Hashable, Sendable, CustomStringConvertible {
        public let line: Int
        public let reason: PaillierError
        public var description: String { "line \(line): \(reason)" }
    }

    // MARK: - Writing

    /// The file's bytes. Decimal files carry neither packing nor a count of addends: ask for
    /// the veil format to keep them.
    public func encoded(key: PaillierPublicKey) throws(PaillierError) -> Data {
        let lines: [String]
        switch format {
        case .decimal:
            guard packing == nil else { throw .invalidPacking("packed ciphertexts need the veil format") }
            guard key.s == 1 else { throw .malformed(Self.decimalIsPaillier(key.s)) }
            lines = try ciphertexts.parallelMapTyped { $0.decimal }
        case .veil:
            let width = key.ciphertextByteCount
            lines = try ciphertexts.parallelMapTyped { c in
                Data(try! c.value.bigEndianBytes(width: width)).base64EncodedString()  // c < n² fits
            }
        }
        var out = Data()
        out.reserveCapacity(lines.reduce(0) { $0 + $1.utf8.count + 1 } + 256)
        if format == .veil { out.append(contentsOf: Array(header(key: key).utf8)) }
        for line in lines {
            out.append(contentsOf: Array(line.utf8))
            out.append(0x0A)
        }
        return out
    }

    /// The header line, its keys in this order, no spaces.
    func header(key: PaillierPublicKey) -> String {
        Self.headerLine(key: key, count: ciphertexts.count, summed: summed, packing: packing) + "\n"
    }

    /// The one way a header is written, and so the only one a reader accepts (§8.1).
    static func headerLine(key: PaillierPublicKey, count: Int, summed: Int, packing: Packing?) -> String {
        var text = #"{"format":"\#(formatName)","key":"\#(PaillierKeyStatement.fingerprint(key))","#
        if key.s > 1 { text += #""damgard_jurik":\#(key.s),"# }
        text += #""count":\#(count),"summed":\#(summed)"#
        if let packing {
            text +=
                #","packing":{"value_bits":\#(packing.valueBits),"addends":\#(packing.addends),"values":\#(packing.values)}"#
        }
        return text + "}"
    }

    // MARK: - Reading

    /// Reads a file in either format (a first byte `{` means the veil format), checking every
    /// ciphertext against `key` (in Z*_(n²)) and the header against the key and itself. Errors
    /// name the line.
    ///
    /// `checkingUnits: false` leaves out the test of coprimality with n (the range is still
    /// checked), for a caller that tests what it computes from the file instead: `add` tests
    /// the sums, which are units exactly when all their factors are, and rereads the inputs
    /// with the test only to name a bad line.
    public static func decode(_ data: Data, key: PaillierPublicKey, checkingUnits: Bool = true) throws(DecodingError)
        -> PaillierCiphertextFile
    {
        let bytes = [UInt8](data)
        var lines = lineRanges(bytes)
        guard let first = lines.first, first.lowerBound < bytes.count, bytes[first.lowerBound] == UInt8(ascii: "{")
        else {
            // A decimal file names no s, and every Paillier ciphertext is below n^(s+1): read
            // under s > 1 it would decrypt to a wrong number (review, helper-20).
            guard key.s == 1 else { throw DecodingError(line: 1, reason: .malformed(decimalIsPaillier(key.s))) }
            let values = try decodeLines(bytes, lines, key: key, checkingUnits: checkingUnits) {
                text throws(PaillierError) in
                guard let value = BigInt(decimalDigits: text) else { throw .malformed("not a decimal integer") }
                return value
            }
            return PaillierCiphertextFile(format: .decimal, ciphertexts: values)
        }
        lines.removeFirst()
        let header: Header
        do { header = try Header(Data(bytes[first]), key: key) } catch { throw DecodingError(line: 1, reason: error) }
        let width = key.ciphertextByteCount
        let values = try decodeLines(bytes, lines, key: key, checkingUnits: checkingUnits) {
            text throws(PaillierError) in
            guard let raw = Data(base64Encoded: Data(text)), raw.count == width,
                raw.base64EncodedString().utf8.elementsEqual(text)
            else { throw .malformed("not the canonical base64 of \(width) bytes") }
            return BigInt(bigEndian: raw)
        }
        guard values.count == header.count else {
            throw DecodingError(
                line: 1,
                reason: .malformed("the header says \(header.count) ciphertexts, the file holds \(values.count)"))
        }
        if let packing = header.packing, packing.layout.plaintextCount(dimension: packing.values) != header.count {
            let needed = packing.layout.plaintextCount(dimension: packing.values)
            throw DecodingError(
                line: 1,
                reason: .malformed("\(packing.values) packed values take \(needed) ciphertexts, not \(header.count)"))
        }
        return PaillierCiphertextFile(
            format: .veil, ciphertexts: values, summed: header.summed, packing: header.packing)
    }

    /// The ranges of the non-empty lines (a final newline, `\r\n` and trailing spaces allowed).
    public static func lineRanges(_ bytes: [UInt8]) -> [Range<Int>] {
        bytes.withUnsafeBufferPointer(lineRanges)
    }

    /// The ranges of the non-empty lines of a buffer (a mapped file).
    public static func lineRanges(_ buffer: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        while start <= buffer.count {
            // memchr finds the newline a word (or a vector) at a time: 2,468 bytes a line.
            var index = buffer.count
            if start < buffer.count, let found = memchr(buffer.baseAddress! + start, 0x0A, buffer.count - start) {
                index = buffer.baseAddress!.distance(to: found.assumingMemoryBound(to: UInt8.self))
            }
            var end = index
            while end > start, buffer[end - 1] == 0x0D || buffer[end - 1] == 0x20 { end -= 1 }
            if end > start { ranges.append(start..<end) }
            start = index + 1
        }
        return ranges
    }

    /// Decodes every line on every core and checks that each value is a ciphertext of `key`
    /// (in Z*_(n²), §2); the first failure is thrown with its line number.
    static func decodeLines(
        _ bytes: [UInt8], _ lines: [Range<Int>], key: PaillierPublicKey, checkingUnits: Bool,
        _ decode: @Sendable (ArraySlice<UInt8>) throws(PaillierError) -> BigInt
    ) throws(DecodingError) -> [PaillierCiphertext] {
        func lineNumber(_ index: Int) -> Int {
            bytes[..<lines[index].lowerBound].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
        }
        let results = lines.parallelMapResults { range in
            Result { () throws(PaillierError) in
                let value = try decode(bytes[range])
                guard key.isInCiphertextRange(value) else { throw .ciphertextOutOfRange }
                return value
            }
        }
        var values: [BigInt] = []
        values.reserveCapacity(results.count)
        for (index, result) in results.enumerated() {
            switch result {
            case .success(let value): values.append(value)
            case .failure(let error): throw DecodingError(line: lineNumber(index), reason: error)
            }
        }
        if checkingUnits, let index = key.firstNonUnit(values) {
            throw DecodingError(line: lineNumber(index), reason: .ciphertextOutOfRange)
        }
        return values.map { key.wrap($0) }
    }

    /// The veil header, checked strictly: no key unknown or missing, integers where integers
    /// belong, the fingerprint of the key given.
    struct Header {
        let count: Int
        let summed: Int
        let packing: Packing?

        struct Fields: Decodable {
            let format: String
            let key: String
            let damgardJurik: Int?
            let count: Int
            let summed: Int
            let packing: PackingFields?
            enum CodingKeys: String, CodingKey {
                case format, key, damgardJurik = "damgard_jurik", count, summed, packing
            }
        }

        struct PackingFields: Decodable {
            let valueBits: Int
            let addends: Int
            let values: Int
            enum CodingKeys: String, CodingKey {
                case valueBits = "value_bits", addends, values
            }
        }

        init(_ data: Data, key: PaillierPublicKey) throws(PaillierError) {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw .malformed("the header is not a JSON object")
            }
            let known: Set = ["format", "key", "damgard_jurik", "count", "summed", "packing"]
            if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw .malformed("unknown header key \(String(reflecting: unknown))")  // escaped
            }
            if let nested = object["packing"] as? [String: Any],
                let unknown = nested.keys.sorted().first(where: { !["value_bits", "addends", "values"].contains($0) })
            {
                throw .malformed("unknown packing key \(String(reflecting: unknown))")
            }
            let fields: Fields
            do { fields = try JSONDecoder().decode(Fields.self, from: data) } catch {
                throw .malformed("the header needs format, key, count and summed, integers as integers")
            }
            guard fields.format == PaillierCiphertextFile.formatName else {
                throw .malformed("format must be \"\(PaillierCiphertextFile.formatName)\"")
            }
            guard fields.key == PaillierKeyStatement.fingerprint(key) else { throw .keyMismatch }
            // The fingerprint names n alone; s is the file's own, and must be the key's.
            guard (fields.damgardJurik ?? 1) == key.s else {
                throw .malformed(
                    "the ciphertexts are for Damgård–Jurik s = \(fields.damgardJurik ?? 1), the key given has s = \(key.s)"
                )
            }
            guard (0...Int(Int32.max)).contains(fields.count) else { throw .malformed("count out of range") }
            guard (1...PaillierCiphertextFile.maxSummed).contains(fields.summed) else {
                throw .malformed("summed out of range")
            }
            count = fields.count
            summed = fields.summed
            if let p = fields.packing {
                guard (0...Int(Int32.max)).contains(p.values) else { throw .malformed("values out of range") }
                let layout = try Packing(
                    valueBits: p.valueBits, addends: p.addends, values: p.values, keyBits: key.bits, degree: key.s)
                guard summed <= layout.addends else { throw .tooManyAddends(have: summed, max: layout.addends) }
                packing = layout
            } else {
                packing = nil
            }
            // Readers built on different JSON parsers disagree on repeated keys, 3.0 for 3,
            // escapes and null: only the canonical line is accepted, so every reader sees one header.
            let canonical = PaillierCiphertextFile.headerLine(key: key, count: count, summed: summed, packing: packing)
            guard data.elementsEqual(canonical.utf8) else {
                throw .malformed(
                    "the header is not written as Specs/paillier.md §8.1 writes it "
                        + "(keys once each and in order, no spaces, integers in plain decimal)")
            }
        }
    }
}

extension Array where Element: Sendable {
    /// ``parallelMap(_:)`` for a transform that throws only `PaillierError`.
    package func parallelMapTyped<T: Sendable>(_ transform: @Sendable (Element) throws(PaillierError) -> T)
        throws(PaillierError) -> [T]
    {
        let results = parallelMapResults { element in Result { () throws(PaillierError) in try transform(element) } }
        return try results.map { result throws(PaillierError) in try result.get() }
    }

    /// Every element's result, computed on every core.
    package func parallelMapResults<T: Sendable>(_ transform: @Sendable (Element) -> Result<T, PaillierError>)
        -> [Result<
            T, PaillierError
        >]
    {
        // Cannot throw: each transform returns its failure as a value.
        try! parallelMap(transform)
    }
}
