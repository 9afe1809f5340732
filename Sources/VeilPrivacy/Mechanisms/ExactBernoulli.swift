/// Exact Bernoulli trials with rational parameters, from uniform 64-bit words: the building
/// blocks of Canonne, Kamath, Steinke (NeurIPS 2020), "The Discrete Gaussian for Differential
/// Privacy", §5. No floating point, so no floating-point leakage (Mironov 2012).
///
/// How words are consumed is part of the specification (`Specs/privacy.md` §3), so that the
/// reference implementation reproduces every draw.
struct ExactBernoulli<Generator: RandomNumberGenerator> {
    var generator: Generator

    /// A uniform integer in [0, bound) by rejection: one word when bound ≤ 2^64 (reject words
    /// ≥ 2^64 − (2^64 mod bound)), otherwise two words (high, then low) and the same rule
    /// at 2^128.
    mutating func below(_ bound: UInt128) -> UInt128 {
        precondition(bound > 0, "an empty range")
        if bound <= UInt128(UInt64.max) + 1 {
            if bound == UInt128(UInt64.max) + 1 { return UInt128(generator.next()) }
            let b = UInt64(bound)
            let limit = UInt64.max - (UInt64.max % b + 1) % b  // the largest accepted word
            while true {
                let word = generator.next()
                if word <= limit { return UInt128(word % b) }
            }
        }
        let limit = UInt128.max - (UInt128.max % bound + 1) % bound
        while true {
            let high = UInt128(generator.next())
            let low = UInt128(generator.next())
            let word = high << 64 | low
            if word <= limit { return word % bound }
        }
    }

    /// Bernoulli(p/q), 0 ≤ p ≤ q.
    mutating func bernoulli(_ p: UInt128, over q: UInt128) -> Bool {
        precondition(q > 0 && p <= q, "a probability in [0, 1]")
        return below(q) < p
    }

    /// Bernoulli(e^{−γ}) for γ = p/q ∈ [0, 1] (CKS Algorithm 1, first part): draw
    /// A_k ~ Bernoulli(γ/k) for k = 1, 2, … until one is 0; true when that k is odd.
    mutating func bernoulliExpUnit(_ p: UInt128, over q: UInt128) -> Bool {
        var k: UInt128 = 1
        while true {
            let (scaled, overflow) = q.multipliedReportingOverflow(by: k)
            // Reaching k with q·k ≥ 2^128 has probability below 1/k! — never in practice;
            // the trial then counts as 0, which is what it almost surely is.
            if overflow || !bernoulli(p, over: scaled) { break }
            k += 1
        }
        return k % 2 == 1
    }

    /// Bernoulli(e^{−γ}) for any γ = p/q ≥ 0 (CKS Algorithm 1): ⌊γ⌋ trials of e^{−1}, then
    /// one of e^{−(γ − ⌊γ⌋)}.
    mutating func bernoulliExp(_ p: UInt128, over q: UInt128) -> Bool {
        precondition(q > 0, "a zero denominator")
        var whole = p / q
        while whole > 0 {
            if !bernoulliExpUnit(1, over: 1) { return false }
            whole -= 1
        }
        return bernoulliExpUnit(p % q, over: q)
    }
}
