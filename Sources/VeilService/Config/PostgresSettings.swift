import Foundation

/// serve.json's `postgres` (`Specs/wire.md` §6.1): the coordinator's state in a PostgreSQL
/// database instead of a SQLite file — where several `veil serve` processes share it.
public struct PostgresSettings: Codable, Hashable, Sendable {
    public var host = ""
    public var port = 5432
    public var database = ""
    public var user = ""
    /// A file holding the password (a mounted secret; one trailing newline is ignored;
    /// relative to the configuration file); nil: none (trust or peer authentication).
    public var passwordFile: String?
    public var tls = PostgresTLS.require
    /// The CA certificate (PEM) the server's certificate must chain to; nil: the system's.
    public var ca: String?
    /// The leader's lease (`Specs/wire.md` §6.2), renewed every third of it: how long a
    /// standby may wait after a leader dies without releasing it.
    public var leaseSeconds = 10.0

    public init(host: String, port: Int = 5432, database: String, user: String) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
    }

    /// `require`: TLS, with the server's certificate verified (chain and host name) — the
    /// default, as the store holds the model and the privacy ledger. `disable`: none, for a
    /// server on loopback or a private network the operator vouches for.
    public enum PostgresTLS: String, Codable, Hashable, Sendable, CaseIterable, ConfigurationName {
        case require, disable
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, database, user, passwordFile, tls, ca, leaseSeconds
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "postgres")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decode(String.self, forKey: .host)
        try c.take(.port, &port)
        database = try c.decode(String.self, forKey: .database)
        user = try c.decode(String.self, forKey: .user)
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        try c.take(.tls, &tls)
        ca = try c.decodeIfPresent(String.self, forKey: .ca)
        try c.take(.leaseSeconds, &leaseSeconds)
    }

    func validate() throws {
        guard !host.isEmpty else { throw ConfigurationError("postgres.host must not be empty") }
        guard (1...65535).contains(port) else { throw ConfigurationError("postgres.port must be in 1...65535") }
        guard !database.isEmpty else { throw ConfigurationError("postgres.database must not be empty") }
        guard !user.isEmpty else { throw ConfigurationError("postgres.user must not be empty") }
        guard leaseSeconds >= 1, leaseSeconds <= 600 else {
            throw ConfigurationError("postgres.lease_seconds must be in [1, 600]")
        }
        guard tls == .require || ca == nil else {
            throw ConfigurationError("postgres.ca verifies the server's certificate: not with tls \"disable\"")
        }
    }

    func resolved(against base: URL) -> PostgresSettings {
        var settings = self
        settings.passwordFile = passwordFile.map(base.resolving)
        settings.ca = ca.map(base.resolving)
        return settings
    }

    /// The password file's content, without one trailing newline; nil without a file.
    public func password() throws -> String? {
        guard let path = passwordFile else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("postgres.password_file: cannot read \(path)")
        }
        var text = String(decoding: data, as: UTF8.self)
        if text.hasSuffix("\r\n") { text.removeLast(2) } else if text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}
