import Testing
import VeilCrypto

@Suite struct SodiumTests {
    @Test func successIsZeroAndAnythingElseIsTheNamedFailure() throws {
        try Sodium.check(0, "crypto_hash_sha256_init")
        #expect(throws: CryptoError.libsodiumFailure(function: "crypto_hash_sha256_init", code: -1)) {
            try Sodium.check(-1, "crypto_hash_sha256_init")
        }
        #expect(throws: CryptoError.libsodiumFailure(function: "crypto_scalarmult", code: 1)) {
            try Sodium.check(1, "crypto_scalarmult")
        }
    }

    @Test func aFailureWithAMeaningOfItsOwnThrowsThatMeaning() {
        #expect(throws: CryptoError.authenticationFailure) {
            try Sodium.check(-1, "crypto_aead_xchacha20poly1305_ietf_decrypt", failure: .authenticationFailure)
        }
        #expect(throws: Never.self) { try Sodium.check(0, "crypto_scalarmult", failure: .weakPublicKey) }
    }

    @Test func aCallThatCannotFailStopsTheProcessWhenItDoes() async {
        Sodium.checkCannotFail(0, "crypto_hash_sha256_final")
        await #expect(processExitsWith: .failure) {
            Sodium.checkCannotFail(-1, "crypto_hash_sha256_final")
        }
    }
}
