import CSodium

/// libsodium, initialised once, lazily, before the first primitive runs.
enum Sodium {
    /// Swift runs a global's initializer exactly once, thread-safely, on first use.
    private static let initialization: Int32 = sodium_init()

    /// Initialises libsodium if that has not happened yet.
    ///
    /// `sodium_init` returns 0 the first time, 1 when already initialised, −1 when the
    /// library cannot work at all (no entropy source): nothing in Veil can run then.
    @inline(__always)
    static func ensureInitialized() {
        precondition(initialization >= 0, "libsodium could not be initialised (sodium_init returned -1)")
    }

    /// Turns a libsodium return code into a typed error: the one place C failures become Swift errors.
    @inline(__always)
    static func check(_ code: Int32, _ function: StaticString) throws(CryptoError) {
        guard code == 0 else { throw .libsodiumFailure(function: "\(function)", code: code) }
    }
}

/// Wipes memory with `sodium_memzero`, which the compiler may not optimise away.
@inline(__always)
func memzero(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
    sodium_memzero(pointer, count)
}
