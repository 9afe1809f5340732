import Testing
import VeilCore
import VeilTestSupport

@Suite struct RandomStreamTests {
    // (purpose, round, participant, stream): from an independent Python transcription of
    // Specs/learning.md §6, not from this implementation.
    @Test(
        arguments: [
            (RandomPurpose.training, 1, 1, 0x90f8_7cb2_ca4c_c4d4), (.initialParameters, 0, 0, 0xcbb9_d713_14eb_ee72),
            (.cohortSelection, 3, 0, 0x1d48_da4d_694a_2255), (.rounding, 200, 1000, 0x8715_8cdf_dcd5_51e9),
            (.dataSplit, 0, 0, 0xc0c6_6822_7a9d_0b3a),
        ] as [(RandomPurpose, Int, Int, UInt64)])
    func streamNumbersAreTheSpecifiedHash(_ purpose: RandomPurpose, _ round: Int, _ participant: Int, _ stream: UInt64)
    {
        #expect(purpose.stream(round: round, participant: participant) == stream)
    }

    @Test func aLabelledGeneratorIsTheNumberedStreamOfItsLabel() {
        var labelled = Xoshiro256(seed: 42, purpose: .training, round: 1, participant: 1)
        var numbered = Xoshiro256(seed: 42, stream: 0x90f8_7cb2_ca4c_c4d4)
        let words = [labelled.next(), labelled.next()]
        #expect(words == [0x9210_7588_ca95_295b, 0xa57e_c95f_7e47_fbc0])
        #expect(words == [numbered.next(), numbered.next()])
    }

    /// The arithmetic this replaced gave round 2's training streams the numbers of round 1's
    /// rounding streams; no two labels of a run of up to 200 rounds and 1000 participants
    /// share a stream now.
    @Test func noTwoLabelsShareAStream() async throws {
        let streams = try await offCooperativePool {
            var streams: [UInt64] = []
            streams.reserveCapacity(RandomPurpose.allCases.count * 201 * 1001)
            for purpose in RandomPurpose.allCases {
                for round in 0...200 {
                    for participant in 0...1000 {
                        streams.append(purpose.stream(round: round, participant: participant))
                    }
                }
            }
            return streams.sorted()
        }
        let repeated = zip(streams, streams.dropFirst()).filter { $0 == $1 }.map(\.0)
        #expect(repeated.isEmpty, "\(repeated.count) stream numbers are shared, e.g. \(repeated.prefix(3))")
        #expect(streams.count == RandomPurpose.allCases.count * 201 * 1001)
    }

    @Test func purposeNamesAreDistinct() {
        #expect(Set(RandomPurpose.allCases.map(\.rawValue)).count == RandomPurpose.allCases.count)
    }
}
