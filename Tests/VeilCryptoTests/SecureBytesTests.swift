import Testing
import VeilCrypto

@Suite struct SecureBytesTests {
    @Test func equalityComparesContentsAndLengths() {
        let a = SecureBytes(copying: [1, 2, 3, 4])
        #expect(a == SecureBytes(copying: [1, 2, 3, 4]))
        #expect(a != SecureBytes(copying: [1, 2, 3, 5]))
        #expect(a != SecureBytes(copying: [1, 2, 3]))
        #expect(SecureBytes(zeros: 0) == SecureBytes(copying: []))
    }

    @Test func neverPrintsItsBytes() {
        let secret = SecureBytes(copying: [0xde, 0xad, 0xbe, 0xef])
        for text in [secret.description, secret.debugDescription, "\(secret)", String(reflecting: secret)] {
            #expect(!text.lowercased().contains("dead"))
            #expect(!text.contains("222"))  // 0xde in decimal
            #expect(text.contains("4 bytes"))
        }
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("222") && !dumped.lowercased().contains("dead"))
    }

    @Test func copiesAreIndependentAfterMutation() {
        let original = SecureBytes(copying: [1, 2, 3])
        var copy = original
        copy.withUnsafeMutableBytes { $0[0] = 9 }
        #expect(original.unsafeExposedBytes() == [1, 2, 3])
        #expect(copy.unsafeExposedBytes() == [9, 2, 3])
    }

    @Test func slicesAndAppends() {
        let bytes = SecureBytes(copying: Array(0..<10))
        #expect(bytes.slice(2..<5).unsafeExposedBytes() == [2, 3, 4])
        #expect(bytes.slice(3..<3).isEmpty)
        #expect(bytes.slice(0..<2).appending(bytes.slice(8..<10)).unsafeExposedBytes() == [0, 1, 8, 9])
    }

    @Test func randomBytesFromAGeneratorAreLittleEndianWords() {
        var generator = ScriptedWords([0x0807_0605_0403_0201, 0x100f_0e0d_0c0b_0a09])
        let bytes = SecureBytes.random(count: 11, using: &generator)
        #expect(bytes.unsafeExposedBytes() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        let system = SecureBytes.random(count: 32)
        #expect(system.count == 32 && system != SecureBytes(zeros: 32))
    }
}

struct ScriptedWords: RandomNumberGenerator {
    var words: [UInt64]
    init(_ words: [UInt64]) { self.words = words }
    mutating func next() -> UInt64 { words.removeFirst() }
}
