import Foundation
import Testing
import VeilLearning
import VeilTestSupport

@testable import VeilExport

/// Runs `Specs/reference/check_models.py` (onnxruntime, LiteRT) on `files` against Veil's own
/// predictions of `parameters` on `test`; expects it to pass and returns its reports, one per file.
func runtimeReports(_ files: [String], model: any Model, parameters: [Double], test: Dataset, in directory: URL)
    async throws -> [[String: Any]]
{
    let predictions = directory.appendingPathComponent("predictions.json")
    try ModelFile.predictions(model, parameters: parameters, on: test).write(to: predictions)
    let script = RepositoryPaths.root.appendingPathComponent("Specs/reference/check_models.py").path
    let output = try await ProcessRunner.run("/usr/bin/env", ["python3", script, predictions.path] + files)
    #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
    return output.stdout.split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
}
