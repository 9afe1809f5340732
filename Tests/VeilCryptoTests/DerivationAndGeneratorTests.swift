import Testing
import VeilCrypto

@Suite struct VeilKDFTests {
    @Test func labelsAndContextsSeparateDomains() throws {
        let ikm = SecureBytes(copying: Array(repeating: 5, count: 32))
        let a = try VeilKDF.derive(VeilKDF.Label("a"), from: ikm)
        #expect(a != (try VeilKDF.derive(VeilKDF.Label("b"), from: ikm)))
        #expect(a != (try VeilKDF.derive(VeilKDF.Label("a"), from: ikm, context: [0])))
        #expect(a != (try VeilKDF.derive(VeilKDF.Label("a"), from: ikm, salt: [1])))
        // HMAC pads its key with zeros, so an empty salt and a zero byte are the same salt
        // (Specs/primitives.md 7.1): salts must be fixed-length where they separate contexts.
        #expect(a == (try VeilKDF.derive(VeilKDF.Label("a"), from: ikm, salt: [0])))
        #expect(a == (try VeilKDF.derive(VeilKDF.Label("a"), from: ikm)))
        // The info string is prefix ‖ label ‖ 0x00 ‖ context.
        #expect(VeilKDF.info(label: try VeilKDF.Label("ab"), context: [1]) == Array("veil/v1/ab".utf8) + [0, 1])
    }

    @Test(arguments: ["", "A", "a b", "a\u{0}", "é", String(repeating: "x", count: 65)])
    func refusesMalformedLabels(_ label: String) {
        #expect(throws: KDFError.invalidLabel(label)) { try VeilKDF.Label(label) }
    }

    @Test(arguments: [0, -1, 8161])
    func refusesOutputLengthsOutsideTheHKDFRange(_ length: Int) {
        #expect(throws: KDFError.outputLengthOutOfRange(length)) {
            try HKDFSHA256.deriveKey(ikm: SecureBytes(zeros: 32), salt: [], info: [], outputByteCount: length)
        }
    }

    @Test func longerOutputsExtendShorterOnes() throws {
        let ikm = SecureBytes(copying: [1, 2, 3])
        let short = try HKDFSHA256.deriveKey(ikm: ikm, salt: [4], info: [5], outputByteCount: 40)
        let long = try HKDFSHA256.deriveKey(ikm: ikm, salt: [4], info: [5], outputByteCount: 100)
        #expect(long.slice(0..<40) == short)
    }
}

@Suite struct ChaCha20GeneratorTests {
    @Test func sameSeedSameStreamAcrossRefills() throws {
        var a = try ChaCha20Generator(publicSeed: Array(repeating: 3, count: 32))
        var b = try ChaCha20Generator(publicSeed: Array(repeating: 3, count: 32))
        let first = (0..<500).map { _ in a.next() }
        #expect(first == (0..<500).map { _ in b.next() })
        #expect(Set(first).count == 500)
        var other = try ChaCha20Generator(publicSeed: Array(repeating: 4, count: 32))
        #expect((0..<500).map { _ in other.next() } != first)
    }

    @Test func bytesContinueTheWordStream() throws {
        var words = try ChaCha20Generator(publicSeed: Array(repeating: 6, count: 32))
        var bytes = try ChaCha20Generator(publicSeed: Array(repeating: 6, count: 32))
        let expected = (0..<2).flatMap { _ in withUnsafeBytes(of: words.next().littleEndian, Array.init) }
        #expect(bytes.bytes(count: 16).unsafeExposedBytes() == expected)
    }

    @Test func refusesSeedsThatAreNotThirtyTwoBytes() {
        #expect(throws: CryptoError.invalidLength(what: "generator seed", expected: 32, actual: 16)) {
            try ChaCha20Generator(publicSeed: Array(repeating: 0, count: 16))
        }
    }
}
