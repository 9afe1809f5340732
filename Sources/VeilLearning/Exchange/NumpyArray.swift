import Foundation

/// A real array in NumPy's `.npy` format (format versions 1.0, 2.0 and 3.0): what an external
/// trainer reads and writes (`Specs/trainer.md` §3). Veil writes version 1.0, little-endian
/// float64, C order; it reads little-endian float32 or float64 in C or Fortran order, and
/// refuses everything else by name.
public struct NumpyArray: Hashable, Sendable {
    public let shape: [Int]
    /// The values in C (row-major) order.
    public let values: [Double]

    public init(shape: [Int], values: [Double]) {
        precondition(shape.reduce(1, *) == values.count, "\(values.count) values for the shape \(shape)")
        self.shape = shape
        self.values = values
    }

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// A header longer than this is refused before it is read (NumPy's own limit is 10,000).
    public static let maxHeaderLength = 10_000

    /// The file's bytes: version 1.0, `<f8`, C order, the header padded with spaces to a
    /// multiple of 64 bytes and ended by a newline, as `numpy.save` writes it.
    public var encoded: [UInt8] {
        let dimensions = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (\(dimensions)), }"
        let unpadded = Self.magic.count + 2 + 2 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes = Self.magic + [1, 0]
        let length = UInt16(header.utf8.count)
        bytes += [UInt8(length & 0xff), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        bytes.reserveCapacity(bytes.count + values.count * 8)
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }

    /// Parses a `.npy` file.
    /// - Throws: ``NumpyError`` naming what is wrong: not a `.npy` file, an unsupported version
    ///   or dtype, a malformed header, a body of the wrong length.
    public init(decoding bytes: [UInt8]) throws(NumpyError) {
        guard bytes.count >= 10, Array(bytes[0..<6]) == Self.magic else { throw .notNumpy }
        let (major, minor) = (bytes[6], bytes[7])
        let headerStart: Int
        let headerLength: Int
        switch major {
        case 1:
            headerStart = 10
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case 2, 3:
            guard bytes.count >= 12 else { throw .notNumpy }
            headerStart = 12
            headerLength = (8..<12).reduce(0) { $0 | Int(bytes[$1]) << (8 * ($1 - 8)) }
        default:
            throw .version(major: major, minor: minor)
        }
        guard minor == 0 else { throw .version(major: major, minor: minor) }
        guard headerLength <= Self.maxHeaderLength, headerStart + headerLength <= bytes.count else {
            throw .header("its length \(headerLength) runs past the file or the limit")
        }
        guard let text = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8) else {
            throw .header("not text")
        }
        let header = try NumpyHeader(parsing: text)
        let itemSize = header.descr == "<f8" ? 8 : 4
        var count = 1
        for dimension in header.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= Int(Int32.max) else { throw .header("the shape \(header.shape) is too large") }
            count = product
        }
        let body = headerStart + headerLength
        guard bytes.count - body == count * itemSize else {
            throw .body(expected: count * itemSize, actual: bytes.count - body)
        }
        var stored = [Double](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                let offset = body + i * itemSize
                stored[i] =
                    itemSize == 8
                    ? Double(
                        bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
                    : Double(
                        Float(
                            bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                        ))
            }
        }
        self.init(
            shape: header.shape,
            values: header.fortranOrder ? Self.cOrder(fortran: stored, shape: header.shape) : stored)
    }

    /// Values stored first-index-fastest, reordered last-index-fastest.
    static func cOrder(fortran: [Double], shape: [Int]) -> [Double] {
        guard shape.count > 1 else { return fortran }
        var result = [Double](repeating: 0, count: fortran.count)
        // Fortran strides: 1, n0, n0·n1, …
        var strides = [Int](repeating: 1, count: shape.count)
        for axis in 1..<shape.count { strides[axis] = strides[axis - 1] * shape[axis - 1] }
        var index = [Int](repeating: 0, count: shape.count)
        for c in 0..<result.count {
            result[c] = fortran[zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }]
            // The next C index: the last axis moves fastest.
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }
}

