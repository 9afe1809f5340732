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

    // The named sizes are the sizes the primitives and the protocol documents fix.
    @Test func sizesAreTheDocumentedOnes() {
        #expect(SHA256.digestByteCount == 32)
        #expect(X25519.keyByteCount == 32)
        #expect(Ed25519.seedByteCount == 32)
        #expect(XChaCha20Poly1305.keyByteCount == 32)
        #expect(VeilKDF.keyByteCount == 32)
        #expect(ChaCha20Generator.seedByteCount == 32)
        #expect(MaskExpander.seedByteCount == 32)
        // SecAgg deals both with one Shamir share size (SecAggKeys.sharedSecretByteCount).
        #expect(X25519.keyByteCount == MaskExpander.seedByteCount)
        #expect(SHA256.hash([]).count == SHA256.digestByteCount)
    }
}
