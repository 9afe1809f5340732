import Foundation

/// The smallest FlatBuffers writer and reader the TensorFlow Lite file needs (Specs/export.md
/// §3.1): tables, strings and vectors of scalars or tables; no structs, unions beyond a type
/// byte and a table, or defaults elision. The FlatBuffers Swift runtime is not among the
/// packages Veil may use, and this much of the binary format fits on a page.
///
/// Layout, written front to back: the root offset (and the file identifier) first, then each
/// object before the objects it refers to, so that every reference (an unsigned 32-bit offset
/// from where it is stored) points forward, as the format requires. A table's vtable comes just
/// before the table (its signed offset is then positive).
public enum FlatBuffers {
    /// A value a table field or a vector refers to.
    indirect enum Object {
        case table(Table)
        case string(String)
        /// A vector of scalars: their little-endian bytes, element size and count; `alignment`
        /// is at least the element size (16 for a TFLite buffer's data).
        case scalars(bytes: [UInt8], elementSize: Int, count: Int, alignment: Int)
        case tables([Table])
    }

    /// A field: an inline little-endian scalar, or a reference.
    enum Field {
        case scalar([UInt8])
        case reference(Object)
    }

    /// A table: fields by their index in the schema (the vtable slot).
    struct Table {
        var fields: [Int: Field] = [:]

        subscript(index: Int) -> Field? {
            get { fields[index] }
            set { fields[index] = newValue }
        }
    }

    static func scalar<T: FixedWidthInteger>(_ value: T) -> Field { .scalar(littleEndian(value)) }
    static func scalar(_ value: Float) -> Field { .scalar(littleEndian(value.bitPattern)) }
    static func vector<T: FixedWidthInteger>(_ values: [T], alignment: Int = MemoryLayout<T>.size) -> Object {
        .scalars(
            bytes: values.flatMap { littleEndian($0) }, elementSize: MemoryLayout<T>.size, count: values.count,
            alignment: max(alignment, MemoryLayout<T>.size))
    }
    static func vector(_ values: [Float]) -> Object { vector(values.map(\.bitPattern)) }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// The bytes of a buffer whose root is `root`, with a 4-byte file identifier.
    static func serialize(root: Table, identifier: String) -> [UInt8] {
        var writer = Writer()
        writer.bytes = [UInt8](repeating: 0, count: 4) + Array(identifier.utf8.prefix(4))
        let position = writer.write(.table(root))
        writer.patch(at: 0, to: position)
        return writer.bytes
    }

    private struct Writer {
        var bytes: [UInt8] = []

        mutating func pad(to alignment: Int, after extra: Int = 0) {
            while (bytes.count + extra) % alignment != 0 { bytes.append(0) }
        }

        /// Stores at `slot` the forward offset to `target`.
        mutating func patch(at slot: Int, to target: Int) {
            precondition(target > slot, "FlatBuffers references point forward")
            bytes.replaceSubrange(slot..<(slot + 4), with: FlatBuffers.littleEndian(UInt32(target - slot)))
        }

        /// Writes `object` and every object it refers to; returns where `object` starts (a
        /// table's soffset, a vector's or string's length).
        mutating func write(_ object: Object) -> Int {
            switch object {
            case .string(let text):
                pad(to: 4)
                let start = bytes.count
                let utf8 = Array(text.utf8)
                bytes += FlatBuffers.littleEndian(UInt32(utf8.count)) + utf8 + [0]
                return start
            case .scalars(let data, _, let count, let alignment):
                pad(to: max(alignment, 4), after: 4)
                let start = bytes.count
                bytes += FlatBuffers.littleEndian(UInt32(count)) + data
                return start
            case .tables(let tables):
                pad(to: 4)
                let start = bytes.count
                bytes += FlatBuffers.littleEndian(UInt32(tables.count))
                let slots = tables.indices.map { start + 4 + 4 * $0 }
                bytes += [UInt8](repeating: 0, count: 4 * tables.count)
                for (slot, table) in zip(slots, tables) { patch(at: slot, to: write(.table(table))) }
                return start
            case .table(let table):
                return write(table)
            }
        }

        private mutating func write(_ table: Table) -> Int {
            // Inline layout: the soffset, then the fields by index, each aligned to its size
            // (scalars) or 4 (references) from the table's start, which is 4-aligned.
            let slotCount = (table.fields.keys.max() ?? -1) + 1
            var offsets = [Int](repeating: 0, count: slotCount)
            var size = 4
            for index in table.fields.keys.sorted() {
                let width: Int
                switch table.fields[index]! {
                case .scalar(let value): width = value.count
                case .reference: width = 4
                }
                while size % width != 0 { size += 1 }
                offsets[index] = size
                size += width
            }
            while size % 4 != 0 { size += 1 }
            // The vtable, then the table at the next 4-aligned position.
            pad(to: 2)
            let vtable = bytes.count
            bytes += FlatBuffers.littleEndian(UInt16(4 + 2 * slotCount)) + FlatBuffers.littleEndian(UInt16(size))
            for offset in offsets { bytes += FlatBuffers.littleEndian(UInt16(offset)) }
            pad(to: 4)
            let start = bytes.count
            bytes += FlatBuffers.littleEndian(Int32(start - vtable)) + [UInt8](repeating: 0, count: size - 4)
            var references: [(slot: Int, object: Object)] = []
            for (index, field) in table.fields {
                switch field {
                case .scalar(let value):
                    bytes.replaceSubrange(
                        (start + offsets[index])..<(start + offsets[index] + value.count), with: value)
                case .reference(let object): references.append((start + offsets[index], object))
                }
            }
            for (slot, object) in references.sorted(by: { $0.slot < $1.slot }) { patch(at: slot, to: write(object)) }
            return start
        }
    }

