import Foundation

/// Whom the protocol must resist, and with what confidence. It decides which thresholds
/// and graphs ``SecAggParameters`` accepts (`Specs/secagg.md`, "Threat model").
public struct ThreatModel: Hashable, Sendable, CustomStringConvertible {
    /// What the server may do.
    public enum Adversary: UInt8, Hashable, Sendable, CaseIterable {
        /// The server follows the protocol but tries to learn inputs from what it sees,
        /// possibly together with corrupt participants (Bonawitz et al. 2017, Theorem 6.3).
        case honestButCuriousServer = 0
        /// The server deviates at will: it may lie about who dropped out, send different
        /// participants different views, and drop honest participants on purpose.
        case maliciousServer = 1
    }

    /// The server's power.
    public let adversary: Adversary
    /// γ: the fraction of participants that may be corrupt and collude with the server.
    public let corruptFraction: Double
    /// δ: the fraction of participants expected to drop out (sparse-graph connectivity and
    /// the correctness estimate depend on it).
    public let dropoutFraction: Double
    /// σ: probabilistic conditions must fail with probability at most 2^−σ.
    public let securityBits: Int
    /// γ and δ as the exact decimals they are written as (0.29 is 29/100, not the binary
    /// double nearest to it), so that counts of participants never suffer rounding.
    let corrupt: DecimalFraction
    let dropout: DecimalFraction
    /// N, when each cohort is a uniform sample of N participants of whom ⌈γN⌉ may be
    /// corrupt (rather than any cohort having at most a fraction γ corrupt): n_C is then the
    /// 2^−σ tail of the hypergeometric count (`Specs/secagg.md` §2). Nil: γ bounds every cohort.
    public let population: Int?

    /// Creates a threat model.
    /// - Parameter population: N, when cohorts are sampled uniformly from N participants by
    ///   a party the adversary does not control (never the case for a malicious coordinator,
    ///   which picks the cohort itself).
    /// - Throws: ``SecAggParameterError/invalidThreatModel(_:)`` unless γ and δ are in [0, 1),
    ///   γ + δ < 1, 1 ≤ σ ≤ 128 and N ≥ 2.
    public init(
        adversary: Adversary, corruptFraction: Double, dropoutFraction: Double, securityBits: Int = 40,
        population: Int? = nil
    ) throws(SecAggParameterError) {
        guard (0..<1).contains(corruptFraction), (0..<1).contains(dropoutFraction),
            corruptFraction + dropoutFraction < 1,
            let corrupt = DecimalFraction(corruptFraction), let dropout = DecimalFraction(dropoutFraction)
        else {
            throw .invalidThreatModel(
                "corrupt fraction \(corruptFraction) and dropout fraction \(dropoutFraction) must be in [0, 1) with a sum below 1"
            )
        }
        guard (1...128).contains(securityBits) else {
            throw .invalidThreatModel("security bits \(securityBits) must be in 1...128")
        }
        guard (population ?? 2) >= 2 else {
            // The guard fails only for a population that is set.
            throw .invalidThreatModel("a population of \(population!) cannot be sampled from")
        }
        self.population = population
        self.adversary = adversary
        self.corruptFraction = corruptFraction
        self.dropoutFraction = dropoutFraction
        self.securityBits = securityBits
        self.corrupt = corrupt
        self.dropout = dropout
    }

    /// The honest-but-curious default of `Specs/secagg.md`: 5% corrupt, 33% dropout, 2^−40.
    public static let honestButCurious = try! ThreatModel(  // constants within range
        adversary: .honestButCuriousServer, corruptFraction: 0.05, dropoutFraction: 0.33)

    /// The malicious-server default: 5% corrupt, 33% dropout, 2^−40.
    public static let malicious = try! ThreatModel(  // constants within range
        adversary: .maliciousServer, corruptFraction: 0.05, dropoutFraction: 0.33)

    /// n_C = max(1, ⌈γ·n⌉): how many of n participants may be corrupt. Rounded up, because a
    /// fraction of a corrupt participant is a whole one; never below one, because a server
    /// colluding with a single participant must not learn an input (with n_C = 0 the rules
    /// below would allow t = 1, where every Shamir share is the secret itself).
    public func corruptCount(of clientCount: Int) -> Int {
        guard let population, clientCount < population else {
            return max(1, corrupt.ceilingOfProduct(with: clientCount))
        }
        // A uniform cohort of n from N with K = ⌈γN⌉ corrupt holds Hyp(N, K, n) of them: take
        // the smallest c with P[X > c] ≤ 2^−σ, summing the tail from the top.
        let marked = corrupt.ceilingOfProduct(with: population)
        let bound = exp2(-Double(securityBits))
        var tail = 0.0
        var c = min(marked, clientCount)
        while c > 0 {
            let next = tail + Hypergeometric.pmf(population, marked, clientCount, c)
            if next > bound { break }
            tail = next
            c -= 1
        }
        return max(1, c)
    }

