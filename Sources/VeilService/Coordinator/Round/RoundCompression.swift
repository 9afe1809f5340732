import Foundation
import VeilCore
import VeilLearning
import VeilPaillier

/// A round's payload ring and coordinate subset (`Specs/export.md` §5): serve.json's
/// `payload_bits` and `subset`, or with `adaptive_compression` the least compression under
/// which no more of the cohort would miss the round deadline, by the links they reported, than
/// the coordinator's threat model expects to drop out.
struct RoundCompression: Hashable, Sendable {
    let ring: BitWidth
    let subset: CoordinateSubset?

    /// The values each member sends.
    func dimension(payloadLength: Int) -> Int { subset.map(\.indices.count) ?? payloadLength }

    /// Round `round`'s compression for a cohort whose members reported `links` (bits per
    /// second, 0 for none).
    /// - Parameter paillierKeyBits: |n| in Paillier rounds (the payload is ciphertexts), nil in
    ///   masking rounds.
    static func choose(
        _ c: ServeConfiguration, round: Int, payloadLength: Int, links: [UInt64], paillierKeyBits: Int?
    ) throws -> RoundCompression {
        func subset(_ fraction: Double) throws -> CoordinateSubset {
            try CoordinateSubset(
                length: payloadLength, size: CoordinateSubset.size(length: payloadLength, fraction: fraction),
                seed: CoordinateSubset.seed(runSeed: c.seed, round: round))
        }
        guard let adaptive = c.adaptiveCompression else {
            return RoundCompression(ring: try BitWidth(c.payloadBits), subset: try c.subset.map(subset))
        }
        // The codec keeps ⌈log₂ K⌉ bits of headroom so that K addends cannot wrap; the ring is
        // what is left for the value plus that.
        let headroom = Int(log2(Double(max(links.count, 2))).rounded(.up))
        // Unverifiable reports may tilt the choice, never force it: members that would miss the
        // deadline are tolerated up to the dropouts the threat model already budgets for, so a
        // few who understate their links cannot push every round to the floors.
        let tolerated = Int((c.dropoutFraction * Double(links.count)).rounded(.down))
        var choice: RoundCompression?
        for (bits, fraction) in try adaptive.bounds.candidates {
            let candidate = RoundCompression(
                ring: try BitWidth(min(64, max(8, bits + headroom))), subset: fraction < 1 ? try subset(fraction) : nil)
            choice = candidate
            let bits = Double(
                try candidate.payloadBytes(
                    payloadLength: payloadLength, cohort: c.cohortSize, paillierKeyBits: paillierKeyBits)
                    * 8)
            let late = links.filter { $0 > 0 && bits / Double(min($0, 100_000_000_000)) > c.roundDeadlineSeconds }
            if late.count <= tolerated { break }
        }
        // candidates is never empty (AdaptiveCompression's init).
        return choice!
    }

    /// The bytes of one member's payload: ⌈b/8⌉ per value when masked; with Paillier, the
    /// packed plaintexts' ciphertexts, 2|n| bits each (`Specs/paillier.md` §8).
    func payloadBytes(payloadLength: Int, cohort: Int, paillierKeyBits: Int?) throws -> Int {
        let d = dimension(payloadLength: payloadLength)
        guard let keyBits = paillierKeyBits else { return d * ring.byteCount }
        let packing = try PaillierPacking(bitWidth: ring, maxAddends: cohort, keyBits: keyBits)
        return packing.plaintextCount(dimension: d) * 2 * ((keyBits + 7) / 8)
    }
}
