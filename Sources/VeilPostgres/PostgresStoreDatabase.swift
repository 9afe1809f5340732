import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import VeilService

/// Opens SQLite files (``SQLiteStoreDriver``) and PostgreSQL databases: the driver `veil` uses.
public struct PostgresStoreDriver: StoreDriver {
    public init() {}

    public func open(_ location: StoreLocation, forWriting: Bool) throws -> any StoreDatabase {
        switch location {
        case .sqlite: try SQLiteStoreDriver().open(location, forWriting: forWriting)
        case .postgres(let settings): try PostgresStoreDatabase(settings, forWriting: forWriting)
        }
    }
}

/// The store in a PostgreSQL database (`Specs/wire.md` §6.1), on one connection that the
/// store's callers share in turn, as they share SQLite's writer.
///
/// The store's interface is synchronous — the coordinator calls it from its actor, as it
/// calls SQLite — so each statement blocks the calling thread until the connection's future
/// completes (``blocking(_:within:)``). The connection runs on an event loop of its own
/// (``loop``), which no caller runs on and which never waits for a caller: the coordinator's
/// executor is itself an event loop, so NIO's `wait()`, which refuses any event loop
/// thread, cannot be used, but a wait on another loop's future cannot deadlock.
///
/// Every write transaction first takes a transaction-scoped advisory lock
/// (``writerLock``): writers of one database, in any process, run one at a time, as SQLite
/// runs them, so that a read-then-insert (the audit chain's next sequence, the migrations)
/// cannot interleave with another. Reads are `REPEATABLE READ READ ONLY` transactions: one
/// consistent snapshot, as a SQLite read transaction sees.
final class PostgresStoreDatabase: StoreDatabase {
    /// The connections' event loop: one thread, the store's alone.
    static let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()

    /// `pg_advisory_xact_lock`'s key for the store's writers: "veil" in ASCII.
    static let writerLock: Int64 = 0x7665_696C

    private let settings: PostgresSettings
    private let configuration: PostgresConnection.Configuration
    private let forWriting: Bool
    private let connection = NIOLockedValueBox<PostgresConnection?>(nil)
    private let logger: Logger
    /// Milliseconds a session may sit in a transaction without a statement: one lease.
    private let idleInTransaction: Int
    /// Seconds a statement may go unanswered before its connection is given up: two leases,
    /// and at least 10 s (the store's statements take milliseconds).
    private let statementTimeout: Double

    init(_ settings: PostgresSettings, forWriting: Bool) throws {
        self.settings = settings
        self.forWriting = forWriting
        idleInTransaction = Int((settings.leaseSeconds * 1000).rounded(.up))
        statementTimeout = max(2 * settings.leaseSeconds, 10)
        var logger = Logger(label: "veil.store.postgres")
        logger.logLevel = .critical
        self.logger = logger
        configuration = try Self.configuration(settings)
        if forWriting {
            try migrate()
        } else {
            let exists = try read { db in try db.tableExists("veil_migrations") }
            guard exists else {
                throw ConfigurationError(
                    "no Veil store in \(StoreLocation.postgres(settings)): it has never been opened by veil serve")
            }
        }
    }