    /// ⌊δ·n⌋: how many of n participants are expected to drop out.
    public func dropoutCount(of clientCount: Int) -> Int {
        dropout.floorOfProduct(with: clientCount)
    }

    public var description: String {
        let name = adversary == .honestButCuriousServer ? "honest-but-curious server" : "malicious server"
        let percent = { (x: Double) in String(format: "%.3g%%", x * 100) }
        let sampled = population.map { " of a population of \($0)" } ?? ""
        return
            "\(name), \(percent(corruptFraction)) corrupt\(sampled), \(percent(dropoutFraction)) dropout, 2^-\(securityBits)"
    }
}

/// Tail probabilities of the hypergeometric distribution: the number of marked clients among
/// k neighbours drawn without replacement from the n − 1 others (a random Harary graph gives
/// each client a uniformly random neighbourhood).
enum Hypergeometric {
    /// P[X ≥ x] for X ~ Hypergeometric(population, marked, draws).
    static func upperTail(population: Int, marked: Int, draws: Int, atLeast x: Int) -> Double {
        let top = min(marked, draws)
        guard x <= top else { return 0 }
        return (max(x, 0)...top).reduce(0) { $0 + pmf(population, marked, draws, $1) }
    }

    /// P[X < x].
    static func lowerTail(population: Int, marked: Int, draws: Int, below x: Int) -> Double {
        let bottom = max(0, draws - (population - marked))
        guard x > bottom else { return 0 }
        return (bottom..<min(x, min(marked, draws) + 1)).reduce(0) { $0 + pmf(population, marked, draws, $1) }
    }

    static func pmf(_ population: Int, _ marked: Int, _ draws: Int, _ x: Int) -> Double {
        guard x >= 0, x <= marked, draws - x >= 0, draws - x <= population - marked else { return 0 }
        return exp(logChoose(marked, x) + logChoose(population - marked, draws - x) - logChoose(population, draws))
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }
}

/// A non-negative decimal number as an exact fraction m / 10^e, read from the shortest decimal
/// that round-trips the double (Swift's `description`): 0.29 becomes 29/100. Products with
/// participant counts are then exact, where `0.29 * 100` in binary floating point is
/// 28.999999999999996 and its floor 28.
struct DecimalFraction: Hashable, Sendable {
    let numerator: UInt64
    /// 10^exponent.
    let denominator: UInt64

    /// Nil for a negative, non-finite, or too finely written value (more than 18 decimal places).
    init?(_ value: Double) {
        guard value.isFinite, value >= 0 else { return nil }
        var text = "\(value)".lowercased()
        var exponent = 0
        if let e = text.firstIndex(of: "e") {
            guard let power = Int(text[text.index(after: e)...]) else { return nil }
            exponent = power
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return nil }
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        var digits = String(parts[0]) + fraction
        var places = fraction.count - exponent
        while places < 0 {
            digits += "0"
            places += 1
        }
        while places > 0, digits.count > 1, digits.hasSuffix("0") {
            digits.removeLast()
            places -= 1
        }
        guard places <= 18, let numerator = UInt64(digits) else { return nil }
        var denominator: UInt64 = 1
        for _ in 0..<places { denominator *= 10 }
        self.numerator = numerator
        self.denominator = denominator
    }

    /// ⌈numerator · n / denominator⌉, exactly (128-bit intermediate).
    func ceilingOfProduct(with n: Int) -> Int {
        let (quotient, remainder) = divide(n)
        return Int(quotient) + (remainder > 0 ? 1 : 0)
    }

    /// ⌊numerator · n / denominator⌋, exactly.
    func floorOfProduct(with n: Int) -> Int { Int(divide(n).quotient) }

    private func divide(_ n: Int) -> (quotient: UInt64, remainder: UInt64) {
        precondition(n >= 0, "a count of participants")
        let product = numerator.multipliedFullWidth(by: UInt64(n))
        // The fraction is below 1 in every use, so the quotient is at most n and fits.
        return denominator.dividingFullWidth(product)
    }
}
