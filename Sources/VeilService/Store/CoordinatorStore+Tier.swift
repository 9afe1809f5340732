import Foundation

/// Hierarchical secure aggregation's shared state (`Specs/wire.md` §6.3): the round the
/// leader has open, the groups aggregators claim in it and the sums they deposit, and each
/// aggregator's heartbeat. Every time is the database's clock. The leader writes through its
/// fenced store; an aggregator's writes are fenced by the group's claim instead — a deposit
/// counts only while its holder and claim number are still the group's.
extension CoordinatorStore {
    /// The round the leader has opened for groups.
    public struct TierRound: Hashable, Sendable {
        public var number: Int
        public var attempt: Int
        /// How many groups the round is split into.
        public var groups: Int
        /// Seconds until the leader stops waiting for groups (negative once past).
        public var remaining: Double
        /// `open`, `combining` (frozen: the leader is summing its done groups), `committed` or
        /// `abandoned`.
        public var status: String
    }

    /// A group an aggregator holds: the round's attempt, the slot, and the claim number that
    /// fences the deposit.
    public struct GroupClaim: Hashable, Sendable {
        public var round: Int
        public var attempt: Int
        public var slot: Int
        public var claim: Int
        public var holder: String
    }

    /// A group's row, as the leader and the aggregators see it.
    public struct TierGroup: Sendable {
        public var slot: Int
        public var holder: String
        public var claim: Int
        public var members: [String]
        /// `running`, `done` or `free` (released after an aborted group).
        public var status: String
        /// Whether the holder's heartbeat is within the liveness window.
        public var alive: Bool
        /// Whether the holder's heartbeat is within three liveness windows: a group whose holder
        /// died that recently may still be summed again by its members elsewhere.
        public var recent: Bool
        public var contributors: [String]
        /// The group's sum, decoded (the payload's coordinates and its weight).
        public var sum: [Double]
        public var transcript: [UInt8]
        public var cryptoSeconds: Double
    }

    /// What an aggregator deposits for its group.
    public struct GroupResult: Sendable {
        public var contributors: [String]
        public var sum: [Double]
        public var transcript: [UInt8]
        public var cryptoSeconds: Double

        public init(contributors: [String], sum: [Double], transcript: [UInt8], cryptoSeconds: Double) {
            self.contributors = contributors
            self.sum = sum
            self.transcript = transcript
            self.cryptoSeconds = cryptoSeconds
        }
    }

    /// An aggregator's last heartbeat: where participants reach it and how loaded it is.
    public struct AggregatorLoad: Hashable, Sendable {
        public var holder: String
        public var address: String
        public var connections: Int
        public var capacity: Int
        /// The cryptography time of its last group, per member (0 before its first).
        public var secondsPerMember: Double
        /// Its free participants (not in a group) for attempt `waitingFor` of a round, as it last
        /// counted them: fewer than `min_group_size` means it will form no further group there.
        public var waiting: Int
        public var waitingFor: Waiting

        /// Which round's attempt a count of free participants is for.
        public struct Waiting: Hashable, Sendable {
            public var round: Int
            public var attempt: Int
            public init(round: Int, attempt: Int) {
                self.round = round
                self.attempt = attempt
            }
            /// No round open.
            public static let none = Waiting(round: 0, attempt: 0)
        }

        public init(
            holder: String, address: String, connections: Int, capacity: Int, secondsPerMember: Double,
            waiting: Int = 0, waitingFor: Waiting = .none
        ) {
            self.holder = holder
            self.address = address
            self.connections = connections
            self.capacity = capacity
            self.secondsPerMember = secondsPerMember
            self.waiting = waiting
            self.waitingFor = waitingFor
        }

        /// Connections it can still take.
        public var spare: Int { max(0, capacity - connections) }
    }

    // MARK: - The leader

