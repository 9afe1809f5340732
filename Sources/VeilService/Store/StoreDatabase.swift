import Foundation

/// Where the coordinator's state lives: a SQLite file (the default) or a PostgreSQL database
/// (serve.json's `postgres`, for several processes sharing one state, `Specs/wire.md` §6.1).
public enum StoreLocation: Hashable, Sendable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresSettings)

    /// Where, for messages: the file, or the server and database — never the password.
    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let settings):
            "postgresql://\(settings.user)@\(settings.host):\(settings.port)/\(settings.database)"
        }
    }
}

/// One value of a row or a statement's argument: the five kinds both databases store
/// (SQLite's storage classes; PostgreSQL's `bigint`, `double precision`, `text`, `bytea`).
public enum StoreValue: Hashable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// A Swift value a statement binds.
public protocol StoreArgument {
    var storeValue: StoreValue { get }
}

extension Int: StoreArgument { public var storeValue: StoreValue { .integer(Int64(self)) } }
extension Int64: StoreArgument { public var storeValue: StoreValue { .integer(self) } }
extension Double: StoreArgument { public var storeValue: StoreValue { .real(self) } }
extension String: StoreArgument { public var storeValue: StoreValue { .text(self) } }
extension Array: StoreArgument where Element == UInt8 { public var storeValue: StoreValue { .blob(self) } }
extension Data: StoreArgument { public var storeValue: StoreValue { .blob([UInt8](self)) } }
extension Optional: StoreArgument where Wrapped: StoreArgument {
    public var storeValue: StoreValue { self?.storeValue ?? .null }
}

/// A store failure that is not the caller's configuration: a row that does not read back as
/// the schema says, or the database refusing a statement (its own message, never the password).
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A row read back: its columns by name.
public struct StoreRow: Sendable {
    public let values: [String: StoreValue]

    public init(_ values: [String: StoreValue]) { self.values = values }

    private func value(_ column: String) throws -> StoreValue {
        guard let value = values[column] else { throw StoreError("no column \(column) in the row read back") }
        return value
    }

    public func optionalInt(_ column: String) throws -> Int? {
        switch try value(column) {
        case .null: return nil
        case .integer(let v): return Int(v)
        default: throw StoreError("column \(column) is not an integer")
        }
    }

    public func int(_ column: String) throws -> Int {
        guard let v = try optionalInt(column) else { throw StoreError("column \(column) is null") }
        return v
    }

    /// A real; an integer reads as one (SQLite keeps an integral real in a `DOUBLE` column as
    /// written, but an aggregate of none may come back as either).
    public func optionalDouble(_ column: String) throws -> Double? {
        switch try value(column) {
        case .null: return nil
        case .real(let v): return v
        case .integer(let v): return Double(v)
        default: throw StoreError("column \(column) is not a number")
        }
    }

    public func double(_ column: String) throws -> Double {
        guard let v = try optionalDouble(column) else { throw StoreError("column \(column) is null") }
        return v
    }

    public func optionalString(_ column: String) throws -> String? {
        switch try value(column) {
        case .null: return nil
        case .text(let v): return v
        default: throw StoreError("column \(column) is not text")
        }
    }

    public func string(_ column: String) throws -> String {
        guard let v = try optionalString(column) else { throw StoreError("column \(column) is null") }
        return v
    }

    public func optionalBytes(_ column: String) throws -> [UInt8]? {
        switch try value(column) {
        case .null: return nil
        case .blob(let v): return v
        default: throw StoreError("column \(column) is not a blob")
        }
    }

    public func bytes(_ column: String) throws -> [UInt8] {
        guard let v = try optionalBytes(column) else { throw StoreError("column \(column) is null") }
        return v
    }
}

/// The statements of one transaction. SQL is written once for both databases: `?`
/// placeholders, the types of ``StoreSchema``, upserts as `ON CONFLICT … DO UPDATE`, and
/// aggregates cast where the two would differ.
public protocol StoreTransaction {
    func execute(_ sql: String, _ arguments: [any StoreArgument]) throws
    func fetch(_ sql: String, _ arguments: [any StoreArgument]) throws -> [StoreRow]
    /// Whether a table exists: a store opened for reading may predate a migration.
    func tableExists(_ name: String) throws -> Bool
    /// Seconds since 1970 by the database's clock: one clock for every process sharing the
    /// database, whatever their own say (a lease's expiry is compared with it).
    func databaseTime() throws -> Double
}

extension StoreTransaction {
    public func execute(_ sql: String) throws { try execute(sql, []) }
    public func fetch(_ sql: String) throws -> [StoreRow] { try fetch(sql, []) }
    public func fetchOne(_ sql: String, _ arguments: [any StoreArgument] = []) throws -> StoreRow? {
        try fetch(sql, arguments).first
    }
}

/// A database the store runs on. `write` is one transaction, serialised with every other
/// writer of the same database — other processes' included — as SQLite serialises them, so
/// that a read-then-insert (the audit chain's next sequence) cannot interleave.
public protocol StoreDatabase: Sendable {
    func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T
    func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T
    /// Releases the database; nothing more can be read or written through it.
    func close() throws
}

/// Opens the databases a program supports. `veil` links ``SQLiteStoreDriver`` and the
/// PostgreSQL driver of `VeilPostgres`; a program built on VeilService alone has SQLite only,
/// and says so when a configuration names PostgreSQL.
public protocol StoreDriver: Sendable {
    /// Opens the database at `location`: for writing, creating and migrating it; for reading,
    /// as it is, refusing every write.
    func open(_ location: StoreLocation, forWriting: Bool) throws -> any StoreDatabase
}

public struct SQLiteStoreDriver: StoreDriver {
    public init() {}

    public func open(_ location: StoreLocation, forWriting: Bool) throws -> any StoreDatabase {
        switch location {
        case .sqlite(let path):
            return forWriting ? try SQLiteStoreDatabase(path: path) : try SQLiteStoreDatabase(readingAt: path)
        case .postgres:
            throw ConfigurationError(
                "this program has no PostgreSQL store (VeilPostgres' PostgresStoreDriver opens one); the state must be a SQLite file"
            )
        }
    }
}