    /// How to connect to the database `settings` name: TLS verifying the server's certificate
    /// against `ca` or the system's roots, or none.
    static func configuration(_ settings: PostgresSettings) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch settings.tls {
        case .disable:
            tls = .disable
        case .require:
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateVerification = .fullVerification
            if let ca = settings.ca {
                do {
                    client.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
                } catch {
                    throw ConfigurationError("postgres.ca: cannot read a PEM certificate from \(ca)")
                }
            }
            tls = .require(try NIOSSLContext(configuration: client))
        }
        return PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.user, password: try settings.password(),
            database: settings.database, tls: tls)
    }

    /// Creates the tables, or brings them up to date, under the writers' lock: several
    /// processes starting on one new database migrate it once.
    private func migrate() throws {
        try write { db in
            try db.execute(
                "CREATE TABLE IF NOT EXISTS veil_migrations (name TEXT COLLATE \"C\" PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
            )
            let applied = try db.fetch("SELECT name FROM veil_migrations").map { try $0.string("name") }
            let known = StoreSchema.migrations(.postgres)
            if let unknown = applied.first(where: { name in !known.contains { $0.name == name } }) {
                throw ConfigurationError(
                    "the store in \(StoreLocation.postgres(settings)) has migration \(unknown), which this veil does not know: it was written by a newer version"
                )
            }
            for migration in known where !applied.contains(migration.name) {
                for statement in migration.statements { try db.execute(statement) }
                try db.execute(
                    "INSERT INTO veil_migrations (name, applied) VALUES (?, ?)",
                    [migration.name, Date().timeIntervalSince1970])
            }
        }
    }

    func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try transaction(begin: ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"], body)
    }

    func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        guard forWriting else { throw StoreError("the store was opened for reading only") }
        return try transaction(begin: ["BEGIN", "SELECT pg_advisory_xact_lock(\(Self.writerLock))"], body)
    }

    /// A store dropped without `close()` (or one whose opening failed) closes its connection:
    /// PostgresNIO requires it.
    deinit { try? close() }

    func close() throws {
        connection.withLockedValue { connection in
            if let open = connection { abandon(open) }
            connection = nil
        }
    }

    /// Runs `body` in a transaction on the connection, connecting first if it is closed (a
    /// restarted server, a dropped link) — retrying the connection for up to a lease, so that a
    /// short outage costs a wait, not the process. A failed statement rolls the transaction
    /// back and reaches the caller (a transaction is never replayed: its commit may have
    /// happened); the next call starts on a working connection.
    private func transaction<T>(begin: [String], _ body: (any StoreTransaction) throws -> T) throws -> T {
        try connection.withLockedValue { current in
            if current == nil || current!.isClosed {
                if let stale = current { abandon(stale) }
                current = nil
                current = try connectRetrying()
            }
            let statements = Transaction(connection: current!, logger: logger, timeout: statementTimeout)
            do {
                // Inside: a transaction begun whose lock failed is rolled back, not left open
                // for the next caller's statements.
                for statement in begin { try statements.execute(statement, []) }
                let result = try body(statements)
                try statements.execute("COMMIT", [])
                return result
            } catch {
                // A connection that did not answer, or cannot roll back, is not reused.
                if error is Unanswered || (try? statements.execute("ROLLBACK", [])) == nil {
                    abandon(current!)
                    current = nil
                }
                throw error
            }
        }
    }

    /// A new connection with this store's session settings; refused connections (the server
    /// down or starting) are tried again every quarter second for up to a lease.
    private func connectRetrying() throws -> PostgresConnection {
        let deadline = Date().addingTimeInterval(settings.leaseSeconds)
        while true {
            do {
                let connection = try Self.mapping {
                    try Self.blocking(
                        PostgresConnection.connect(on: Self.loop, configuration: configuration, id: 1, logger: logger),
                        within: statementTimeout)
                }
                // A process frozen inside a write transaction (SIGSTOP, a stalled machine) would
                // hold the writers' lock, and with it every standby's election, until it woke:
                // the server ends such a session after a lease, releasing the lock (§6.2).
                do {
                    try Transaction(connection: connection, logger: logger, timeout: statementTimeout).execute(
                        "SET idle_in_transaction_session_timeout = \(idleInTransaction)", [])
                } catch {
                    abandon(connection)
                    throw error
                }
                return connection
            } catch let error as StoreError where Self.transient.contains(where: error.description.contains) {
                guard Date() < deadline else { throw error }
                Thread.sleep(forTimeInterval: 0.25)
            }
        }
    }

    /// Failures to connect that a restarting server gives (refused, reset, starting up), tried
    /// again; any other — a certificate, a password — at once reaches the caller.
    static let transient = ["Connection refused", "Connection reset", "SQLSTATE 57P03"]

    /// Closes a connection that failed, without waiting long: one whose close never completes
    /// is kept (PostgresNIO requires a connection to be closed before it is released).
    private func abandon(_ connection: PostgresConnection) {
        if (try? Self.blocking(connection.close(), within: 2)) == nil {
            Self.abandoned.withLockedValue { $0.append(connection) }
        }
    }

    static let abandoned = NIOLockedValueBox<[PostgresConnection]>([])

    /// A statement the server did not answer in time: its connection is given up.
    struct Unanswered: Error, CustomStringConvertible {
        var seconds: Double
        var description: String {
            "PostgreSQL: no answer within \(Int(seconds)) s; the connection is given up"
        }
    }

    /// The future's value, the calling thread waiting for it at most `seconds` (a connection
    /// whose server went away does not always fail what was sent on it).
    static func blocking<T: Sendable>(_ future: EventLoopFuture<T>, within seconds: Double) throws -> T {
        precondition(!future.eventLoop.inEventLoop, "the store's event loop must never wait for itself")
        let done = DispatchSemaphore(value: 0)
        let result = NIOLockedValueBox<Result<T, any Error>?>(nil)
        future.whenComplete { outcome in
            result.withLockedValue { $0 = outcome }
            done.signal()
        }
        guard done.wait(timeout: .now() + seconds) == .success else { throw Unanswered(seconds: seconds) }
        return try result.withLockedValue { $0! }.get()
    }

    /// PostgreSQL's own message and SQLSTATE for a refused statement; the kind of failure for
    /// a connection that failed (never the password: PSQLError's description hides details).
    static func mapping<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PSQLError {
            if let message = error.serverInfo?[.message] {
                throw StoreError("PostgreSQL: \(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))")
            }
            let cause = error.underlying.map { ": \($0)" } ?? ""
            throw StoreError("PostgreSQL: \(error.code)\(cause)")
        }
    }

    private struct Transaction: StoreTransaction {
        let connection: PostgresConnection
        let logger: Logger
        let timeout: Double

        func execute(_ sql: String, _ arguments: [any StoreArgument]) throws {
            _ = try run(sql, arguments)
        }

        func fetch(_ sql: String, _ arguments: [any StoreArgument]) throws -> [StoreRow] {
            try run(sql, arguments).map(Self.row)
        }

        func tableExists(_ name: String) throws -> Bool {
            let row = try fetchOne(
                "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
                [name])
            return try row?.int("n") ?? 0 > 0
        }

        /// `clock_timestamp()`, not `now()`: the time of the statement, not of the
        /// transaction's start (the writers' lock may have been waited for).
        func databaseTime() throws -> Double {
            try fetchOne("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION) AS t")?.double("t")
                ?? 0
        }

        private func run(_ sql: String, _ arguments: [any StoreArgument]) throws -> [PostgresRow] {
            var bindings = PostgresBindings(capacity: arguments.count)
            for argument in arguments {
                switch argument.storeValue {
                case .null: bindings.appendNull()
                case .integer(let v): bindings.append(v)
                case .real(let v): bindings.append(v)
                case .text(let v): bindings.append(v)
                case .blob(let v): bindings.append(ByteBuffer(bytes: v))
                }
            }
            let query = PostgresQuery(unsafeSQL: Self.numbered(sql), binds: bindings)
            return try PostgresStoreDatabase.mapping {
                try PostgresStoreDatabase.blocking(connection.query(query, logger: logger), within: timeout).rows
            }
        }

        /// The statement with its `?` placeholders numbered `$1`, `$2`, … as PostgreSQL
        /// wants them; a `?` inside a quoted literal or name is left alone.
        static func numbered(_ sql: String) -> String {
            var result = ""
            var count = 0
            var quote: Character? = nil
            for character in sql {
                if let open = quote {
                    if character == open { quote = nil }
                    result.append(character)
                } else if character == "'" || character == "\"" {
                    quote = character
                    result.append(character)
                } else if character == "?" {
                    count += 1
                    result += "$\(count)"
                } else {
                    result.append(character)
                }
            }
            return result
        }

        static func row(_ row: PostgresRow) throws -> StoreRow {
            var values: [String: StoreValue] = [:]
            for cell in row {
                guard cell.bytes != nil else {
                    values[cell.columnName] = .null
                    continue
                }
                values[cell.columnName] =
                    switch cell.dataType {
                    case .int2, .int4, .int8: .integer(try cell.decode(Int64.self))
                    case .float4, .float8: .real(try cell.decode(Double.self))
                    case .text, .varchar, .name: .text(try cell.decode(String.self))
                    case .bytea:
                        .blob(Array(try cell.decode(ByteBuffer.self).readableBytesView))
                    case .bool: .integer(try cell.decode(Bool.self) ? 1 : 0)
                    default:
                        throw StoreError(
                            "column \(cell.columnName) has PostgreSQL type \(cell.dataType), which the store does not read"
                        )
                    }
            }
            return StoreRow(values)
        }
    }
}

/// Statements a store never runs — `CREATE DATABASE`, `DROP DATABASE`, which no transaction
/// may hold — for `veil bench federation` and the tests, which each make a database of their own.
public enum PostgresAdministration {
    /// Runs `sql` on a connection of its own to the database `settings` name.
    public static func execute(_ sql: String, on settings: PostgresSettings) async throws {
        var logger = Logger(label: "veil.store.postgres")
        logger.logLevel = .critical
        let connection = try await PostgresConnection.connect(
            on: PostgresStoreDatabase.loop, configuration: try PostgresStoreDatabase.configuration(settings), id: 0,
            logger: logger)
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            try? await connection.close()
            throw ConfigurationError("\(StoreLocation.postgres(settings)): \(String(reflecting: error))")
        }
        try await connection.close()
    }
}
