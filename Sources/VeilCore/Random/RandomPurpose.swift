/// What a simulation draws a ``Xoshiro256`` stream for. With the round and the participant it
/// names the stream, so two purposes never share one, however many rounds or participants a
/// run has (`Specs/learning.md` §6 is normative).
///
/// The raw value is the name that is hashed: renaming a case changes its streams, and so
/// every result drawn from them; adding or reordering cases changes nothing.
public enum RandomPurpose: String, CaseIterable, Hashable, Sendable {
    /// Hold-out split and partition of a loaded data set over the participants.
    case dataSplit = "data-split"
    /// FedProx's Synthetic(α, β) devices.
    case syntheticData = "synthetic-data"
    /// The global model's starting parameters (and IFCA's perturbed cluster models). The
    /// in-process simulation and the coordinator must draw them alike, so that both start a
    /// federation from the same model.
    case initialParameters = "initial-parameters"
    /// Who takes part: a whole run's shuffles, Poisson coins and straggler draws (round 0) or
    /// one attempt's selection (the coordinator: round ≥ 1, and the attempt, from 1, in the
    /// participant word, so that a retried round draws a new cohort).
    case cohortSelection = "cohort-selection"
    /// A participant's minibatch order in a synchronous round.
    case training
    /// A participant's stochastic rounding of its payload into the fixed-point ring.
    case rounding
    /// The round's randomized Hadamard rotation for distributed DP.
    case rotation
    /// FedBuff's simulated arrival times and the order idle participants start in.
    case asyncClock = "async-clock"
    /// A FedBuff participant's minibatch order, by the model version it started from.
    case asyncTraining = "async-training"
    /// The built-in heterogeneous profile's device for a participant (round 0).
    case devices
    /// Whether a participant is online in a round of a simulation with devices.
    case availability
    /// The coordinates every participant sends in a round of a subset-compressed run (round r,
    /// participant 0): public, the same for the whole cohort.
    case coordinateSubset = "coordinate-subset"

    /// The stream number of this purpose for `round` and `participant`.
    ///
    /// The label is encoded as three 64-bit words — FNV-1a-64 of the UTF-8 name, the round,
    /// the participant (two's complement) — and absorbed one word at a time by SplitMix64's
    /// output function: h ← mix(h ⊕ word), starting from h = 0. mix is a bijection of 64-bit
    /// words, so two labels that differ only in their last word never collide, and labels
    /// that differ earlier collide only by chance, with probability about n²/2⁶⁵ for n
    /// labels: for the 11 purposes × 201 rounds × 1001 participants a test checks exhaustively
    /// (2.2·10⁶ labels), under 10⁻⁶. A cryptographic hash would buy nothing here: the streams
    /// are public simulation randomness, and VeilCore has no SHA-256.
    /// - Parameters:
    ///   - round: the round, from 1; 0 for a stream that serves a whole run.
    ///   - participant: the participant's ``ParticipantID`` raw value, from 1; 0 for none.
    public func stream(round: Int = 0, participant: Int = 0) -> UInt64 {
        var h: UInt64 = 0
        for word in [Self.fnv1a(rawValue), UInt64(UInt(bitPattern: round)), UInt64(UInt(bitPattern: participant))] {
            h = Self.mix(h ^ word)
        }
        return h
    }

    /// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
    static func fnv1a(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01b3 }
    }

    /// SplitMix64's output function (Stafford's Mix13): an invertible 64-bit mixer.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

extension Xoshiro256 {
    /// The generator for one labelled stream of a run seeded with `seed`:
    /// `Xoshiro256(seed: seed, stream: purpose.stream(round: round, participant: participant))`.
    /// - Parameters:
    ///   - round: the round, from 1; 0 for a stream that serves a whole run.
    ///   - participant: the participant's ``ParticipantID`` raw value, from 1; 0 for none.
    public init(seed: UInt64, purpose: RandomPurpose, round: Int = 0, participant: Int = 0) {
        self.init(seed: seed, stream: purpose.stream(round: round, participant: participant))
    }
}
