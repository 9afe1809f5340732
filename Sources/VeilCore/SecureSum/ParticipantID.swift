/// A participant of one secure-sum session: its 1-based position in the session's roster.
///
/// The roster maps positions to identities (certificate subjects, identity keys); inside a
/// session every message, Shamir share index and graph vertex uses this number.
public struct ParticipantID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static func < (lhs: ParticipantID, rhs: ParticipantID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "#\(rawValue)" }
}

/// What every secure-sum backend ends with: the sum over the participants whose inputs it
/// contains, and who they were.
public struct SecureSumResult: Hashable, Sendable {
    /// The sum modulo 2^b of the survivors' inputs.
    public let sum: ModularVector
    /// The participants whose inputs are in the sum, ascending.
    public let survivors: [ParticipantID]

    public init(sum: ModularVector, survivors: [ParticipantID]) {
        self.sum = sum
        self.survivors = survivors.sorted()
    }
}
