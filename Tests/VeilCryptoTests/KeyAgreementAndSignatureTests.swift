import Testing
import VeilCrypto
import VeilTestSupport

@Suite struct X25519Tests {
    @Test func bothSidesDeriveTheSameSecret() throws {
        var generator = try ChaCha20Generator(publicSeed: Array(repeating: 1, count: 32))
        let alice = X25519.PrivateKey(using: &generator)
        let bob = X25519.PrivateKey(using: &generator)
        let ab = try alice.sharedSecret(with: bob.publicKey)
        #expect(ab == (try bob.sharedSecret(with: alice.publicKey)))
        #expect(ab != (try alice.sharedSecret(with: X25519.PrivateKey().publicKey)))
    }

    @Test func refusesSmallOrderPointsAndWrongLengths() throws {
        let key = X25519.PrivateKey()
        #expect(throws: CryptoError.weakPublicKey) {
            try key.sharedSecret(with: X25519.PublicKey(rawRepresentation: Array(repeating: 0, count: 32)))
        }
        #expect(throws: CryptoError.invalidLength(what: "X25519 public key", expected: 32, actual: 31)) {
            try X25519.PublicKey(rawRepresentation: Array(repeating: 9, count: 31))
        }
        #expect(throws: CryptoError.invalidLength(what: "X25519 private key", expected: 32, actual: 33)) {
            try X25519.PrivateKey(rawRepresentation: SecureBytes(zeros: 33))
        }
    }
}

@Suite struct Ed25519Tests {
    @Test func signsDeterministicallyAndVerifies() throws {
        var generator = try ChaCha20Generator(publicSeed: Array(repeating: 2, count: 32))
        let key = Ed25519.PrivateKey(using: &generator)
        let message = Array("round 3, survivors 1 2 4".utf8)
        let signature = key.signature(for: message)
        #expect(signature == key.signature(for: message))
        #expect(key.publicKey.isValidSignature(signature, for: message))
        let again = try Ed25519.PrivateKey(seed: key.seed)
        #expect(again.publicKey == key.publicKey)
    }

    @Test func rejectsTamperingAndWrongLengths() throws {
        let key = Ed25519.PrivateKey()
        let message: [UInt8] = [1, 2, 3]
        var signature = key.signature(for: message)
        #expect(!key.publicKey.isValidSignature(signature, for: [1, 2, 4]))
        #expect(!Ed25519.PrivateKey().publicKey.isValidSignature(signature, for: message))
        #expect(!key.publicKey.isValidSignature(Array(signature.dropLast()), for: message))
        #expect(!key.publicKey.isValidSignature(signature + [0], for: message))
        signature[10] ^= 0x40
        #expect(!key.publicKey.isValidSignature(signature, for: message))
        #expect(throws: CryptoError.self) { try Ed25519.PrivateKey(seed: SecureBytes(zeros: 31)) }
        #expect(throws: CryptoError.self) { try Ed25519.PublicKey(rawRepresentation: []) }
    }
}

@Suite struct XChaCha20Poly1305Tests {
    @Test func sealsAndOpensWithAssociatedData() throws {
        let key = XChaCha20Poly1305.Key()
        let nonce = XChaCha20Poly1305.Nonce()
        let plaintext = SecureBytes(copying: Array("a Shamir share".utf8))
        let sealed = XChaCha20Poly1305.seal(plaintext, using: key, nonce: nonce, authenticating: [7, 7])
        #expect(sealed.count == plaintext.count + XChaCha20Poly1305.tagByteCount)
        #expect(try XChaCha20Poly1305.open(sealed, using: key, nonce: nonce, authenticating: [7, 7]) == plaintext)
        let empty = XChaCha20Poly1305.seal(SecureBytes(zeros: 0), using: key, nonce: nonce)
        #expect(try XChaCha20Poly1305.open(empty, using: key, nonce: nonce).isEmpty)
    }

    @Test func anyChangeFailsAuthentication() throws {
        let key = XChaCha20Poly1305.Key()
        let nonce = XChaCha20Poly1305.Nonce()
        let sealed = XChaCha20Poly1305.seal(
            SecureBytes(copying: [1, 2, 3]), using: key, nonce: nonce, authenticating: [9])
        var flipped = sealed
        flipped[0] ^= 1
        let failures: [() throws -> SecureBytes] = [
            { try XChaCha20Poly1305.open(flipped, using: key, nonce: nonce, authenticating: [9]) },
            { try XChaCha20Poly1305.open(sealed, using: key, nonce: nonce, authenticating: [8]) },
            { try XChaCha20Poly1305.open(sealed, using: key, nonce: XChaCha20Poly1305.Nonce(), authenticating: [9]) },
            { try XChaCha20Poly1305.open(sealed, using: XChaCha20Poly1305.Key(), nonce: nonce, authenticating: [9]) },
            { try XChaCha20Poly1305.open(Array(sealed.dropLast()), using: key, nonce: nonce, authenticating: [9]) },
            { try XChaCha20Poly1305.open(Array(sealed.prefix(15)), using: key, nonce: nonce, authenticating: [9]) },
        ]
        for attempt in failures { #expect(throws: CryptoError.authenticationFailure) { try attempt() } }
    }
}

@Suite struct SigningKeyAgreementTests {
    @Test func bothEndsOfAnEd25519PairAgreeOnOneSecret() throws {
        let a = Ed25519.PrivateKey()
        let b = Ed25519.PrivateKey()
        let ab = try a.agreementKey().sharedSecret(with: try b.publicKey.agreementKey())
        let ba = try b.agreementKey().sharedSecret(with: try a.publicKey.agreementKey())
        #expect(ab == ba)
        #expect(try a.agreementKey().publicKey == (try a.publicKey.agreementKey()))
        let c = Ed25519.PrivateKey()
        #expect(try a.agreementKey().sharedSecret(with: try c.publicKey.agreementKey()) != ab)
    }

    @Test func aPointOutsideTheGroupIsRefused() throws {
        // The identity point (0, 1) encodes as 01 00 … 00: small order, refused by libsodium.
        let identity = try Ed25519.PublicKey(rawRepresentation: [1] + [UInt8](repeating: 0, count: 31))
        #expect(throws: CryptoError.self) { try identity.agreementKey() }
    }
}
