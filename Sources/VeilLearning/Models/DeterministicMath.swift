/// Functions whose every result is fixed by IEEE-754 binary64 arithmetic alone, so that Veil's
/// trainer gives bit-identical updates on every machine and in every language that follows
/// `Specs/learning.md` §2.1 — the browser participant's JavaScript and the Python reference
/// included. The C library's `exp` differs between libraries (glibc, V8's fdlibm port) and
/// even between CPUs (glibc picks an FMA variant at run time) in the last bit.
///
/// Only +, −, ×, / of doubles (each correctly rounded, none fused: Swift never contracts
/// `a * b + c` into a fused multiply-add unless asked) and exact scaling by powers of two.
public enum DeterministicMath {
    /// exp overflows above this: 0x1.62e42fefa39efp+9 (≈ 709.78).
    static let overflowThreshold = 0x1.62e42fefa39efp+9
    /// exp is below half the least subnormal under this: −0x1.74910d52d3051p+9 (≈ −745.13).
    static let underflowThreshold = -0x1.74910d52d3051p+9
    /// ln 2 in two parts: the high part has 32 significant bits, so k·ln2Hi is exact for |k| ≤ 1075.
    static let ln2Hi = 0x1.62e42feep-1
    static let ln2Lo = 0x1.a39ef35793c76p-33
    static let invLn2 = 0x1.71547652b82fep+0
    /// The Remez coefficients of fdlibm's e_exp.c (R(r²) ≈ r·(exp(r) + 1)/(exp(r) − 1) − 2).
    static let p1 = 0x1.555555555553ep-3
    static let p2 = -0x1.6c16c16bebd93p-9
    static let p3 = 0x1.1566aaf25de2cp-14
    static let p4 = -0x1.bbd41c5d26bf1p-20
    static let p5 = 0x1.6376972bea4d0p-25

    /// e^x to within 1 ulp (fdlibm's algorithm with a fixed range reduction), the same bits
    /// everywhere: NaN for NaN, +∞ above ``overflowThreshold``, +0 below ``underflowThreshold``.
    @inline(__always)
    public static func exp(_ x: Double) -> Double {
        if x.isNaN { return x }
        if x > overflowThreshold { return .infinity }
        if x < underflowThreshold { return 0 }
        // k = round(x / ln 2), ties up: x·invLn2 + 0.5 is exact enough (|x·invLn2| < 1076).
        let kd = (x * invLn2 + 0.5).rounded(.down)
        let k = Int(kd)
        let hi = x - kd * ln2Hi
        let lo = kd * ln2Lo
        let r = hi - lo
        let t = r * r
        let c = r - t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5))))
        let y = 1 - ((lo - (r * c) / (2 - c)) - hi)
        if k == 0 { return y }
        if k == 1024 { return (y * 2) * powerOfTwo(1023) }
        if k >= -1021 { return y * powerOfTwo(k) }
        // A subnormal result: one rounding, in the last multiplication.
        return (y * powerOfTwo(k + 1000)) * powerOfTwo(-1000)
    }

    /// 2^n for −1022 ≤ n ≤ 1023, exactly.
    @inline(__always)
    static func powerOfTwo(_ n: Int) -> Double { Double(bitPattern: UInt64(n + 1023) << 52) }
}
