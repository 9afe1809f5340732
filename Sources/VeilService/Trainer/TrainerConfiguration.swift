import Foundation

/// join.json's `trainer`: local training is done by the user's own program, over the exchange
/// of `Specs/trainer.md`; Veil does everything else (clipping, encoding, noise, masking or
/// encryption, the ledger).
public struct TrainerConfiguration: Codable, Hashable, Sendable {
    /// The program and its arguments (no shell): run once per round, in the configuration
    /// file's folder, with `VEIL_TRAINER_REQUEST` naming the round's request file.
    public var command: [String]
    /// Handed to the trainer as the request's `data` (a path, a table name: Veil does not read
    /// it); nil: the request has none.
    public var data: String?
    /// The number of examples announced at registration (the coordinator's selection reads
    /// it); each round's weight comes from the count the trainer returns.
    public var examples: UInt64 = 0
    /// A round's training is stopped (its process group killed) after this long.
    public var timeoutSeconds = 300.0
    /// The trainer's address-space limit (`ulimit -v`).
    public var maxMemoryBytes: UInt64 = 4 << 30
    /// Where each round's folder is made (relative to the configuration file); nil: the
    /// system's temporary folder.
    public var workDirectory: String?
    /// The folder the trainer runs in: join.json's (set when it is loaded); nil: this process's.
    public var runDirectory: String?

    public init(command: [String], data: String? = nil, examples: UInt64 = 0) {
        self.command = command
        self.data = data
        self.examples = examples
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case command, data, examples, timeoutSeconds, maxMemoryBytes, workDirectory
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "trainer")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(command: try c.decode([String].self, forKey: .command))
        data = try c.decodeIfPresent(String.self, forKey: .data)
        try c.take(.examples, &examples); try c.take(.timeoutSeconds, &timeoutSeconds)
        try c.take(.maxMemoryBytes, &maxMemoryBytes)
        workDirectory = try c.decodeIfPresent(String.self, forKey: .workDirectory)
    }

    /// The smallest address space a trainer may be given: below it not even an interpreter starts.
    static let minMemoryBytes: UInt64 = 64 << 20

    func validate() throws {
        guard let program = command.first, !program.isEmpty else {
            throw ConfigurationError("trainer.command must name a program")
        }
        guard timeoutSeconds > 0, timeoutSeconds <= 86_400 else {
            throw ConfigurationError("trainer.timeout_seconds must be in (0, 86400]")
        }
        guard maxMemoryBytes >= Self.minMemoryBytes, maxMemoryBytes <= 1 << 50 else {
            throw ConfigurationError("trainer.max_memory_bytes must be in [2^26, 2^50]")
        }
        if let directory = workDirectory, directory.isEmpty {
            throw ConfigurationError("trainer.work_directory must name a folder")
        }
    }
}
