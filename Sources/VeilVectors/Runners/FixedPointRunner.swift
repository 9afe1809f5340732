import Foundation
import VeilCore
import VeilCrypto

/// The project's `VEIL-FIXED-POINT` file: encoding with stochastic rounding from the
/// deterministic generator, and decoding sums.
enum FixedPointRunner: VectorRunner {
    static let algorithm = "VEIL-FIXED-POINT"

    struct Group: Codable, Sendable {
        var clip: Double
        var fractionalBits: Int
        var bits: Int
        var maxAddends: Int
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// "encode" or "decodeSum".
        var operation: String
        /// "encode": the reals, the generator seed, the encodings (decimal strings).
        var values: [Double]?
        var generatorSeed: String?
        var encoded: [String]?
        /// "decodeSum": vectors of encodings, their sum modulo 2^b, and its decoding.
        var addends: [[String]]?
        var sum: [String]?
        var decoded: [Double]?
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let codec = try FixedPointCodec(
                        clip: group.clip, fractionalBits: group.fractionalBits, bitWidth: BitWidth(group.bits),
                        maxAddends: group.maxAddends)
                    switch test.operation {
                    case "encode":
                        var generator = try ChaCha20Generator(
                            publicSeed: hex(test.generatorSeed ?? "", "generatorSeed"))
                        let encoded = try codec.encode(test.values ?? [], using: &generator)
                        try expectEqual(
                            encoded.elements, try (test.encoded ?? []).map { try decimal($0, "encoded") }, "encoded")
                    case "decodeSum":
                        let addends = try (test.addends ?? []).map { vector in
                            try ModularVector(
                                elements: vector.map { try decimal($0, "addends") }, bitWidth: codec.bitWidth)
                        }
                        guard var sum = addends.first else { throw VectorError.unreadable("decodeSum without addends") }
                        for addend in addends.dropFirst() { try sum.add(addend) }
                        try expectEqual(sum.elements, try (test.sum ?? []).map { try decimal($0, "sum") }, "sum")
                        try expectEqual(try codec.decode(sum), test.decoded ?? [], "decoded")
                    default:
                        throw VectorError.unreadable("unknown operation \(test.operation)")
                    }
                }
            }
        }
    }
}