/// What is wrong with a `.npy` file.
public enum NumpyError: Error, Hashable, Sendable, CustomStringConvertible {
    case notNumpy
    case version(major: UInt8, minor: UInt8)
    case header(String)
    case dtype(String)
    case body(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .notNumpy: "not a .npy file (no \\x93NUMPY magic)"
        case .version(let major, let minor): "an unsupported .npy version \(major).\(minor)"
        case .header(let why): "a malformed .npy header: \(why)"
        case .dtype(let descr):
            "the dtype '\(descr)' is not supported: save little-endian float32 ('<f4') or float64 ('<f8')"
        case .body(let expected, let actual): "the .npy data is \(actual) bytes, its header says \(expected)"
        }
    }

    /// The description without any text taken from the file (a header, a dtype): what may be
    /// told to another party about a file someone else wrote.
    public var reason: String {
        switch self {
        case .header: "a malformed .npy header"
        case .dtype: "a dtype other than little-endian float32 ('<f4') or float64 ('<f8')"
        default: description
        }
    }
}

/// The header: a Python dict literal with exactly the keys `descr`, `fortran_order` and
/// `shape`, in any order, with an optional trailing comma, padded with spaces and a newline.
struct NumpyHeader {
    var descr = ""
    var fortranOrder = false
    var shape: [Int] = []

    init(parsing text: String) throws(NumpyError) {
        var scanner = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        func expect(_ token: String) throws(NumpyError) {
            scanner = scanner.drop { $0 == " " }
            guard scanner.hasPrefix(token) else { throw .header("expected \(token) in \(text.debugDescription)") }
            scanner = scanner.dropFirst(token.count)
        }
        func skipSpaces() { scanner = scanner.drop { $0 == " " } }
        func quoted() throws(NumpyError) -> String {
            skipSpaces()
            guard let quote = scanner.first, quote == "'" || quote == "\"" else { throw .header("expected a string") }
            scanner = scanner.dropFirst()
            guard let end = scanner.firstIndex(of: quote) else { throw .header("an unterminated string") }
            defer { scanner = scanner[scanner.index(after: end)...] }
            return String(scanner[..<end])
        }
        try expect("{")
        var seen: Set<String> = []
        while true {
            skipSpaces()
            if scanner.hasPrefix("}") { break }
            let key = try quoted()
            guard seen.insert(key).inserted else { throw .header("the key '\(key)' twice") }
            try expect(":")
            skipSpaces()
            switch key {
            case "descr":
                descr = try quoted()
                guard descr == "<f8" || descr == "<f4" else { throw .dtype(descr) }
            case "fortran_order":
                if scanner.hasPrefix("True") {
                    fortranOrder = true
                } else if scanner.hasPrefix("False") {
                    fortranOrder = false
                } else {
                    throw .header("fortran_order is not True or False")
                }
                scanner = scanner.dropFirst(fortranOrder ? 4 : 5)
            case "shape":
                try expect("(")
                let end = scanner.firstIndex(of: ")") ?? scanner.endIndex
                let items = scanner[..<end].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty }
                shape = []
                for item in items {
                    guard let dimension = Int(item), dimension >= 0 else {
                        throw .header("the shape has '\(item)', not a dimension")
                    }
                    shape.append(dimension)
                }
                scanner = scanner[end...]
                try expect(")")
            default:
                throw .header("an unknown key '\(key)'")
            }
            skipSpaces()
            if scanner.hasPrefix(",") { scanner = scanner.dropFirst() }
        }
        try expect("}")
        guard scanner.allSatisfy(\.isWhitespace) else { throw .header("text after the dict") }
        guard seen == ["descr", "fortran_order", "shape"] else {
            throw .header("the keys \(seen.sorted()), not descr, fortran_order and shape")
        }
    }
}