    /// Opens attempt `attempt` of round `number` with `groups` groups for `seconds`; replaces an
    /// earlier attempt's row. Only the leader calls it, through its fenced store.
    public func openTierRound(_ number: Int, attempt: Int, groups: Int, seconds: Double) throws {
        try write { db in
            let now = try db.databaseTime()
            try db.execute(
                """
                INSERT INTO tier_rounds (number, attempt, groups, opened, deadline, status) VALUES (?, ?, ?, ?, ?, 'open')
                ON CONFLICT (number) DO UPDATE SET attempt = excluded.attempt, groups = excluded.groups,
                    opened = excluded.opened, deadline = excluded.deadline, status = excluded.status
                """, [number, attempt, groups, now, now + seconds])
        }
    }

    /// Marks round `number`'s row `combining`, `committed` or `abandoned` (the checkpoint,
    /// written first, is what makes a round complete: a leader that dies between the two
    /// leaves it `combining`); `seconds`: the leader's time to combine the groups.
    public func closeTierRound(_ number: Int, attempt: Int, status: String, seconds: Double? = nil) throws {
        try write { db in
            try db.execute(
                "UPDATE tier_rounds SET status = ?, combine_seconds = ? WHERE number = ? AND attempt = ?",
                [status, seconds, number, attempt])
        }
    }

    /// The leader's time to combine round `number`'s groups, once committed.
    public func combineSeconds(_ number: Int) throws -> Double? {
        try database.read { db in
            try db.fetchOne("SELECT combine_seconds FROM tier_rounds WHERE number = ?", [number])?.optionalDouble(
                "combine_seconds")
        }
    }

    /// The row of round `number`, if the leader opened it.
    public func tierRound(_ number: Int) throws -> TierRound? {
        try database.read { db in try Self.tierRound(number, in: db) }
    }

    static func tierRound(_ number: Int, in db: any StoreTransaction) throws -> TierRound? {
        let now = try db.databaseTime()
        return try db.fetchOne(
            "SELECT number, attempt, groups, deadline, status FROM tier_rounds WHERE number = ?", [number]
        ).map {
            TierRound(
                number: try $0.int("number"), attempt: try $0.int("attempt"), groups: try $0.int("groups"),
                remaining: try $0.double("deadline") - now, status: try $0.string("status"))
        }
    }

    /// The groups of attempt `attempt` of round `number`, by slot; `liveness`: the seconds
    /// within which a holder's heartbeat counts it alive.
    public func tierGroups(round number: Int, attempt: Int, liveness: Double) throws -> [TierGroup] {
        try database.read { db in try Self.tierGroups(number, attempt: attempt, liveness: liveness, in: db) }
    }

    static func tierGroups(_ number: Int, attempt: Int, liveness: Double, in db: any StoreTransaction) throws
        -> [TierGroup]
    {
        let alive = try Self.aliveHolders(liveness: liveness, in: db)
        let recent = try Self.aliveHolders(liveness: 3 * liveness, in: db)
        return try db.fetch(
            """
            SELECT slot, holder, claim, members, status, contributors, sum, transcript, crypto_seconds
            FROM tier_groups WHERE round = ? AND attempt = ? ORDER BY slot
            """, [number, attempt]
        ).map { row in
            TierGroup(
                slot: try row.int("slot"), holder: try row.string("holder"), claim: try row.int("claim"),
                members: Self.ids(try row.string("members")), status: try row.string("status"),
                alive: alive.contains(try row.string("holder")), recent: recent.contains(try row.string("holder")),
                contributors: Self.ids(try row.optionalString("contributors") ?? ""),
                sum: Self.doubles(try row.optionalBytes("sum") ?? []),
                transcript: try row.optionalBytes("transcript") ?? [],
                cryptoSeconds: try row.optionalDouble("crypto_seconds") ?? 0)
        }
    }

    // MARK: - Aggregators

    /// Records this aggregator's heartbeat and load.
    public func heartbeat(_ load: AggregatorLoad) throws {
        try database.write { db in
            try db.execute(
                """
                INSERT INTO tier_aggregators (holder, address, connections, capacity, seconds_per_member, seen,
                    waiting, waiting_round, waiting_attempt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (holder) DO UPDATE SET address = excluded.address, connections = excluded.connections,
                    capacity = excluded.capacity, seconds_per_member = excluded.seconds_per_member, seen = excluded.seen,
                    waiting = excluded.waiting, waiting_round = excluded.waiting_round,
                    waiting_attempt = excluded.waiting_attempt
                """,
                [
                    load.holder, load.address, load.connections, load.capacity, load.secondsPerMember,
                    try db.databaseTime(), load.waiting, load.waitingFor.round, load.waitingFor.attempt,
                ])
        }
    }

