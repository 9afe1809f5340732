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
    ///   - privacy: under distributed DP the ring is the round's mechanism's, and a candidate
    ///     without a calibrated mechanism is skipped; under central DP only the subset adapts
    ///     (`Specs/export.md` §5.4).
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
                ring: try privacy?.distributed?.bitWidth ?? BitWidth(c.payloadBits), subset: try c.subset.map(subset),
                clippedAfterScaling: clipped)
        }
        let cohort = links.count
        let tolerated = try tolerance(c, cohort: cohort, survivable: survivable)
        var choice: RoundCompression?
        for (ring, fraction) in try candidates(c, adaptive, cohort: cohort) {
            let candidate = RoundCompression(
                ring: ring, subset: fraction < 1 ? try subset(fraction) : nil, clippedAfterScaling: clipped)
            let bytes: Int
            if privacy?.distributed != nil {
                // A ring too narrow for the noise was not calibrated (ServicePrivacyPlan): skipped.
                guard let mechanism = privacy?.distributed(subsetSize: candidate.subset?.size, bits: ring.bits)
                else { continue }
                bytes = mechanism.paddedDimension * mechanism.bitWidth.byteCount
            } else {
                // A ring too narrow for payload_clip (validation refuses floors that are) is
                // skipped, never sent: no report can make a round impossible to encode.
                guard (try? candidate.codec(clip: c.payloadClip, addends: cohort)) != nil else { continue }
                bytes = try candidate.payloadBytes(
                    payloadLength: payloadLength, cohort: c.cohortSize, paillierKeyBits: paillierKeyBits)
            }
            choice = candidate
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

    /// Adaptive compression's candidates for a cohort of `cohort`, least compressed first
    /// (`Specs/export.md` §5.3–§5.4): the ladder, each rung's ring with ⌈log₂ K⌉ bits of
    /// headroom; under distributed DP the ladder's bits capped at `privacy.bits`, each its own
    /// ring (the mechanism's scale already holds a whole cohort); under central DP
    /// `payload_bits` with the ladder's fractions.
    static func candidates(_ c: ServeConfiguration, _ adaptive: ServiceAdaptiveCompression, cohort: Int) throws
        -> [(ring: BitWidth, fraction: Double)]
    {
        switch c.privacy?.mode {
        case .central?:
            let ring = try BitWidth(c.payloadBits)
            return try adaptive.fractions.map { (ring, $0) }
        case .ddg?, .skellam?:
            // Capping repeats a rung (32, 24 → 20 and 20): the ladder is monotone, so repeats are adjacent.
            var kept: [(ring: BitWidth, fraction: Double)] = []
            for (bits, fraction) in try adaptive.bounds.candidates {
                let capped = (ring: try BitWidth(min(bits, c.privacy!.bits)), fraction: fraction)
                if kept.last.map({ $0.ring == capped.ring && $0.fraction == capped.fraction }) != true {
                    kept.append(capped)
                }
            }
            return kept
        case nil:
            return try adaptive.bounds.candidates.map {
                (try AdaptiveCompression.ring(bits: $0.bits, cohort: cohort), $0.fraction)
            }
        }
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
