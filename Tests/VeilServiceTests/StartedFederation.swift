import Foundation
import Logging
import VeilTestSupport

@testable import VeilService

extension NetworkSimulation {
    /// Starts the federation in the background and returns once its coordinator listens, with
    /// the ports it was given (it asks for port 0: no port is guessed and raced for).
    func started(logger: Logger) async throws -> (
        endpoints: CoordinatorServer.Endpoints, run: Task<FederationSummary, any Error>
    ) {
        let (ports, continuation) = AsyncStream.makeStream(of: CoordinatorServer.Endpoints.self)
        let network = self
        let run = Task {
            defer { continuation.finish() }
            return try await network.run(logger: logger, ready: { continuation.yield($0) })
        }
        var iterator = ports.makeAsyncIterator()
        guard let endpoints = await iterator.next() else {
            _ = try await run.value
            throw ConfigurationError("the federation ended before its coordinator listened")
        }
        return (endpoints, run)
    }
}
