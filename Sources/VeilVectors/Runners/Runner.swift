import Foundation

/// Checks every test of one kind of vector file.
protocol VectorRunner: Sendable {
    /// The `algorithm` of the files this runner checks.
    static var algorithm: String { get }
    /// Runs every case of one file.
    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome]
}

extension VectorRunner {
    /// Decodes a file as `Group`s, runs `check` on each group, and confirms `numberOfTests`.
    static func runGroups<Group: Codable & Sendable>(
        _ data: Data, as: Group.Type, _ check: (Group) -> [CaseOutcome]
    ) throws(VectorError) -> [CaseOutcome] {
        let file = try VectorFile<Group>.decode(data)
        let outcomes = file.testGroups.flatMap(check)
        guard outcomes.count == file.numberOfTests else {
            throw .countMismatch(declared: file.numberOfTests, actual: outcomes.count)
        }
        return outcomes
    }
}

/// Every runner, by the algorithm it checks.
let runners: [String: any VectorRunner.Type] = {
    let all: [any VectorRunner.Type] = [
        X25519Runner.self, Ed25519Runner.self, XChaCha20Poly1305Runner.self, HKDFRunner.self, VeilKDFRunner.self,
        ChaCha20GeneratorRunner.self, MaskExpansionRunner.self, ShamirRunner.self, FixedPointRunner.self,
        SHA256Runner.self,
        SecAggRunner.self, SecAggParametersRunner.self, PaillierRunner.self, PaillierSessionRunner.self,
        DPAccountingRunner.self, PrivacyProjectRunner.self, Ristretto255Runner.self, ONNXExportRunner.self,
        TFLiteExportRunner.self, CoordinateSubsetRunner.self, LocalTrainingRunner.self,
    ]
    return Dictionary(uniqueKeysWithValues: all.map { ($0.algorithm, $0) })
}()
