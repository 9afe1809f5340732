import Foundation
import Testing
import VeilCore
import VeilLearning

@testable import VeilService

/// How a network coordinator chooses a round's ring and subset (Specs/export.md §5.2–§5.3).
@Suite struct RoundCompressionTests {
    /// softmax on digits: 650 update coordinates and the weight.
    let length = 651

    func configuration(_ edit: (inout ServeConfiguration) -> Void) -> ServeConfiguration {
        var c = ServeConfiguration(tls: TLSFiles(ca: "", certificate: "", key: "", signingKey: ""))
        c.cohortSize = 10
        c.roundDeadlineSeconds = 10
        edit(&c)
        return c
    }

    func choose(
        _ c: ServeConfiguration, links: [UInt64], survivable: Int = 4, paillierKeyBits: Int? = nil
    ) throws -> RoundCompression {
        try RoundCompression.choose(
            c, round: 3, payloadLength: length, links: links, survivable: survivable, paillierKeyBits: paillierKeyBits)
    }

    @Test func theConfiguredRingAndSubsetWhateverTheLinks() throws {
        let c = configuration { $0.payloadBits = 20 }
        #expect(
            try choose(c, links: Array(repeating: 1, count: 10)) == RoundCompression(ring: BitWidth(20), subset: nil))
        let halved = try choose(configuration { $0.subset = 0.5 }, links: Array(repeating: 0, count: 10))
        let subset = try #require(halved.subset)
        #expect(halved.ring.bits == 64 && subset.size == 325 && subset.length == length)
        // The public seed of round 3 of a run seeded 0: the in-process engine's too.
        #expect(subset.seed == CoordinateSubset.seed(runSeed: 0, round: 3))
        #expect(halved.dimension(payloadLength: length) == 326)
    }

    /// Fast or unreported links: the least compression (32 bits and ⌈log₂ 10⌉ = 4 of headroom).
    /// Slow ones: the first rung that fits the deadline. None fits: the floors.
    @Test func theLeastCompressionThatFitsTheDeadline() throws {
        let c = configuration {
            $0.adaptiveCompression = ServiceAdaptiveCompression(minBits: 4, minSubset: 0.25)
            $0.payloadClip = 1
        }
        #expect(try choose(c, links: Array(repeating: 1_000_000_000, count: 10)).ring.bits == 36)
        #expect(try choose(c, links: Array(repeating: 0, count: 10)).ring.bits == 36)
        // 10 s at 2 kb/s is 20,000 bits: 651 values of 3 bytes (15,624 bits: ring 20) fit, 4 do not.
        let slow = try choose(c, links: Array(repeating: 2000, count: 10))
        #expect(slow.ring.bits == 20 && slow.subset == nil)
        // 10 s at 100 b/s is 1,000 bits: not even a quarter of the coordinates in one byte each.
        let floor = try choose(c, links: Array(repeating: 100, count: 10))
        #expect(floor.ring.bits == 8 && floor.subset?.size == 163)
    }

    /// Reports are not verifiable. The coordinator already expects dropout_fraction of the
    /// cohort to drop out, so that many members who claim a slow link are left to miss the
    /// deadline rather than compress everyone's update; only more of them move the choice.
    @Test func aFewSlowReportsCannotForceTheFloors() throws {
        let c = configuration {
            $0.adaptiveCompression = ServiceAdaptiveCompression(minBits: 4, minSubset: 0.25)
            $0.dropoutFraction = 0.1
            $0.payloadClip = 1
        }
        let fast = [UInt64](repeating: 1_000_000_000, count: 9)
        #expect(try choose(c, links: fast + [1]).ring.bits == 36)
        let two = [UInt64](repeating: 1_000_000_000, count: 8) + [1, 1]
        #expect(try choose(c, links: two).subset?.size == 163)
        // A cohort of 3 expects no dropout (⌊0.3⌋), but admits one corrupt member: one liar
        // cannot move the choice (32 bits and ⌈log₂ 3⌉ = 2) while the sum survives losing one…
        let three: [UInt64] = [1_000_000_000, 1_000_000_000, 1]
        #expect(try choose(c, links: three, survivable: 1).ring.bits == 34)
        // …but with t = n (or Paillier's whole roster) a late member would abort every attempt,
        // so then the reports are believed, within the floors.
        #expect(try choose(c, links: three, survivable: 0).subset?.size == 163)
        // The threat model's own counts: n_C = ⌈γK⌉ exactly (7 of 100 at γ = 0.07), ⌊δK⌋.
        var exact = c
        exact.corruptFraction = 0.07
        exact.dropoutFraction = 0.29
        #expect(try RoundCompression.tolerance(exact, cohort: 100, survivable: 50) == 29)
        exact.dropoutFraction = 0
        #expect(try RoundCompression.tolerance(exact, cohort: 100, survivable: 50) == 7)
        #expect(try RoundCompression.tolerance(c, cohort: 40, survivable: 2) == 2)
    }

    /// The review's finding: with payload_clip 1024 the 8-bit floor (a ring of 10 bits for 3
    /// members) cannot encode anything, and one slow report put every round there, so the
    /// federation gave up. Such floors are now refused when the file is loaded, and a candidate
    /// whose codec cannot be built (a subset scales the clip) is skipped, never sent.
    @Test func floorsThatCannotEncodeAreRefusedOrSkipped() throws {
        let narrow = configuration {
            $0.adaptiveCompression = ServiceAdaptiveCompression(minBits: 8)
            $0.minParticipants = 3
            $0.cohortSize = 3
        }
        #expect(throws: ConfigurationError.self) { try narrow.validate() }
        // Clip 1: the floors validate, and an eighth (scale 650/82, clip ≈ 7.9) still fits
        // Z_2^8 for 10 members, but a sixteenth (650/41 ≈ 15.9: 10 × 16 > 127) does not: it is
        // skipped, and the eighth is the last candidate taken.
        let c = configuration {
            $0.adaptiveCompression = ServiceAdaptiveCompression(minBits: 4, minSubset: 0.0625)
            $0.payloadClip = 1
        }
        try c.validate()
        let floor = try choose(c, links: Array(repeating: 1, count: 10))
        #expect(floor.ring.bits == 8 && floor.subset?.size == 82, "\(floor)")
        #expect(throws: ConfigurationError.self) {
            try configuration {
                $0.adaptiveCompression = ServiceAdaptiveCompression(minSubset: 1e-13)
                $0.payloadClip = 1
            }.validate()
        }
        // B = 5 ends the ladder at 6 bits: the floor checked is the one a round can reach
        // (Z_2^10 holds 10 payloads within ±40; the Z_2^9 of 5 bits would not).
        try configuration {
            $0.adaptiveCompression = ServiceAdaptiveCompression(minBits: 5)
            $0.payloadClip = 40
            $0.minParticipants = 10
        }.validate()
        // A fixed subset is checked too: a twentieth scales the clip by 650/33, past Z_2^8 for
        // 10 participants (which clip 1 alone fits).
        try configuration {
            $0.payloadBits = 8
            $0.payloadClip = 1
        }.validate()
        #expect(throws: ConfigurationError.self) {
            try configuration {
                $0.subset = 0.05
                $0.payloadBits = 8
                $0.payloadClip = 1
            }.validate()
        }
    }

    /// With Paillier the payload is ciphertexts: fewer bits pack more values into each.
    @Test func paillierPayloadsShrinkWithTheRing() throws {
        let wide = RoundCompression(ring: try BitWidth(36), subset: nil)
        let narrow = RoundCompression(ring: try BitWidth(12), subset: nil)
        let wideBytes = try wide.payloadBytes(payloadLength: length, cohort: 10, paillierKeyBits: 2048)
        let narrowBytes = try narrow.payloadBytes(payloadLength: length, cohort: 10, paillierKeyBits: 2048)
        #expect(narrowBytes * 2 < wideBytes, "\(narrowBytes) against \(wideBytes)")
        #expect(try wide.payloadBytes(payloadLength: length, cohort: 10, paillierKeyBits: nil) == 651 * 5)
    }

    @Test func serveJSONRefusesConflictingCompression() throws {
        #expect(throws: ConfigurationError.self) { try configuration { $0.subset = 0 }.validate() }
        #expect(throws: ConfigurationError.self) {
            try configuration {
                $0.subset = 0.5
                $0.adaptiveCompression = ServiceAdaptiveCompression()
            }.validate()
        }
        #expect(throws: ConfigurationError.self) {
            try configuration { $0.adaptiveCompression = ServiceAdaptiveCompression(minBits: 1) }.validate()
        }
    }

    /// With privacy each round's ring is fixed and only the subset adapts (Specs/export.md
    /// §5.4): the candidates are the ladder's fractions at payload_bits, whatever the links.
    @Test func underPrivacyOnlyTheSubsetAdapts() throws {
        let c = configuration {
            $0.adaptiveCompression = ServiceAdaptiveCompression(minSubset: 0.25)
            $0.payloadBits = 32
            $0.privacy = ServicePrivacy(epsilon: 8, mode: .central)
        }
        try c.validate()
        let privacy = try ServicePrivacyPlan(
            c.privacy!, rounds: 3, updateLength: length - 1, minParticipants: 3, cohortSize: 10,
            subsetSizes: try c.subsetSizes(payloadLength: length))
        for (link, fraction) in [(UInt64(1_000_000_000), 1.0), (50, 0.25)] {
            let choice = try RoundCompression.choose(
                c, round: 1, payloadLength: length, links: Array(repeating: link, count: 10), survivable: 0,
                paillierKeyBits: nil, privacy: privacy)
            #expect(choice.ring.bits == 32 && abs((choice.subset?.fraction ?? 1) - fraction) < 0.01, "\(choice)")
            // The participants clip after scaling: the codec holds payload_clip, not its scaled value.
            #expect(try choice.codec(clip: 1, addends: 10).clip == 1)
        }
    }
}
