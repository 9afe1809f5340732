import Foundation

/// Leadership of a federation whose state several `veil serve` processes share
/// (`Specs/wire.md` §6.2): a lease in the store, taken and renewed under the writers' lock by
/// the database's clock, and an epoch that grows with every new leader. A store opened with
/// a fence (``CoordinatorStore/init(_:driver:fence:)``) checks in each write transaction that
/// its epoch is still the store's, so a leader that lost the lease — paused, cut off, or
/// slower than its renewal — cannot commit anything once another has taken over.
extension CoordinatorStore {
    /// A holder's lease: its fencing epoch and when it ends by the database's clock.
    public struct Lease: Hashable, Sendable {
        public var epoch: Int
        public var holder: String
        public var expires: Double
    }

    /// What asking for the lease gave.
    public enum LeaseAttempt: Hashable, Sendable {
        /// This holder leads, under a new epoch.
        case leading(Lease)
        /// Another holds it, for `remaining` seconds more unless renewed.
        case held(Lease, remaining: Double)
    }

    /// Takes the lease for `seconds` when nobody holds it or its holder's has ended — with a
    /// new epoch, so that the previous holder is fenced off even if it is still running.
    public func acquireLeadership(holder: String, seconds: Double) throws -> LeaseAttempt {
        try database.write { db in
            let now = try db.databaseTime()
            let current = try Self.lease(db)
            if let current, current.expires > now {
                return .held(current, remaining: current.expires - now)
            }
            let lease = Lease(epoch: (current?.epoch ?? 0) + 1, holder: holder, expires: now + seconds)
            try db.execute(
                """
                INSERT INTO leadership (id, epoch, holder, expires) VALUES (1, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, holder = excluded.holder,
                    expires = excluded.expires
                """, [lease.epoch, lease.holder, lease.expires])
            return .leading(lease)
        }
    }

    /// Extends the lease by `seconds` from now; throws ``LeadershipLost`` when another epoch
    /// holds it. A lease that ran out but that nobody took is renewed: taking it would have
    /// changed the epoch, under the same lock as this renewal, so this holder is still the
    /// only one (a leader slowed past its lease by a loaded machine need not stop).
    public func renewLeadership(_ lease: Lease, seconds: Double) throws -> Lease {
        try database.write { db in
            let now = try db.databaseTime()
            let current = try Self.lease(db)
            guard let current, current.epoch == lease.epoch, current.holder == lease.holder else {
                throw LeadershipLost(epoch: lease.epoch, current: current?.epoch, holder: current?.holder)
            }
            var renewed = current
            renewed.expires = now + seconds
            try db.execute(
                "UPDATE leadership SET expires = ? WHERE id = 1 AND epoch = ?", [renewed.expires, lease.epoch])
            return renewed
        }
    }

    /// Ends the lease at once (a clean stop): a standby need not wait for it to run out.
    public func releaseLeadership(_ lease: Lease) throws {
        try database.write { db in
            try db.execute(
                "UPDATE leadership SET expires = ? WHERE id = 1 AND epoch = ?", [try db.databaseTime(), lease.epoch])
        }
    }

    /// The lease as the store has it; nil before anyone led.
    public func currentLease() throws -> Lease? {
        try database.read { db in try db.tableExists("leadership") ? try Self.lease(db) : nil }
    }

    static func lease(_ db: any StoreTransaction) throws -> Lease? {
        try db.fetchOne("SELECT epoch, holder, expires FROM leadership WHERE id = 1").map {
            Lease(epoch: try $0.int("epoch"), holder: try $0.string("holder"), expires: try $0.double("expires"))
        }
    }

    /// The check each write transaction of a fenced store starts with. The holder too: an
    /// epoch could come round again if the row were deleted or restored from a backup, a
    /// holder (host and process id) with the same epoch cannot.
    static func checkFence(_ fence: Lease, in db: any StoreTransaction) throws {
        let current = try lease(db)
        guard let current, current.epoch == fence.epoch, current.holder == fence.holder else {
            throw LeadershipLost(epoch: fence.epoch, current: current?.epoch, holder: current?.holder)
        }
    }
}

/// A leader's write or renewal refused: another process leads under a later epoch (or the
/// lease ran out). Its holder stops; nothing it meant to write was written.
public struct LeadershipLost: Error, Hashable, Sendable, CustomStringConvertible {
    public var epoch: Int
    public var current: Int?
    public var holder: String?

    public var description: String {
        if let current, let holder {
            return "lost the leadership: \(holder) leads under epoch \(current) (this process held epoch \(epoch))"
        }
        return "lost the leadership: the lease of epoch \(epoch) ran out before it was renewed"
    }
}
