import Foundation
import Testing
import VeilTestSupport
import VeilVectors

/// `Vectors/trainer/veil_local_training.json`: Veil's trainer reproduces every case bit for bit
/// (the runner calls `FedAvgFamily.clientUpdate` as the participant does), and a case whose
/// expected update differs in one bit fails.
@Suite struct LocalTrainingVectorTests {
    static let path = "trainer/veil_local_training.json"

    @Test func theNativeTrainerReproducesEveryCase() throws {
        let url = RepositoryPaths.vectors.appendingPathComponent(Self.path)
        let json = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let groups = try #require(json["testGroups"] as? [[String: Any]])
        let tests = groups.flatMap { ($0["tests"] as? [[String: Any]]) ?? [] }
        let report = VectorSuite.verify(file: url, relativePath: Self.path)
        #expect(report.error == nil)
        #expect(report.algorithm == "VEIL-LOCAL-TRAINING")
        #expect(report.outcomes.count == tests.count)
        #expect(report.outcomes.filter { !$0.passed }.map { "\($0.tcId): \($0.reason ?? "")" } == [])
        #expect(tests.filter { $0["operation"] as? String == "train" }.count >= 12)
        let models = Set(tests.compactMap { $0["model"] as? String })
        #expect(models.isSuperset(of: ["softmax", "mlp:8", "mlp:6,4"]))
    }

    @Test func oneBitOfAnUpdateChangedFails() throws {
        let copy = try RepositoryPaths.copyOfVectors()
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let url = copy.appendingPathComponent(Self.path)
        var text = try String(contentsOf: url, encoding: .utf8)
        // The first expected delta's first value, its last hex digit changed.
        let anchor = try #require(text.range(of: "\"delta\" : [\n"))
        let quote = try #require(text.range(of: "\"", range: anchor.upperBound..<text.endIndex))
        let last = text.index(quote.upperBound, offsetBy: 15)
        text.replaceSubrange(last...last, with: text[last] == "0" ? "1" : "0")
        try text.write(to: url, atomically: true, encoding: .utf8)
        let report = VectorSuite.verify(file: url, relativePath: Self.path)
        #expect(report.outcomes.filter { !$0.passed }.map(\.tcId) == [1])
    }
}
