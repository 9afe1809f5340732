import Foundation
import Logging
import VeilPostgres
import VeilService

extension NetworkSimulation {
    /// Runs the federation to its end; `ready` gets the coordinator's ports once it listens
    /// (it asks for port 0 unless `serve.port` says otherwise).
    public func run(
        logger: Logger = Logger(label: "veil.simulate"), dashboardToken: String? = nil,
        holdAfterFederation: Duration = .zero, stopOnSignals: Bool = false,
        ready: @escaping @Sendable (CoordinatorServer.Endpoints) -> Void = { _ in },
        progress: @escaping @Sendable (RoundSummary) -> Void = { _ in }
    ) async throws -> FederationSummary {
        let coordinator = try Coordinator(configuration: serve, logger: logger, stores: PostgresStoreDriver())
        let agents = try participants.enumerated().map { i, p in
            var agent = try ParticipantAgent(configuration: p.join, data: p.data, logger: logger)
            agent.failure = failures[i]
            agent.rejoinsAfterFailure = rejoining.contains(i)
            agent.misbehaviour = misbehaviours[i]
            return agent
        }
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        enum Ended: Sendable {
            case coordinator(FederationSummary)
            case participant(ParticipantSummary)
            case keyHolder
        }
        return try await withThrowingTaskGroup(of: Ended.self) { group in
            group.addTask {
                // A coordinator that fails before it listens (a port taken) ends the wait below.
                defer { portContinuation.finish() }
                return .coordinator(
                    try await CoordinatorServer.run(
                        coordinator, logger: logger, stopOnSignals: stopOnSignals, dashboardToken: dashboardToken,
                        holdAfterFederation: holdAfterFederation,
                        ready: {
                            ready($0)
                            portContinuation.yield($0.grpcPort)
                            portContinuation.finish()
                        },
                        progress: progress))
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                // Its error says why (rethrown by the group).
                while let ended = try await group.next() { if case .coordinator = ended { break } }
                throw ConfigurationError("the coordinator did not start")
            }
            for keyHolder in keyHolders {
                var holder = try KeyHolderAgent(configuration: keyHolder, logger: logger)
                holder.port = port
                group.addTask {
                    _ = try await holder.run()
                    return .keyHolder
                }
            }
            for var agent in agents {
                agent.port = port
                group.addTask {
                    .participant(try await agent.run())
                }
            }
            var summary: FederationSummary?
            var participants: [ParticipantSummary] = []
            for try await ended in group {
                switch ended {
                case .coordinator(let s): summary = s
                case .participant(let p): participants.append(p)
                case .keyHolder: break
                }
            }
            guard var summary else { throw ConfigurationError("the coordinator ended without a summary") }
            summary.participants = participants.sorted { $0.id < $1.id }
            return summary
        }
    }
}
