import VeilCore
import VeilCrypto

/// Who masks with whom, and who holds whose shares: the complete graph, or a k-regular
/// Harary graph on a ring permuted by the session's randomness (Bell et al. 2020), so that
/// every party derives the same graph from the session id and the roster alone.
///
/// `Specs/secagg.md` ("Neighbour graph") is normative: ring positions come from a
/// Fisher–Yates shuffle driven by the deterministic generator seeded with
/// `VeilKDF(session id, "secagg/graph")`; the participant at position p is adjacent to those
/// at positions p ± 1, …, p ± ⌊k/2⌋ (mod n), and, when k is odd, p + n/2.
public struct NeighborGraph: Hashable, Sendable {
    /// n.
    public let clientCount: Int
    /// k.
    public let neighborCount: Int
    /// The participant at each ring position (0-based positions).
    private let ring: [UInt32]
    /// The ring position of each participant (index rawValue − 1).
    private let position: [Int]

    /// Derives the graph of a session.
    public init(sessionID: [UInt8], clientCount n: Int, neighborCount k: Int) {
        precondition(n >= 2 && (1...(n - 1)).contains(k), "graph parameters are validated by SecAggParameters")
        clientCount = n
        neighborCount = k
        var ring = (1...n).map { UInt32($0) }
        if k < n - 1 {
            let seed = VeilKDF.derive32(.secAggGraph, from: SecureBytes(copying: sessionID))
            var generator = try! ChaCha20Generator(seed: seed)  // a 32-byte seed by construction
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = Int(Self.uniform(below: UInt64(i + 1), using: &generator))
                ring.swapAt(i, j)
            }
        }
        var position = [Int](repeating: 0, count: n)
        for (p, id) in ring.enumerated() { position[Int(id) - 1] = p }
        self.ring = ring
        self.position = position
    }

    /// The neighbours of `id`, ascending, without `id` itself.
    public func neighbors(of id: ParticipantID) -> [ParticipantID] {
        if neighborCount == clientCount - 1 {
            return (1...clientCount).compactMap { $0 == Int(id.rawValue) ? nil : ParticipantID(UInt32($0)) }
        }
        let p = position[Int(id.rawValue) - 1]
        let n = clientCount
        var result: [ParticipantID] = []
        result.reserveCapacity(neighborCount)
        for offset in 1...max(1, neighborCount / 2) where offset <= neighborCount / 2 {
            result.append(ParticipantID(ring[(p + offset) % n]))
            result.append(ParticipantID(ring[(p - offset + n) % n]))
        }
        if neighborCount % 2 == 1 { result.append(ParticipantID(ring[(p + n / 2) % n])) }
        return result.sorted()
    }

    /// `id` and its neighbours, ascending: the participants that hold shares of `id`'s secrets.
    public func neighborhood(of id: ParticipantID) -> [ParticipantID] {
        (neighbors(of: id) + [id]).sorted()
    }

    /// Whether `a` and `b` are neighbours.
    public func areNeighbors(_ a: ParticipantID, _ b: ParticipantID) -> Bool {
        guard a != b else { return false }
        if neighborCount == clientCount - 1 { return true }
        let n = clientCount
        let distance = abs(position[Int(a.rawValue) - 1] - position[Int(b.rawValue) - 1])
        let ringDistance = min(distance, n - distance)
        return ringDistance <= neighborCount / 2 || (neighborCount % 2 == 1 && distance == n / 2)
    }

    /// A uniform integer in 0..<bound by rejection: draws below 2^64 mod bound are redrawn,
    /// so that the remaining 2^64 − (2^64 mod bound) values split evenly.
    static func uniform(below bound: UInt64, using generator: inout some RandomNumberGenerator) -> UInt64 {
        let rejectBelow = (0 &- bound) % bound
        while true {
            let value = generator.next()
            if value >= rejectBelow { return value % bound }
        }
    }
}
