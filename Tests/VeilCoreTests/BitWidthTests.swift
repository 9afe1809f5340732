import Testing
import VeilCore

@Suite struct BitWidthTests {
    @Test(arguments: [0, -1, 65, 128, Int.min, Int.max])
    func refusesWidthsOutsideOneToSixtyFour(_ bits: Int) {
        #expect(throws: RingError.bitWidthOutOfRange(bits)) { try BitWidth(bits) }
    }

    // (bits, mask, byteCount, maxSigned)
    @Test(
        arguments: [
            (1, 0x1, 1, 0x0), (2, 0x3, 1, 0x1), (7, 0x7f, 1, 0x3f), (8, 0xff, 1, 0x7f), (9, 0x1ff, 2, 0xff),
            (16, 0xffff, 2, 0x7fff), (31, 0x7fff_ffff, 4, 0x3fff_ffff), (32, 0xffff_ffff, 4, 0x7fff_ffff),
            (33, 0x1_ffff_ffff, 5, 0xffff_ffff), (63, 0x7fff_ffff_ffff_ffff, 8, 0x3fff_ffff_ffff_ffff),
            (64, 0xffff_ffff_ffff_ffff, 8, 0x7fff_ffff_ffff_ffff),
        ] as [(Int, UInt64, Int, UInt64)])
    func masksAndByteCounts(_ bits: Int, _ mask: UInt64, _ byteCount: Int, _ maxSigned: UInt64) throws {
        let width = try BitWidth(bits)
        #expect(width.mask == mask)
        #expect(width.byteCount == byteCount)
        #expect(width.maxSigned == maxSigned)
    }

    // (bits, signed value, element)
    @Test(
        arguments: [
            (1, 0, 0), (1, -1, 1), (2, 1, 1), (2, -2, 2), (2, -1, 3), (8, 127, 127), (8, -128, 128), (8, -1, 255),
            (32, -1, 0xffff_ffff), (32, Int64(Int32.min), 0x8000_0000), (32, Int64(Int32.max), 0x7fff_ffff),
            (64, -1, UInt64.max), (64, Int64.min, 0x8000_0000_0000_0000), (64, Int64.max, 0x7fff_ffff_ffff_ffff),
        ] as [(Int, Int64, UInt64)])
    func twosComplementRoundTrip(_ bits: Int, _ value: Int64, _ element: UInt64) throws {
        let width = try BitWidth(bits)
        #expect(width.element(value) == element)
        #expect(width.signed(element) == value)
    }
}

@Suite struct ModularVectorTests {
    @Test func additionAndSubtractionWrapModuloTwoToTheB() throws {
        let width = try BitWidth(8)
        var a = try ModularVector(elements: [250, 0, 128, 255], bitWidth: width)
        let b = try ModularVector(elements: [10, 1, 128, 255], bitWidth: width)
        try a.add(b)
        #expect(a.elements == [4, 1, 0, 254])
        try a.subtract(b)
        #expect(a.elements == [250, 0, 128, 255])
    }

    @Test func sixtyFourBitArithmeticWraps() throws {
        let width = try BitWidth(64)
        var a = try ModularVector(elements: [.max, 0], bitWidth: width)
        try a.add(try ModularVector(elements: [2, 0], bitWidth: width))
        #expect(a.elements == [1, 0])
        try a.subtract(try ModularVector(elements: [2, 1], bitWidth: width))
        #expect(a.elements == [.max, .max])
    }

    @Test func refusesUnreducedElementsAndMismatchedOperands() throws {
        #expect(throws: RingError.elementOutOfRange(index: 1)) {
            try ModularVector(elements: [1, 256], bitWidth: BitWidth(8))
        }
        var a = ModularVector(zeros: 3, bitWidth: try BitWidth(8))
        #expect(throws: RingError.lengthMismatch(expected: 3, actual: 2)) {
            try a.add(ModularVector(zeros: 2, bitWidth: BitWidth(8)))
        }
        #expect(throws: RingError.bitWidthMismatch(expected: 8, actual: 9)) {
            try a.subtract(ModularVector(zeros: 3, bitWidth: BitWidth(9)))
        }
        #expect(ModularVector(reducing: [0x1ff, 0x100], bitWidth: try BitWidth(8)).elements == [0xff, 0])
    }

    /// Every width keeps its elements in lanes of 1, 2, 4 or 8 bytes: what goes in comes out,
    /// element by element, and sums and differences are those of UInt64 arithmetic mod 2^b
    /// (odd counts, so that a lane ends inside a word); equal contents are equal vectors.
    @Test(arguments: Array(1...64))
    func everyWidthStoresAndAddsInItsOwnLanes(_ bits: Int) throws {
        let width = try BitWidth(bits)
        #expect(width.laneByteCount == [1, 2, 4, 4, 8, 8, 8, 8][width.byteCount - 1])
        var generator = Xoshiro256(seed: UInt64(bits))
        let count = 37
        let x = (0..<count).map { _ in generator.next() & width.mask }
        let y = (0..<count).map { _ in generator.next() & width.mask }
        var a = try ModularVector(elements: x, bitWidth: width)
        let b = try ModularVector(elements: y, bitWidth: width)
        #expect(a.elements == x && (0..<count).allSatisfy { a[$0] == x[$0] })
        try a.add(b)
        #expect(a.elements == zip(x, y).map { ($0 &+ $1) & width.mask })
        try a.subtract(b)
        try a.subtract(b)
        #expect(a.elements == zip(x, y).map { ($0 &- $1) & width.mask })
        try a.add(b)
        #expect(a == (try ModularVector(elements: x, bitWidth: width)))
        #expect(a.hashValue == (try ModularVector(elements: x, bitWidth: width)).hashValue)
        #expect(ModularVector(zeros: count, bitWidth: width).elements == Array(repeating: 0, count: count))
    }
}

@Suite struct HexTests {
    @Test func roundTripsAndRejectsMalformedText() throws {
        #expect(Hex.encode([0x00, 0x7f, 0xff, 0xa5]) == "007fffa5")
        #expect(try Hex.decode("007FffA5") == [0x00, 0x7f, 0xff, 0xa5])
        #expect(try Hex.decode("") == [])
        #expect(throws: HexError.oddLength(3)) { try Hex.decode("abc") }
        #expect(throws: HexError.invalidCharacter(offset: 1)) { try Hex.decode("0g") }
    }
}
