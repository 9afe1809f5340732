import CGMP
import Glibc
import VeilCrypto

/// An arbitrary-precision integer on GMP: a value type over a `final class` that owns the
/// `mpz_t`, clears it in `deinit` and, for secrets, overwrites its limbs first (GMP frees
/// without wiping). The `mpz_t` lives behind a stable heap pointer, so an operation may name
/// the same storage as input and output (`mpz_add(a, a, b)`) without tripping Swift's
/// exclusivity rules.
///
/// Every operation returns a new value; a result is secret when any operand is. Secrets never
/// print: their `description` is redacted.
public struct BigInt: Sendable {
    final class Storage: @unchecked Sendable {
        // Immutable once the initializing operation has written it.
        let pointer: UnsafeMutablePointer<__mpz_struct>
        let isSecret: Bool

        init(secret: Bool) {
            pointer = .allocate(capacity: 1)
            veil_mpz_init(pointer)
            isSecret = secret
        }

        deinit {
            if isSecret { veil_mpz_wipe(pointer) }
            veil_mpz_clear(pointer)
            pointer.deallocate()
        }
    }

    let storage: Storage

    /// Whether the value is a secret (wiped on release, redacted in descriptions).
    public var isSecret: Bool { storage.isSecret }

    var pointer: UnsafeMutablePointer<__mpz_struct> { storage.pointer }

    /// A fresh integer written by `body` through the output pointer.
    init(secret: Bool, _ body: (UnsafeMutablePointer<__mpz_struct>) -> Void) {
        storage = Storage(secret: secret)
        body(storage.pointer)
    }

    // MARK: Creating

    /// An integer from a machine integer.
    public init(_ value: Int) {
        self.init(secret: false) { veil_mpz_set_si($0, value) }
    }

    /// Parses a decimal string (an optional leading minus, then digits). Nil for anything else.
    public init?(decimal text: String, secret: Bool = false) {
        let bytes = Array(text.utf8)[...]
        let negative = bytes.first == UInt8(ascii: "-")
        guard let magnitude = BigInt(decimalDigits: negative ? bytes.dropFirst() : bytes, secret: secret) else {
            return nil
        }
        self = negative ? -magnitude : magnitude
    }

