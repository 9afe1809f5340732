import Testing
import VeilCore

@testable import VeilSecAgg

/// A masked input on the wire (`Specs/secagg.md`, R2): each element in ⌈b/8⌉ little-endian
/// bytes, whatever lane the vector keeps it in, and an element with a bit above b refused by
/// its index.
@Suite struct MaskedInputWireTests {
    @Test(arguments: Array(1...64))
    func everyWidthRoundTripsAndRefusesABitAboveB(_ bits: Int) throws {
        let width = try BitWidth(bits)
        var generator = Xoshiro256(seed: UInt64(bits) &* 13)
        let elements = (0..<29).map { _ in generator.next() & width.mask }
        let vector = try ModularVector(elements: elements, bitWidth: width)
        let encoded = MaskedInputBody.encode(vector)
        let w = width.byteCount
        // The definition: element i is bytes w·i ..< w·(i + 1), little-endian.
        #expect(encoded.count == 29 * w)
        for (i, element) in elements.enumerated() {
            let read = (0..<w).reduce(UInt64(0)) { $0 | UInt64(encoded[w * i + $1]) << (8 * $1) }
            #expect(read == element, "element \(i)")
        }
        #expect(try MaskedInputBody.decode(encoded[...], bitWidth: width, dimension: 29) == vector)
        #expect(throws: SecAggWireError.self) {
            try MaskedInputBody.decode(encoded.dropLast()[...], bitWidth: width, dimension: 29)
        }
        guard bits % 8 != 0 else { return }
        var high = encoded
        high[w * 17 + w - 1] |= 0x80  // bit 8w − 1 > b − 1
        #expect(throws: SecAggWireError.malformed("masked input element 17 exceeds 2^\(bits)")) {
            try MaskedInputBody.decode(high[...], bitWidth: width, dimension: 29)
        }
    }
}