    // MARK: - Reading

    /// A table in a buffer, read with bounds checks: a corrupt file is refused, never a crash.
    /// Public for the vector generator, which finds fields to change in valid files.
    public struct TableReader: Sendable {
        public let bytes: [UInt8]
        public let position: Int
        private let vtable: Int
        private let vtableSize: Int

        /// The root table of `bytes`, whose file identifier must be `identifier`.
        public init(root bytes: [UInt8], identifier: String) throws(ModelFileError) {
            guard bytes.count >= 8, Array(bytes[4..<8]) == Array(identifier.utf8) else {
                throw .malformed("not a FlatBuffer with the identifier \(identifier)")
            }
            try self.init(bytes, at: Int(try Self.u32(bytes, 0)))
        }

        public init(_ bytes: [UInt8], at position: Int) throws(ModelFileError) {
            self.bytes = bytes
            self.position = position
            let soffset = Int(Int32(bitPattern: try Self.u32(bytes, position)))
            vtable = position - soffset
            vtableSize = Int(try Self.u16(bytes, vtable))
            guard vtableSize >= 4, vtableSize % 2 == 0, vtable + vtableSize <= bytes.count,
                position + Int(try Self.u16(bytes, vtable + 2)) <= bytes.count
            else { throw .malformed("a table's vtable is out of bounds") }
        }

        /// Where field `index` is stored, or nil when absent.
        public func field(_ index: Int) throws(ModelFileError) -> Int? {
            let slot = 4 + 2 * index
            guard slot + 2 <= vtableSize else { return nil }
            let offset = Int(try Self.u16(bytes, vtable + slot))
            return offset == 0 ? nil : position + offset
        }

        public func u32(_ index: Int, default value: UInt32 = 0) throws(ModelFileError) -> UInt32 {
            guard let at = try field(index) else { return value }
            return try Self.u32(bytes, at)
        }

        /// The position of the object field `index` refers to.
        public func reference(_ index: Int) throws(ModelFileError) -> Int? {
            guard let at = try field(index) else { return nil }
            let target = at + Int(try Self.u32(bytes, at))
            guard target < bytes.count else { throw .malformed("a reference points outside the file") }
            return target
        }

        public func table(_ index: Int) throws(ModelFileError) -> TableReader? {
            guard let at = try reference(index) else { return nil }
            return try TableReader(bytes, at: at)
        }

        /// A vector's element count and where its first element is; `elementSize` bounds it.
        public func vector(_ index: Int, elementSize: Int) throws(ModelFileError) -> (start: Int, count: Int)? {
            guard let at = try reference(index) else { return nil }
            let count = Int(try Self.u32(bytes, at))
            guard at + 4 + count * elementSize <= bytes.count else {
                throw .malformed("a vector runs past the end of the file")
            }
            return (at + 4, count)
        }

        public func string(_ index: Int) throws(ModelFileError) -> String? {
            guard let (start, count) = try vector(index, elementSize: 1) else { return nil }
            return String(decoding: bytes[start..<(start + count)], as: UTF8.self)
        }

        public func tables(_ index: Int) throws(ModelFileError) -> [TableReader] {
            guard let (start, count) = try vector(index, elementSize: 4) else { return [] }
            var tables: [TableReader] = []
            for i in 0..<count {
                let slot = start + 4 * i
                tables.append(try TableReader(bytes, at: slot + Int(try Self.u32(bytes, slot))))
            }
            return tables
        }

        public func int32s(_ index: Int) throws(ModelFileError) -> [Int32] {
            guard let (start, count) = try vector(index, elementSize: 4) else { return [] }
            var values: [Int32] = []
            for i in 0..<count { values.append(Int32(bitPattern: try Self.u32(bytes, start + 4 * i))) }
            return values
        }

        public func floats(_ index: Int) throws(ModelFileError) -> [Float] {
            try int32s(index).map { Float(bitPattern: UInt32(bitPattern: $0)) }
        }

        public func int64s(_ index: Int) throws(ModelFileError) -> [Int64] {
            guard let (start, count) = try vector(index, elementSize: 8) else { return [] }
            var values: [Int64] = []
            for i in 0..<count {
                let low = UInt64(try Self.u32(bytes, start + 8 * i))
                let high = UInt64(try Self.u32(bytes, start + 8 * i + 4))
                values.append(Int64(bitPattern: low | high << 32))
            }
            return values
        }

        public func byteVector(_ index: Int) throws(ModelFileError) -> ArraySlice<UInt8> {
            guard let (start, count) = try vector(index, elementSize: 1) else { return [] }
            return bytes[start..<(start + count)]
        }

        static func u16(_ bytes: [UInt8], _ at: Int) throws(ModelFileError) -> UInt16 {
            guard at >= 0, at + 2 <= bytes.count else { throw .malformed("a read past the end of the file") }
            return UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
        }

        static func u32(_ bytes: [UInt8], _ at: Int) throws(ModelFileError) -> UInt32 {
            guard at >= 0, at + 4 <= bytes.count else { throw .malformed("a read past the end of the file") }
            return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16
                | UInt32(bytes[at + 3]) << 24
        }
    }
}
