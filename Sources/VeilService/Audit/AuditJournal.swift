import Foundation
import VeilCore
import VeilCrypto

/// A participant's own account of one masking session it took part in: every message it sent
/// and received, as bytes, and the coordinator's receipt for the round's audit record
/// (`Specs/audit.md` §6). With it the participant holds the coordinator to the record: the
/// exported record must be the one the receipt names, must log every message the participant
/// sent as sent, and every message the participant was shown as sent by the server.
public struct AuditJournalEntry: Codable, Sendable, Equatable {
    public var version = 1
    /// The participant's id, and its roster position in the session.
    public var participant: String
    public var position: UInt32
    public var round: UInt64
    /// The session id (hex) and the coordinator's key that signs its messages (hex Ed25519).
    public var session: String
    public var serverKey: String
    /// Every signed message this participant sent, then every one it received, in order (hex).
    public var sent: [String]
    public var received: [String]
    /// The round's result: whether it completed, the record's hash and the coordinator's
    /// receipt (hex); nil when no result came (the connection ended first) or none was given.
    public var completed: Bool?
    public var recordHash: String?
    public var receipt: String?

    /// `round-RRRRRR-SSSSSSSSSSSSSSSS.json`: the round, and the session id's first 8 bytes
    /// (one round's attempts are different sessions).
    var fileName: String { String(format: "round-%06llu-", round) + "\(session.prefix(16)).json" }
}

/// The folder where a participant keeps its journal entries (`audit_journal` in join.json).
public struct AuditJournal: Sendable {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// Writes an entry atomically (a crash leaves the previous file or none), replacing an
    /// earlier entry of the same session.
    public func write(_ entry: AuditJournalEntry) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try encoder.encode(entry).write(to: directory.appendingPathComponent(entry.fileName), options: .atomic)
    }

    /// Every entry in the folder, by file name; a file that does not parse is an error naming it.
    public func entries() throws -> [(path: String, entry: AuditJournalEntry)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("round-") && $0.hasSuffix(".json") }.sorted()
        return try names.map { name in
            let url = directory.appendingPathComponent(name)
            do {
                // Strict JSON (`Specs/audit.md` §4), as the exports: one reading for every reader.
                let data = try Data(contentsOf: url)
                try ConfigurationKeys.check([UInt8](data), rules: .audit)
                let entry = try JSONDecoder().decode(AuditJournalEntry.self, from: data)
                guard entry.version == 1 else { throw ConfigurationError("version \(entry.version), not 1") }
                return (url.path, entry)
            } catch {
                throw ConfigurationError("the journal entry \(url.path) does not parse: \(error)")
            }
        }
    }
}
