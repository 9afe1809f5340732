import Foundation
import VeilCore
import VeilLearning
import VeilPaillier

/// A round's payload ring and coordinate subset (`Specs/export.md` §5): serve.json's
/// `payload_bits` and `subset`, or with `adaptive_compression` the least compression under
/// which no more of the cohort would miss the round deadline, by the links they reported, than
/// ``tolerance(_:cohort:)`` allows.
struct RoundCompression: Hashable, Sendable {
    let ring: BitWidth
    let subset: CoordinateSubset?
    /// With privacy, each participant clips the subset's scaled values to privacy.clip
    /// (`Specs/export.md` §5.4), so the codec need not hold the scaled clip.
    var clippedAfterScaling = false

    /// The values each member sends.
    func dimension(payloadLength: Int) -> Int { subset.map(\.indices.count) ?? payloadLength }

    /// Round `round`'s compression for a cohort whose members reported `links` (bits per
    /// second, 0 for none).
    /// - Parameters:
    ///   - survivable: how many members the round's sum survives losing (n − t; 0 for Paillier).
    ///   - paillierKeyBits: |n| in Paillier rounds (the payload is ciphertexts), nil in masking
    ///     rounds.
    ///   - privacy: with privacy the ring stays payload_bits (the distributed mechanism's, for
    ///     the payload it sends) and only the subset adapts (`Specs/export.md` §5.4).
    static func choose(
        _ c: ServeConfiguration, round: Int, payloadLength: Int, links: [UInt64], survivable: Int,
        paillierKeyBits: Int?, privacy: ServicePrivacyPlan? = nil
    ) throws -> RoundCompression {
        func subset(_ fraction: Double) throws -> CoordinateSubset {
            try CoordinateSubset(
                length: payloadLength, size: CoordinateSubset.size(length: payloadLength, fraction: fraction),
                seed: CoordinateSubset.seed(runSeed: c.seed, round: round))
        }
        let clipped = privacy != nil
        guard let adaptive = c.adaptiveCompression else {
            return RoundCompression(
                ring: try BitWidth(c.payloadBits), subset: try c.subset.map(subset), clippedAfterScaling: clipped)
        }
        let cohort = links.count
        let tolerated = try tolerance(c, cohort: cohort, survivable: survivable)
        let candidates: [(ring: BitWidth, fraction: Double)] =
            if privacy != nil {
                try adaptive.fractions.map { (try BitWidth(c.payloadBits), $0) }
            } else {
                try adaptive.bounds.candidates.map {
                    (try AdaptiveCompression.ring(bits: $0.bits, cohort: cohort), $0.fraction)
                }
            }
        var choice: RoundCompression?
        for (ring, fraction) in candidates {
            let candidate = RoundCompression(
                ring: ring, subset: fraction < 1 ? try subset(fraction) : nil, clippedAfterScaling: clipped)
            // A ring too narrow for payload_clip (validation refuses floors that are) is skipped,
            // never sent: no report can make a round impossible to encode.
            guard (try? candidate.codec(clip: c.payloadClip, addends: cohort)) != nil else { continue }
            choice = candidate
            let bytes =
                if let mechanism = try privacy?.distributed(subsetSize: candidate.subset?.size) {
                    mechanism.paddedDimension * mechanism.bitWidth.byteCount
                } else {
                    try candidate.payloadBytes(
                        payloadLength: payloadLength, cohort: c.cohortSize, paillierKeyBits: paillierKeyBits)
                }
            let bits = Double(bytes * 8)
            let late = links.filter { $0 > 0 && bits / Double(min($0, 100_000_000_000)) > c.roundDeadlineSeconds }
            if late.count <= tolerated { break }
        }
        guard let choice else {
            throw ConfigurationError(
                "adaptive_compression: no candidate ring holds \(cohort) payloads clipped to payload_clip \(c.payloadClip)"
            )
        }
        return choice
    }

    /// How many members may be late under a candidate that is still taken. Reports are not
    /// verifiable: every corrupt member the coordinator's threat model admits (n_C) may lie,
    /// and its dropout budget (⌊δK⌋) expects some to go anyway; the larger of the two are left
    /// to miss the deadline rather than compress every member's update, so that many liars
    /// cannot move the choice — but never more than the sum survives losing, or a slow member
    /// would abort every attempt that compression could have saved.
    static func tolerance(_ c: ServeConfiguration, cohort: Int, survivable: Int) throws -> Int {
        let model = try c.coordinatorThreatModel()
        return min(max(model.corruptCount(of: cohort), model.dropoutCount(of: cohort)), max(survivable, 0))
    }

    /// The codec of this compression for `addends` contributions: the clip (times the subset's
    /// scale, which the values sent are multiplied by, unless they are clipped after it) at
    /// the finest precision that cannot wrap.
    func codec(clip: Double, addends: Int) throws -> FixedPointCodec {
        let scale = clippedAfterScaling ? 1 : subset?.scale ?? 1
        return try FixedPointCodec.finest(clip: clip * scale, bitWidth: ring, maxAddends: addends)
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
