import VeilCore

/// Data split among participants, with a held-out test set for the global model and, where
/// the source provides them, each participant's own test rows (personalised evaluation).
public struct FederatedData: Sendable {
    /// Each participant's training rows.
    public let clients: [Dataset]
    /// The global test set.
    public let test: Dataset
    /// Each participant's own test rows, when the source has them (Synthetic), else empty.
    public let clientTests: [Dataset]

    public init(clients: [Dataset], test: Dataset, clientTests: [Dataset] = []) {
        self.clients = clients
        self.test = test
        self.clientTests = clientTests
    }

    public var featureCount: Int { test.featureCount }
    public var classCount: Int { test.classCount }

    /// All training rows together (for the training-loss curve).
    public var pooledTraining: Dataset { clients.dropFirst().reduce(clients[0]) { $0.appending($1) } }
}

/// How rows are dealt to participants.
public enum Partition: Hashable, Sendable, CustomStringConvertible {
    /// Shuffled, then cut into equal parts.
    case iid
    /// For each class, proportions ~ Dirichlet(α) over participants; smaller α, more skew.
    /// Redrawn until every participant has at least `minimumRows` rows.
    case dirichlet(alpha: Double)
    /// Rows sorted by label and cut into participants × S shards; each participant gets S shards.
    case shards(perClient: Int)

    /// Rows every participant gets at least, under a Dirichlet partition.
    public static let minimumRows = 10

    /// Parses `iid`, `dirichlet:A`, `shards:S`.
    public init(parsing text: String) throws(DataError) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count) {
        case ("iid", 1): self = .iid
        case ("dirichlet", 2):
            guard let alpha = Double(parts[1]), alpha > 0, alpha.isFinite else {
                throw .invalidSpecification("dirichlet:A needs a positive α, got \(parts[1])")
            }
            self = .dirichlet(alpha: alpha)
        case ("shards", 2):
            guard let s = Int(parts[1]), s >= 1 else {
                throw .invalidSpecification("shards:S needs S ≥ 1, got \(parts[1])")
            }
            self = .shards(perClient: s)
        default:
            throw .invalidSpecification("unknown partition \"\(text)\": use iid, dirichlet:A or shards:S")
        }
    }

    public var description: String {
        switch self {
        case .iid: "iid"
        case .dirichlet(let alpha): "dirichlet:\(alpha)"
        case .shards(let s): "shards:\(s)"
        }
    }

    /// Deals the rows of `data` to `clients` participants.
    /// - Throws: ``DataError`` when the data cannot give every participant rows.
    public func split(_ data: Dataset, clients: Int, using generator: inout some RandomNumberGenerator)
        throws(DataError) -> [Dataset]
    {
        guard clients >= 1, data.count >= clients else {
            throw .shape("\(data.count) rows cannot be dealt to \(clients) participants")
        }
        switch self {
        case .iid:
            var rows = Array(0..<data.count)
            generator.shuffle(&rows)
            return (0..<clients).map { c in
                data.subset(stride(from: c, to: rows.count, by: clients).map { rows[$0] }.sorted())
            }
        case .dirichlet(let alpha):
            guard data.count >= clients * Self.minimumRows else {
                throw .shape("\(data.count) rows cannot give \(clients) participants \(Self.minimumRows) each")
            }
            for _ in 0..<1000 {
                var assigned = [[Int]](repeating: [], count: clients)
                for var rows in data.rowsByClass where !rows.isEmpty {
                    generator.shuffle(&rows)
                    let proportions = generator.dirichlet(alpha: alpha, count: clients)
                    var start = 0
                    var cumulative = 0.0
                    for c in 0..<clients {
                        cumulative += proportions[c]
                        let end =
                            c == clients - 1
                            ? rows.count : min(rows.count, Int((cumulative * Double(rows.count)).rounded()))
                        assigned[c] += rows[start..<max(start, end)]
                        start = max(start, end)
                    }
                }
                if assigned.allSatisfy({ $0.count >= Self.minimumRows }) {
                    return assigned.map { data.subset($0.sorted()) }
                }
            }
            throw .shape(
                "a Dirichlet(\(alpha)) partition left a participant with fewer than \(Self.minimumRows) rows 1,000 times"
            )
        case .shards(let perClient):
            let shardCount = clients * perClient
            guard data.count >= shardCount else { throw .shape("\(data.count) rows cannot make \(shardCount) shards") }
            let sorted = (0..<data.count).sorted { (data.labels[$0], $0) < (data.labels[$1], $1) }
            let size = data.count / shardCount
            var shards = Array(0..<shardCount)
            generator.shuffle(&shards)
            return (0..<clients).map { c in
                let mine = shards[(c * perClient)..<((c + 1) * perClient)]
                return data.subset(
                    mine.flatMap { s in sorted[(s * size)..<(s == shardCount - 1 ? data.count : (s + 1) * size)] }
                        .sorted())
            }
        }
    }
}
