import CSodium
import Testing
import VeilCore
import VeilTestSupport

@testable import VeilCrypto

@Suite struct MaskExpanderTests {
    func expander(bits: Int, seed: UInt8 = 1, label: String = "w") throws -> MaskExpander {
        try MaskExpander(
            seed: SecureBytes(copying: Array(repeating: seed, count: 32)), label: Array(label.utf8),
            bitWidth: BitWidth(bits))
    }

    @Test(arguments: Array(1...64))
    func everyWidthStaysReducedAndAddThenSubtractRestores(_ bits: Int) throws {
        let mask = try expander(bits: bits)
        let width = try BitWidth(bits)
        let expanded = try mask.expand(count: 2_100)
        #expect(expanded.elements.allSatisfy { $0 <= width.mask })
        var generator = SplitMix64(seed: UInt64(bits))
        let input = ModularVector(reducing: (0..<2_100).map { _ in generator.next() }, bitWidth: width)
        var masked = input
        try mask.apply(.add, to: &masked)
        var expected = input
        try expected.add(expanded)
        #expect(masked == expected)
        try mask.apply(.subtract, to: &masked)
        #expect(masked == input)
    }

    @Test(arguments: [1, 7, 32, 33, 63, 64])
    func shorterExpansionsArePrefixesAcrossChunkBoundaries(_ bits: Int) throws {
        let mask = try expander(bits: bits)
        let long = try mask.expand(count: 3 * MaskExpander.elementsPerChunk + 5)
        for count in [1, 63, 64, 1_023, 1_024, 1_025, 2_049] {
            #expect(try mask.expand(count: count).elements == Array(long.elements.prefix(count)))
        }
    }

    /// Several masks folded chunk by chunk, over a slice that starts at a chunk boundary, give
    /// what folding each mask over the whole vector in turn gives: the keystream counter of a
    /// slice continues the whole vector's.
    @Test(arguments: [1, 8, 13, 24, 32, 40, 64])
    func severalMasksOverSlicesEqualOneMaskAtATime(_ bits: Int) throws {
        let width = try BitWidth(bits)
        let masks: [(expander: MaskExpander, mode: MaskExpander.Mode)] = [
            (try expander(bits: bits, seed: 1), .add), (try expander(bits: bits, seed: 2), .subtract),
            (try expander(bits: bits, seed: 3), .add), (try expander(bits: bits, seed: 4), .overwrite),
            (try expander(bits: bits, seed: 5), .add),
        ]
        let count = 3 * MaskExpander.elementsPerChunk + 77
        var generator = SplitMix64(seed: UInt64(bits) * 31)
        let input = ModularVector(reducing: (0..<count).map { _ in generator.next() }, bitWidth: width)
        var expected = input
        for mask in masks { try mask.expander.apply(mask.mode, to: &expected) }

        for cut in [0, MaskExpander.elementsPerChunk, 2 * MaskExpander.elementsPerChunk] {
            var batched = input
            try MaskExpander.apply(masks, to: &batched, elements: 0..<cut)
            try MaskExpander.apply(masks, to: &batched, elements: cut..<count)
            let differing = zip(batched.elements, expected.elements).filter { $0 != $1 }.count
            #expect(differing == 0, "cut at \(cut): \(differing) of \(count) elements differ")
        }
    }

    /// Every width against the definition itself (`Specs/primitives.md`, "Mask expansion"):
    /// K = VeilKDF(seed, "mask-expansion", context = label), one raw ChaCha20 call for the whole
    /// keystream, element i the w bytes at w·i read little-endian, mod 2^b. 8,269 elements reach
    /// past the largest piece the expander produces per ChaCha20 call (8,192 elements at w = 1),
    /// and slices of them start at every 1,024-element boundary the workers may cut at.
    /// The same check on the scalar loop alone, for the widths the AVX2 kernel widens (3, 5, 6
    /// and 7 bytes), as a CPU without AVX2 runs them.
    @Test(arguments: [17, 24, 33, 40, 41, 48, 49, 56])
    func theScalarFoldMatchesTheDefinitionToo(_ bits: Int) throws {
        let saved = MaskExpander.useAVX2
        MaskExpander.useAVX2 = false
        defer { MaskExpander.useAVX2 = saved }
        try everyWidthMatchesTheDefinitionAcrossPiecesAndSlices(bits)
    }

