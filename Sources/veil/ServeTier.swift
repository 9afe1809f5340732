import ArgumentParser
import Foundation
import Logging
import Synchronization
import VeilPostgres
import VeilService
import VeilTransport

extension ServeCommand {
    /// `veil serve` with `hierarchy` (`Specs/wire.md` §6.3): an aggregator from the start, and
    /// the leader too once it holds the lease — until the federation ends, the lease is lost
    /// (exit 3), or a signal stops it (its participants reconnect to another aggregator).
    func runTier(_ configuration: ServeConfiguration) async throws {
        let settings = configuration.postgres!
        let holder = LeaderElection.defaultHolder
        let coordinator: Coordinator
        let election: LeaderElection
        do {
            let shared = try CoordinatorStore(electingAt: configuration.store, driver: PostgresStoreDriver())
            let tier = TierMembership(
                store: shared, holder: holder, address: advertise ?? "", liveness: settings.leaseSeconds)
            coordinator = try Coordinator(configuration: configuration, stores: PostgresStoreDriver(), tier: tier)
            election = LeaderElection(store: shared, holder: holder, seconds: settings.leaseSeconds)
        } catch { throw usageError("\(error)") }
        let json = output.json
        let isLeading = Mutex(false)
        let leading = Task { () -> FederationSummary? in
            while true {
                let lease = try await election.lead(
                    waiting: { held, _ in
                        FileHandle.standardError.write(
                            Data("aggregating; \(held.holder) leads under epoch \(held.epoch)\n".utf8))
                    },
                    unreachable: { error in
                        FileHandle.standardError.write(
                            Data("the store cannot be reached (\(error)); asking again\n".utf8))
                    })
                isLeading.withLock { $0 = true }
                FileHandle.standardError.write(Data("leading under epoch \(lease.epoch) as \(lease.holder)\n".utf8))
                // A leader that cannot renew its lease stops at once: another process may lead,
                // and the store refuses this one's writes.
                let renewal = Task {
                    do { try await election.keepLeading(lease) } catch let lost as LeadershipLost {
                        FileHandle.standardError.write(Data("error: \(lost)\n".utf8))
                        Foundation.exit(3)
                    }
                }
                defer { renewal.cancel() }
                var leader: TierLeader? = nil
                do {
                    leader = try TierLeader(configuration: configuration, fence: lease, stores: PostgresStoreDriver())
                    let summary = try await leader!.run { round in
                        if !json {
                            print(roundLine(round))
                            fflush(nil)
                        }
                    }
                    try? await leader?.close()
                    renewal.cancel()
                    try? election.store.releaseLeadership(lease)
                    return summary
                } catch is CancellationError {
                    // Stopped by a signal: another process leads at once, resuming the open round.
                    renewal.cancel()
                    try? election.store.releaseLeadership(lease)
                    return nil
                } catch let lost as LeadershipLost {
                    FileHandle.standardError.write(Data("error: \(lost)\n".utf8))
                    Foundation.exit(3)
                } catch {
                    // A write the database cut off (an outage, a restart): what it meant to commit
                    // may or may not be in the store. This process stops leading — the next
                    // leader, maybe this one again, reads the store and goes on (Specs/wire.md
                    // §6.1, §6.3) — and goes on aggregating meanwhile.
                    renewal.cancel()
                    try? await leader?.close()
                    try? election.store.releaseLeadership(lease)
                    isLeading.withLock { $0 = false }
                    FileHandle.standardError.write(
                        Data("error: the leader stopped: \(error); aggregating, and asking for the lease again\n".utf8))
                    try await Task.sleep(for: .seconds(settings.leaseSeconds / 3))
                }
            }
        }
        let aggregated: FederationSummary
        do {
            aggregated = try await CoordinatorServer.run(
                coordinator, stopOnSignals: true,
                ready: { endpoints in
                    FileHandle.standardError.write(
                        Data(
                            "aggregating on \(configuration.host):\(endpoints.grpcPort)\(endpoints.metricsPort.map { ", metrics on :\($0)" } ?? "")\n"
                                .utf8))
                },
                progress: { group in
                    if !json {
                        print(groupLine(group))
                        fflush(nil)
                    }
                })
        } catch {
            leading.cancel()
            throw error
        }
        // The aggregator ends when the leader has committed every round (or gave up), or on a
        // signal; a process that leads finishes its leading first, unless a signal stopped it.
        let finished =
            aggregated.completedRounds >= configuration.rounds
            || aggregated.stopReason != nil
                && aggregated.stopReason != "the aggregator was stopped"
        if !finished || !isLeading.withLock({ $0 }) { leading.cancel() }
        let led: FederationSummary?
        do { led = try await leading.value } catch is CancellationError {
            led = nil
        } catch let lost as LeadershipLost {
            FileHandle.standardError.write(Data("error: \(lost)\n".utf8))
            throw ExitCode(3)
        } catch {
            if aggregated.completedRounds >= configuration.rounds { led = nil } else { throw error }
        }
        // A tier's attempts are its groups and the leader's rounds: not one count to print.
        try finish(led ?? aggregated, json: json, countingAttempts: false)
    }
}

/// One line per group an aggregator ran.
func groupLine(_ g: RoundSummary) -> String {
    String(
        format: "group of round %4d  %@  members %4d/%-4d t %-4@ %7.2f s  in %9d B  out %9d B%@", g.number,
        g.completed ? "deposited" : "aborted  ", g.survivors, g.cohort, g.threshold.map { "\($0)" } ?? "-", g.seconds,
        g.bytesIn, g.bytesOut, g.abortReason.map { "  (\($0))" } ?? "")
}
