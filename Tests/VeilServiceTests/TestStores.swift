import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Testing
import VeilPostgres
import VeilTestSupport

@testable import VeilService

/// The two stores the store's tests run against: a SQLite file, and a database of its own on
/// the test cluster that `Scripts/postgres-test-cluster.sh` starts (`VEIL_TEST_POSTGRES`
/// names its settings file). Without the cluster the PostgreSQL cases are skipped, unless
/// VEIL_REQUIRE_TOOLS is set (as CI sets it): then they fail.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The driver `veil` uses: both kinds.
    static let driver = PostgresStoreDriver()

    /// The cluster's settings (database `postgres`), or nil when there is none to use.
    static func clusterSettings() throws -> PostgresSettings? {
        guard let path = ProcessInfo.processInfo.environment["VEIL_TEST_POSTGRES"] else {
            if ProcessInfo.processInfo.environment["VEIL_REQUIRE_TOOLS"] == "1" {
                Issue.record("VEIL_TEST_POSTGRES is not set: Scripts/postgres-test-cluster.sh start DIR sets it up")
            }
            return nil
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONDecoder.snakeCase.decode(PostgresSettings.self, from: data)
    }

    /// A new, empty store location of this kind, and how to remove it; nil for PostgreSQL
    /// without a cluster (the test then returns early).
    func make(_ name: String) async throws -> (location: StoreLocation, remove: @Sendable () async -> Void)? {
        switch self {
        case .sqlite:
            let directory = try RepositoryPaths.temporaryDirectory(name)
            return (
                .sqlite(path: directory.appendingPathComponent("state.sqlite").path),
                { try? FileManager.default.removeItem(at: directory) }
            )
        case .postgres:
            guard var settings = try Self.clusterSettings() else { return nil }
            let database = "veil_\(name.replacingOccurrences(of: "-", with: "_"))_\(UInt32.random(in: 0...UInt32.max))"
            // ICU's English collation ("a" before "B"), as a production database may have: the store's
            // text columns must sort by bytes whatever the database's default.
            try await Self.administer(
                settings, "CREATE DATABASE \(database) TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
            let admin = settings
            settings.database = database
            return (
                .postgres(settings),
                { try? await Self.administer(admin, "DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
            )
        }
    }

    /// The serve.json entry naming `location`: `"state": …` or `"postgres": {…}`.
    func serveEntry(_ location: StoreLocation) throws -> String {
        switch location {
        case .sqlite(let path):
            return #""state": "\#(path)""#
        case .postgres(let settings):
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            return #""postgres": "# + String(decoding: try encoder.encode(settings), as: UTF8.self)
        }
    }

    /// Runs one statement outside a transaction (CREATE and DROP DATABASE refuse one).
    static func administer(_ settings: PostgresSettings, _ sql: String) async throws {
        var logger = Logger(label: "veil.tests.postgres")
        logger.logLevel = .critical
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: settings.host, port: settings.port, username: settings.user, password: try settings.password(),
                database: settings.database, tls: .disable),
            id: 0, logger: logger)
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}

extension JSONDecoder {
    /// Configuration files' keys (snake case), as the service's own decoders read them.
    static var snakeCase: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}