    @Test(arguments: Array(1...64))
    func everyWidthMatchesTheDefinitionAcrossPiecesAndSlices(_ bits: Int) throws {
        let width = try BitWidth(bits)
        let w = width.byteCount
        let count = 8 * MaskExpander.elementsPerChunk + 77
        let seed = SecureBytes(copying: Array(repeating: UInt8(bits), count: 32))
        let label = Array("definition".utf8)
        let key = VeilKDF.derive32(.maskExpansion, from: seed, context: label)
        var keystream = [UInt8](repeating: 0, count: count * w)
        let nonce = [UInt8](repeating: 0, count: 12)
        let status = key.withUnsafeBytes {
            crypto_stream_chacha20_ietf(
                &keystream, UInt64(keystream.count), nonce, $0.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        #expect(status == 0)
        let definition = (0..<count).map { i in
            (0..<w).reduce(UInt64(0)) { value, j in value | UInt64(keystream[w * i + j]) << (8 * j) } & width.mask
        }

        let mask = try MaskExpander(seed: seed, label: label, bitWidth: width)
        let expanded = try mask.expand(count: count)
        #expect(expanded.elements == definition)
        // Added to an input in slices (at 0, 1 × 1,024, …, 8 × 1,024) it adds the definition.
        var generator = SplitMix64(seed: UInt64(bits) &* 77)
        let input = ModularVector(reducing: (0..<count).map { _ in generator.next() }, bitWidth: width)
        var sliced = input
        var start = 0
        for next in stride(from: MaskExpander.elementsPerChunk, through: count, by: MaskExpander.elementsPerChunk)
            + [count]
        where next > start {
            try MaskExpander.apply([(mask, .add)], to: &sliced, elements: start..<next)
            start = next
        }
        let (slicedElements, inputElements) = (sliced.elements, input.elements)
        let differing = (0..<count).filter {
            slicedElements[$0] != (inputElements[$0] &+ definition[$0]) & width.mask
        }
        #expect(differing.isEmpty, "\(differing.count) of \(count) elements differ, first at \(differing.first ?? -1)")
    }

    @Test func seedsAndLabelsGiveUnrelatedMasks() throws {
        let base = try expander(bits: 32).expand(count: 64)
        #expect(try expander(bits: 32, seed: 2).expand(count: 64) != base)
        #expect(try expander(bits: 32, label: "v").expand(count: 64) != base)
        #expect(try expander(bits: 32).expand(count: 64) == base)
    }

    @Test(arguments: [1, 7, 8, 12])
    func lowWidthsAreUniform(_ bits: Int) throws {
        // A chi-square test over all 2^b values: with 2^b − 1 degrees of freedom, the statistic
        // exceeds mean + 6·sd only with negligible probability for a uniform source.
        let buckets = 1 << bits
        let count = buckets * 200
        let mask = try expander(bits: bits, seed: UInt8(bits)).expand(count: count)
        var observed = [Int](repeating: 0, count: buckets)
        for value in mask.elements { observed[Int(value)] += 1 }
        let expected = Double(count) / Double(buckets)
        let chiSquare = observed.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        let freedom = Double(buckets - 1)
        #expect(chiSquare < freedom + 6 * (2 * freedom).squareRoot() + 10)
    }

    @Test func refusesMismatchedRingsAndShortSeeds() throws {
        var vector = ModularVector(zeros: 4, bitWidth: try BitWidth(16))
        #expect(throws: MaskExpansionError.bitWidthMismatch(expected: 32, actual: 16)) {
            try expander(bits: 32).apply(.add, to: &vector)
        }
        #expect(throws: CryptoError.invalidLength(what: "mask seed", expected: 32, actual: 31)) {
            try MaskExpander(seed: SecureBytes(zeros: 31), label: [], bitWidth: BitWidth(32))
        }
        #expect(try expander(bits: 64).maxCount == 1 << 35)
        #expect(try expander(bits: 1).expand(count: 0).count == 0)
    }
}