    /// Removes this aggregator's heartbeat (a clean stop): its groups are free at once.
    public func leaveTier(holder: String) throws {
        try database.write { db in try db.execute("DELETE FROM tier_aggregators WHERE holder = ?", [holder]) }
    }

    /// The aggregators whose heartbeat is within `liveness` seconds.
    public func aggregators(liveness: Double) throws -> [AggregatorLoad] {
        try database.read { db in
            let now = try db.databaseTime()
            return try db.fetch(
                """
                SELECT holder, address, connections, capacity, seconds_per_member, waiting, waiting_round,
                    waiting_attempt FROM tier_aggregators WHERE seen > ? ORDER BY holder
                """, [now - liveness]
            ).map {
                AggregatorLoad(
                    holder: try $0.string("holder"), address: try $0.string("address"),
                    connections: try $0.int("connections"), capacity: try $0.int("capacity"),
                    secondsPerMember: try $0.double("seconds_per_member"), waiting: try $0.int("waiting"),
                    waitingFor: .init(round: try $0.int("waiting_round"), attempt: try $0.int("waiting_attempt")))
            }
        }
    }

    /// Who may not join a new group of attempt `attempt` of round `number`: the members of
    /// every group done, and of every group still running under a live holder.
    public func busyMembers(round number: Int, attempt: Int, liveness: Double) throws -> Set<String> {
        try database.read { db in
            Self.busy(try Self.tierGroups(number, attempt: attempt, liveness: liveness, in: db))
        }
    }

    static func busy(_ groups: [TierGroup]) -> Set<String> {
        Set(groups.filter { $0.status == "done" || ($0.status == "running" && $0.alive) }.flatMap(\.members))
    }

    /// Claims a group of the open attempt for `members`: the first slot nobody holds, freed,
    /// or held by an aggregator whose heartbeat stopped (its group reruns here). Nil when every
    /// slot is taken, the attempt is no longer open, a member is already in another group, or
    /// the groups' members would number more than `cohortSize`. `waiting`: the claimant's free
    /// participants left after this group, written with its liveness.
    /// A dead holder's group that shares a member with this one is freed in the same
    /// transaction: were its holder only paused, its deposit would otherwise count that
    /// member's update twice.
    public func claimGroup(
        round number: Int, attempt: Int, holder: String, members: [String], liveness: Double, cohortSize: Int,
        waiting: Int = 0
    ) throws -> GroupClaim? {
        try database.write { db in
            guard let round = try Self.tierRound(number, in: db), round.attempt == attempt, round.status == "open",
                round.remaining > 0
            else { return nil }
            // The claimant is alive now, whatever its last heartbeat said, and says what it has left.
            try db.execute(
                """
                UPDATE tier_aggregators SET seen = ?, waiting = ?, waiting_round = ?, waiting_attempt = ?
                WHERE holder = ?
                """, [try db.databaseTime(), waiting, number, attempt, holder])
            var groups = try Self.tierGroups(number, attempt: attempt, liveness: liveness, in: db)
            let busy = Self.busy(groups)
            guard busy.isDisjoint(with: members), busy.count + members.count <= cohortSize else { return nil }
            let wanted = Set(members)
            for (i, group) in groups.enumerated()
            where group.status == "running" && !group.alive && !wanted.isDisjoint(with: group.members) {
                try db.execute(
                    "UPDATE tier_groups SET status = 'free' WHERE round = ? AND attempt = ? AND slot = ?",
                    [number, attempt, group.slot])
                groups[i].status = "free"
            }
            let bySlot = Dictionary(uniqueKeysWithValues: groups.map { ($0.slot, $0) })
            guard
                let slot = (0..<round.groups).first(where: { slot in
                    guard let group = bySlot[slot] else { return true }
                    return group.status == "free" || (group.status == "running" && !group.alive)
                })
            else { return nil }
            let claim = (bySlot[slot]?.claim ?? 0) + 1
            try db.execute(
                """
                INSERT INTO tier_groups (round, attempt, slot, holder, claim, members, status, claimed)
                VALUES (?, ?, ?, ?, ?, ?, 'running', ?)
                ON CONFLICT (round, attempt, slot) DO UPDATE SET holder = excluded.holder, claim = excluded.claim,
                    members = excluded.members, status = excluded.status, claimed = excluded.claimed,
                    contributors = NULL, sum = NULL, transcript = NULL, crypto_seconds = NULL
                """, [number, attempt, slot, holder, claim, Self.text(members), try db.databaseTime()])
            return GroupClaim(round: number, attempt: attempt, slot: slot, claim: claim, holder: holder)
        }
    }

