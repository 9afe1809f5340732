import Foundation
import GRDB

/// The store in one SQLite file (WAL mode, through GRDB's `DatabasePool`): readers never wait
/// for the writer, and SQLite itself serialises writers.
final class SQLiteStoreDatabase: StoreDatabase {
    private let pool: DatabasePool
    private let readOnly: Bool

    /// Opens (creating and migrating) the file at `path`.
    init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)
        readOnly = false
        var migrator = DatabaseMigrator()
        for migration in StoreSchema.migrations(.sqlite) {
            migrator.registerMigration(migration.name) { db in
                for statement in migration.statements { try db.execute(sql: statement) }
            }
        }
        try migrator.migrate(pool)
    }

    /// Opens an existing file for reading only: no migration.
    init(readingAt path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("no store at \(path)") }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)
        readOnly = true
    }

    func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try pool.read { db in try body(Transaction(db: db)) }
    }

    func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try pool.write { db in try body(Transaction(db: db)) }
    }

    /// Checkpoints the write-ahead log first: after a clean stop the state is one file.
    func close() throws {
        if !readOnly { _ = try pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) } }
        try pool.close()
    }

    /// The journal mode SQLite reports (`wal`).
    var journalMode: String {
        get throws { try pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" } }
    }

    private struct Transaction: StoreTransaction {
        let db: Database

        func execute(_ sql: String, _ arguments: [any StoreArgument]) throws {
            try db.execute(sql: sql, arguments: Self.arguments(arguments))
        }

        func fetch(_ sql: String, _ arguments: [any StoreArgument]) throws -> [StoreRow] {
            try Row.fetchAll(db, sql: sql, arguments: Self.arguments(arguments)).map { row in
                var values: [String: StoreValue] = [:]
                for (column, value) in zip(row.columnNames, row.databaseValues) {
                    values[column] =
                        switch value.storage {
                        case .null: .null
                        case .int64(let v): .integer(v)
                        case .double(let v): .real(v)
                        case .string(let v): .text(v)
                        case .blob(let v): .blob([UInt8](v))
                        }
                }
                return StoreRow(values)
            }
        }

        func tableExists(_ name: String) throws -> Bool { try db.tableExists(name) }

        /// The file is on this machine: its processes share this clock.
        func databaseTime() throws -> Double { Date().timeIntervalSince1970 }

        static func arguments(_ arguments: [any StoreArgument]) -> StatementArguments {
            StatementArguments(
                arguments.map { argument -> (any DatabaseValueConvertible)? in
                    switch argument.storeValue {
                    case .null: nil
                    case .integer(let v): v
                    case .real(let v): v
                    case .text(let v): v
                    case .blob(let v): Data(v)
                    }
                })
        }
    }
}
