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

    /// Creates a threat model.
    /// - Throws: ``SecAggParameterError/invalidThreatModel(_:)`` unless γ and δ are in [0, 1),
    ///   γ + δ < 1, and 1 ≤ σ ≤ 128.
    public init(adversary: Adversary, corruptFraction: Double, dropoutFraction: Double, securityBits: Int = 40)
        throws(SecAggParameterError)
    {
        guard (0..<1).contains(corruptFraction), (0..<1).contains(dropoutFraction),
            corruptFraction + dropoutFraction < 1
        else {
            throw .invalidThreatModel(
                "corrupt fraction \(corruptFraction) and dropout fraction \(dropoutFraction) must be in [0, 1) with a sum below 1"
            )
        }
        guard (1...128).contains(securityBits) else {
            throw .invalidThreatModel("security bits \(securityBits) must be in 1...128")
        }
        self.adversary = adversary
        self.corruptFraction = corruptFraction
        self.dropoutFraction = dropoutFraction
        self.securityBits = securityBits
    }

    /// The honest-but-curious default of `Specs/secagg.md`: 5% corrupt, 33% dropout, 2^−40.
    public static let honestButCurious = try! ThreatModel(  // constants within range
        adversary: .honestButCuriousServer, corruptFraction: 0.05, dropoutFraction: 0.33)

    /// The malicious-server default: 5% corrupt, 33% dropout, 2^−40.
    public static let malicious = try! ThreatModel(  // constants within range
        adversary: .maliciousServer, corruptFraction: 0.05, dropoutFraction: 0.33)

    /// n_C = ⌊γ·n⌋: how many of n participants may be corrupt.
    public func corruptCount(of clientCount: Int) -> Int {
        Int((corruptFraction * Double(clientCount)).rounded(.down))
    }

    /// ⌊δ·n⌋: how many of n participants are expected to drop out.
    public func dropoutCount(of clientCount: Int) -> Int {
        Int((dropoutFraction * Double(clientCount)).rounded(.down))
    }

    public var description: String {
        let name = adversary == .honestButCuriousServer ? "honest-but-curious server" : "malicious server"
        let percent = { (x: Double) in String(format: "%.3g%%", x * 100) }
        return "\(name), \(percent(corruptFraction)) corrupt, \(percent(dropoutFraction)) dropout, 2^-\(securityBits)"
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