    /// Parses unsigned ASCII decimal digits straight from bytes (a line of a ciphertext file),
    /// without building a `String`. Nil for an empty input or any byte that is not a digit.
    init?(decimalDigits bytes: ArraySlice<UInt8>, secret: Bool = false) {
        let storage = Storage(secret: secret)
        let status = bytes.withUnsafeBufferPointer { digits -> Int32 in
            guard !digits.isEmpty else { return -1 }
            for byte in digits where byte &- UInt8(ascii: "0") >= 10 { return -1 }
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: digits.count + 1) { buffer in
                _ = buffer.initialize(fromContentsOf: digits)
                buffer[digits.count] = 0
                return buffer.withMemoryRebound(to: CChar.self) {
                    veil_mpz_set_str(storage.pointer, $0.baseAddress!, 10)  // capacity ≥ 2
                }
            }
        }
        guard status == 0 else { return nil }
        self.storage = storage
    }

    /// The non-negative integer whose big-endian encoding is `bytes`.
    public init(bigEndian bytes: some Collection<UInt8>, secret: Bool = false) {
        let array = Array(bytes)
        self.init(secret: secret) { out in
            if array.isEmpty {
                veil_mpz_set_ui(out, 0)
            } else {
                array.withUnsafeBytes { veil_mpz_import_be(out, array.count, $0.baseAddress) }
            }
        }
    }

    /// The non-negative integer of a secret's bytes, big-endian.
    public init(bigEndian bytes: SecureBytes) {
        self.init(secret: true) { out in
            bytes.withUnsafeBytes { raw in
                if raw.isEmpty { veil_mpz_set_ui(out, 0) } else { veil_mpz_import_be(out, raw.count, raw.baseAddress) }
            }
        }
    }

    /// A uniformly random integer in 0..<2^bits from libsodium's generator.
    public static func random(bits: Int, secret: Bool = true) -> BigInt {
        let bytes = SecureBytes.random(count: (bits + 7) / 8)
        let value = BigInt(bigEndian: bytes)
        let excess = (bits + 7) / 8 * 8 - bits
        let reduced = excess == 0 ? value : value.truncated(toBits: bits)
        return secret ? reduced : reduced.declassified()
    }

    /// A uniformly random integer in 0..<2^bits from an injected generator: ⌈bits/8⌉ bytes drawn
    /// as in `Specs/primitives.md` §3.2, read big-endian, reduced mod 2^bits.
    public static func random(bits: Int, using generator: inout some RandomNumberGenerator) -> BigInt {
        BigInt(bigEndian: SecureBytes.random(count: (bits + 7) / 8, using: &generator)).truncated(toBits: bits)
    }

    /// A uniformly random integer in 0..<bound, by rejection.
    public static func random(below bound: BigInt, secret: Bool = true) -> BigInt {
        precondition(bound.signum > 0, "random below a non-positive bound")
        let bits = bound.bitWidth
        while true {
            let candidate = random(bits: bits, secret: secret)
            if candidate < bound { return candidate }
        }
    }

    /// The same value, marked as secret (wiped on release, redacted).
    public func asSecret() -> BigInt { BigInt(secret: true) { veil_mpz_set($0, pointer) } }

    /// The same value as a public one: for results that are meant to be published.
    public func declassified() -> BigInt { BigInt(secret: false) { veil_mpz_set($0, pointer) } }

    // MARK: Reading

    /// The sign: −1, 0 or 1.
    public var signum: Int { Int(veil_mpz_sgn(pointer)) }

    /// The number of bits of |self| (0 for zero).
    public var bitWidth: Int { signum == 0 ? 0 : veil_mpz_sizeinbase(pointer, 2) }

    /// Whether bit `index` of |self| is set.
    public func bit(_ index: Int) -> Bool { veil_mpz_tstbit(pointer, mp_bitcnt_t(index)) != 0 }

    /// |self| as exactly `width` big-endian bytes.
    /// - Throws: ``BigIntError/doesNotFit(bits:width:)`` when |self| needs more.
    public func bigEndianBytes(width: Int) throws(BigIntError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width)
        let fits = out.withUnsafeMutableBufferPointer { veil_mpz_export_be(pointer, width, $0.baseAddress) }
        guard fits == 1 else { throw .doesNotFit(bits: bitWidth, width: width) }
        return out
    }

    /// The decimal digits (with a leading minus when negative).
    public var decimal: String {
        // With a NULL buffer mpz_get_str allocates (GMP aborts when it cannot), never returns NULL.
        let cString = veil_mpz_get_str(nil, 10, pointer)!
        defer { free(cString) }
        return String(cString: cString)
    }

    /// The value as an `Int`, when it fits.
    public var intValue: Int? {
        guard bitWidth < 63 else { return nil }
        let magnitude = Int(veil_mpz_get_ui(pointer))
        return signum < 0 ? -magnitude : magnitude
    }

    // MARK: Arithmetic

    private func combined(
        _ other: BigInt,
        _ op: (UnsafeMutablePointer<__mpz_struct>, UnsafePointer<__mpz_struct>, UnsafePointer<__mpz_struct>) -> Void
    ) -> BigInt {
        BigInt(secret: isSecret || other.isSecret) { op($0, pointer, other.pointer) }
    }

    public static func + (a: BigInt, b: BigInt) -> BigInt { a.combined(b) { veil_mpz_add($0, $1, $2) } }
    public static func - (a: BigInt, b: BigInt) -> BigInt { a.combined(b) { veil_mpz_sub($0, $1, $2) } }
    public static func * (a: BigInt, b: BigInt) -> BigInt { a.combined(b) { veil_mpz_mul($0, $1, $2) } }
    public static prefix func - (a: BigInt) -> BigInt { BigInt(secret: a.isSecret) { veil_mpz_neg($0, a.pointer) } }

    /// ⌊a / b⌋ (floor division).
    public static func / (a: BigInt, b: BigInt) -> BigInt {
        precondition(b.signum != 0, "division by zero")
        return a.combined(b) { veil_mpz_fdiv_q($0, $1, $2) }
    }

    /// a mod m, in 0..<|m|.
    public func modulo(_ m: BigInt) -> BigInt {
        precondition(m.signum != 0, "modulo zero")
        return combined(m) { veil_mpz_mod($0, $1, $2) }
    }

    /// a / b for b dividing a exactly (faster than floor division).
    public func dividedExactly(by b: BigInt) -> BigInt { combined(b) { veil_mpz_divexact($0, $1, $2) } }

    /// self · 2^bits.
    public func shiftedLeft(_ bits: Int) -> BigInt {
        BigInt(secret: isSecret) { veil_mpz_mul_2exp($0, pointer, mp_bitcnt_t(bits)) }
    }

    /// ⌊self / 2^bits⌋.
    public func shiftedRight(_ bits: Int) -> BigInt {
        BigInt(secret: isSecret) { veil_mpz_fdiv_q_2exp($0, pointer, mp_bitcnt_t(bits)) }
    }

    /// self mod 2^bits.
    public func truncated(toBits bits: Int) -> BigInt {
        BigInt(secret: isSecret) { veil_mpz_fdiv_r_2exp($0, pointer, mp_bitcnt_t(bits)) }
    }

    /// self^exponent mod m, variable time: only for public base and exponent.
    public func power(_ exponent: BigInt, modulo m: BigInt) -> BigInt {
        precondition(exponent.signum >= 0 && m.signum > 0, "powm needs a non-negative exponent and a positive modulus")
        if isSecret || exponent.isSecret { return securePower(exponent, modulo: m) }
        return BigInt(secret: false) { veil_mpz_powm($0, pointer, exponent.pointer, m.pointer) }
    }

    /// self^exponent mod m in time independent of the base and exponent values (`mpz_powm_sec`):
    /// for secret bases or exponents. The modulus must be odd; a zero exponent gives 1.
    public func securePower(_ exponent: BigInt, modulo m: BigInt) -> BigInt {
        precondition(m.signum > 0 && m.bit(0), "mpz_powm_sec needs an odd positive modulus")
        precondition(exponent.signum >= 0, "negative exponent")
        if exponent.signum == 0 { return BigInt(1).modulo(m) }
        return BigInt(secret: isSecret || exponent.isSecret || m.isSecret) {
            veil_mpz_powm_sec($0, pointer, exponent.pointer, m.pointer)
        }
    }

    /// The inverse modulo m, or nil when gcd(self, m) ≠ 1.
    public func inverse(modulo m: BigInt) -> BigInt? {
        var ok: Int32 = 0
        let result = BigInt(secret: isSecret || m.isSecret) { ok = veil_mpz_invert($0, pointer, m.pointer) }
        return ok != 0 ? result : nil
    }

    public static func gcd(_ a: BigInt, _ b: BigInt) -> BigInt { a.combined(b) { veil_mpz_gcd($0, $1, $2) } }
    public static func lcm(_ a: BigInt, _ b: BigInt) -> BigInt { a.combined(b) { veil_mpz_lcm($0, $1, $2) } }

    /// Miller–Rabin with `rounds` bases after trial division (GMP's `mpz_probab_prime_p`).
    public func isProbablePrime(rounds: Int = 40) -> Bool { veil_mpz_probab_prime_p(pointer, Int32(rounds)) > 0 }
}

extension BigInt: Equatable, Hashable, Comparable {
    public static func == (a: BigInt, b: BigInt) -> Bool { veil_mpz_cmp(a.pointer, b.pointer) == 0 }
    public static func < (a: BigInt, b: BigInt) -> Bool { veil_mpz_cmp(a.pointer, b.pointer) < 0 }
    public func hash(into hasher: inout Hasher) { hasher.combine(decimal) }
}

extension BigInt: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self.init(value) }
}

extension BigInt: CustomStringConvertible {
    /// The decimal value, or a redaction for secrets.
    public var description: String { isSecret ? "BigInt(\(bitWidth) bits, redacted)" : decimal }
}

/// A failed conversion.
public enum BigIntError: Error, Hashable, Sendable, CustomStringConvertible {
    case doesNotFit(bits: Int, width: Int)

    public var description: String {
        switch self {
        case .doesNotFit(let bits, let width): "an integer of \(bits) bits does not fit in \(width) bytes"
        }
    }
}