    /// Deposits a group's sum; ``GroupClaimLost`` when the claim is no longer the group's (its
    /// holder was presumed dead and another reran it) or the attempt was closed.
    public func depositGroup(_ claim: GroupClaim, result: GroupResult) throws {
        try database.write { db in
            try Self.checkClaim(claim, in: db)
            let counted = Set(
                try Self.tierGroups(claim.round, attempt: claim.attempt, liveness: 0, in: db).filter {
                    $0.status == "done"
                }.flatMap(\.contributors))
            guard counted.isDisjoint(with: result.contributors) else {
                throw GroupClaimLost(claim: claim, reason: "a contributor is already counted in another group")
            }
            try db.execute(
                """
                UPDATE tier_groups SET status = 'done', contributors = ?, sum = ?, transcript = ?, crypto_seconds = ?
                WHERE round = ? AND attempt = ? AND slot = ?
                """,
                [
                    Self.text(result.contributors), Self.bytes(result.sum), result.transcript, result.cryptoSeconds,
                    claim.round, claim.attempt, claim.slot,
                ])
        }
    }

    /// Gives a group back (its secure sum aborted): another may claim the slot.
    public func releaseGroup(_ claim: GroupClaim) throws {
        try database.write { db in
            try Self.checkClaim(claim, in: db)
            try db.execute(
                "UPDATE tier_groups SET status = 'free' WHERE round = ? AND attempt = ? AND slot = ?",
                [claim.round, claim.attempt, claim.slot])
        }
    }

    private static func checkClaim(_ claim: GroupClaim, in db: any StoreTransaction) throws {
        guard let round = try tierRound(claim.round, in: db), round.attempt == claim.attempt, round.status == "open"
        else { throw GroupClaimLost(claim: claim, reason: "the leader closed the attempt") }
        let row = try db.fetchOne(
            "SELECT holder, claim, status FROM tier_groups WHERE round = ? AND attempt = ? AND slot = ?",
            [claim.round, claim.attempt, claim.slot])
        guard let row, try row.string("holder") == claim.holder, try row.int("claim") == claim.claim,
            try row.string("status") == "running"
        else { throw GroupClaimLost(claim: claim, reason: "another aggregator holds the group now") }
    }

    static func aliveHolders(liveness: Double, in db: any StoreTransaction) throws -> Set<String> {
        let now = try db.databaseTime()
        return Set(
            try db.fetch("SELECT holder FROM tier_aggregators WHERE seen > ?", [now - liveness]).map {
                try $0.string("holder")
            })
    }

    // Ids never contain a newline (certificate ids are checked names); sums are little-endian
    // IEEE doubles.
    static func text(_ ids: [String]) -> String { ids.joined(separator: "\n") }
    static func ids(_ text: String) -> [String] { text.isEmpty ? [] : text.split(separator: "\n").map(String.init) }
    static func bytes(_ values: [Double]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }
    static func doubles(_ bytes: [UInt8]) -> [Double] {
        stride(from: 0, to: bytes.count - bytes.count % 8, by: 8).map { start in
            Double(bitPattern: bytes[start..<start + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
    }
}

/// An aggregator's deposit refused: the group is no longer its to finish.
public struct GroupClaimLost: Error, Hashable, Sendable, CustomStringConvertible {
    public var claim: CoordinatorStore.GroupClaim
    public var reason: String

    public var description: String {
        "group \(claim.slot) of round \(claim.round) (attempt \(claim.attempt)) is no longer this aggregator's: \(reason)"
    }
}
