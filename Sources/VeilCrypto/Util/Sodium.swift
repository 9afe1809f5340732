import CSodium

/// libsodium, initialised once, lazily, before the first primitive runs, and the one place
/// where its return codes are read.
public enum Sodium {
    /// Swift runs a global's initializer exactly once, thread-safely, on first use.
    private static let initialization: Int32 = sodium_init()

    /// Initialises libsodium if that has not happened yet.
    ///
    /// `sodium_init` returns 0 the first time, 1 when already initialised, −1 when the
    /// library cannot work at all (no entropy source): nothing in Veil can run then.
    @inline(__always)
    public static func ensureInitialized() {
        precondition(initialization >= 0, "libsodium could not be initialised (sodium_init returned -1)")
    }

    /// Turns a libsodium return code into a typed error: the one place C failures become Swift errors.
    /// - Parameters:
    ///   - code: what the call returned; 0 is success.
    ///   - function: the libsodium function, named in the error.
    ///   - failure: the error that the failure means, where it has a meaning of its own (a
    ///     forged ciphertext, a small-order point); by default
    ///     ``CryptoError/libsodiumFailure(function:code:)``.
    /// - Throws: `failure` unless `code` is 0.
    @inline(__always)
    public static func check(_ code: Int32, _ function: StaticString, failure: CryptoError? = nil) throws(CryptoError) {
        guard code == 0 else { throw failure ?? .libsodiumFailure(function: "\(function)", code: code) }
    }

    /// ``check(_:_:failure:)`` for a call that cannot fail: a failure stops the process.
    ///
    /// Why trap instead of throw. These calls are the hash, HMAC, signing, sealing, key
    /// derivation and keystream calls whose Swift APIs are non-throwing and used everywhere
    /// (`SHA256.hash`, `Ed25519.PrivateKey.signature(for:)`, `XChaCha20Poly1305.seal`,
    /// ``MaskExpander``, ``ChaCha20Generator``). libsodium 1.0.18 implements each of them as
    /// `return 0` for every argument it does not abort on: the only checks it makes are on
    /// sizes (a message longer than its `*_MESSAGEBYTES_MAX`, a ChaCha20 counter past 2^32
    /// blocks), and those call `sodium_misuse()`, which aborts before any code is returned.
    /// Every key, seed, nonce, state and output buffer passed here has the size the C
    /// function expects by construction of its Swift type (checked once, where the type is
    /// made), and the lengths are bounded by the callers' own preconditions. A non-zero code
    /// would therefore mean a broken libsodium, not bad input: no caller could act on an
    /// error, and making all those APIs `throws` would only spread `try` over code that
    /// cannot fail. So the code is still read — the day a libsodium release adds a failure
    /// path, Veil stops loudly instead of carrying on with an unwritten buffer.
    ///
    /// Calls whose failure is a possible answer (decryption, verification, point
    /// conversion, agreement with a peer's key) use ``check(_:_:failure:)`` or are predicates.
    ///
    /// The hot paths (``MaskExpander``, ``ChaCha20Generator``) inline only the comparison; the
    /// report is out of line.
    @inline(__always)
    public static func checkCannotFail(_ code: Int32, _ function: StaticString) {
        if code != 0 { failureThatCannotHappen(code, function) }
    }

    @inline(never)
    private static func failureThatCannotHappen(_ code: Int32, _ function: StaticString) -> Never {
        do throws(CryptoError) {
            try check(code, function)
        } catch {
            // fatalError, not preconditionFailure: the message must survive release builds.
            fatalError("\(error), which it cannot for the fixed-size arguments Veil passes")
        }
        fatalError("libsodium \(function) returned \(code)")  // not reached: check threw
    }
}

/// Wipes memory with `sodium_memzero`, which the compiler may not optimise away.
@inline(__always)
func memzero(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
    sodium_memzero(pointer, count)
}
