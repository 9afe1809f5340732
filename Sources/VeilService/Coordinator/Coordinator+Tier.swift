import Foundation
import Synchronization
import VeilCore
import VeilLearning
import VeilSecAgg
import VeilWire

/// A process's place in a tier running hierarchical secure aggregation (`Specs/wire.md` §6.3):
/// the shared store, its name there, and where participants reach it.
public struct TierMembership: Sendable {
    /// The tier's PostgreSQL store, without a fence: an aggregator's deposits are fenced by
    /// its group's claim instead.
    public let store: CoordinatorStore
    /// This process in the tier (host and process id, as the lease names it).
    public let holder: String
    /// The address another aggregator's retry hint gives for this one (`host:port`); empty:
    /// none is given.
    public let address: String
    /// How long a heartbeat keeps an aggregator alive: the lease.
    public let liveness: Double

    public init(store: CoordinatorStore, holder: String, address: String, liveness: Double) {
        self.store = store
        self.holder = holder
        self.address = address
        self.liveness = liveness
    }
}

/// What an aggregator's heartbeat reports and reads, shared with the thread that beats: the
/// heartbeat must not wait for the coordinator's actor, which may be unmasking a large group
/// for longer than the liveness window — a working aggregator would be presumed dead.
final class TierPulse: Sendable {
    private struct State {
        var connections = 0
        var secondsPerMember = 0.0
        var waiting = (count: 0, attempt: CoordinatorStore.AggregatorLoad.Waiting.none)
        var peers: [CoordinatorStore.AggregatorLoad] = []
        var stopped = false
    }
    private let state = Mutex(State())

    var connections: Int {
        get { state.withLock { $0.connections } }
        set { state.withLock { $0.connections = newValue } }
    }
    var secondsPerMember: Double {
        get { state.withLock { $0.secondsPerMember } }
        set { state.withLock { $0.secondsPerMember = newValue } }
    }
    var peers: [CoordinatorStore.AggregatorLoad] { state.withLock { $0.peers } }
    /// The free participants the aggregator counted for an attempt, when it last looked.
    var waiting: (count: Int, attempt: CoordinatorStore.AggregatorLoad.Waiting) {
        get { state.withLock { $0.waiting } }
        set { state.withLock { $0.waiting = newValue } }
    }

    /// Beats every third of the liveness window on a thread of its own until ``stop()``.
    func start(_ tier: TierMembership, capacity: Int, failed: @escaping @Sendable (any Error) -> Void) {
        Thread.detachNewThread { [self] in
            while !state.withLock({ $0.stopped }) {
                do {
                    let waiting = waiting
                    try tier.store.heartbeat(
                        .init(
                            holder: tier.holder, address: tier.address, connections: connections,
                            capacity: capacity, secondsPerMember: secondsPerMember, waiting: waiting.count,
                            waitingFor: waiting.attempt))
                    let peers = try tier.store.aggregators(liveness: tier.liveness)
                    state.withLock { $0.peers = peers }
                } catch { failed(error) }
                Thread.sleep(forTimeInterval: tier.liveness / 3)
            }
        }
    }

    func stop() { state.withLock { $0.stopped = true } }
}

/// A group this aggregator summed and deposited, whose members learn the round's end once
/// the leader has committed it — or abandoned the attempt. Only what they are told is kept,
/// not the group's machine: an aggregator may hold many groups of a round at once.
struct DepositedGroup {
    let claim: CoordinatorStore.GroupClaim
    let cohort: [String]
    let transcript: [UInt8]
    let contributors: Int
}

/// The aggregator's side (`Specs/wire.md` §6.3): instead of whole rounds, the groups of the
/// round the leader has open — claimed in the shared store, summed here by the masking
/// protocol as any round is, and deposited there as a decoded group sum. The model each group
/// trains is the leader's last checkpoint.
extension Coordinator {
    /// Runs groups until the leader has committed `rounds` rounds (or gave up), then tells
    /// everyone the federation is finished.
    func runAggregator(
        _ tier: TierMembership, _ hierarchy: ServiceHierarchy, progress: @escaping @Sendable (RoundSummary) -> Void
    ) async throws -> FederationSummary {
        let (metrics, logger) = (metrics, logger)
        pulse.start(tier, capacity: hierarchy.maxConnections) { error in
            metrics.increment("veil_store_errors_total")
            logger.error(
                "store operation failed", metadata: ["operation": "write the tier heartbeat", "error": "\(error)"])
        }
        defer {
            pulse.stop()
            try? tier.store.leaveTier(holder: tier.holder)
        }
        var attempts = 0
        var gaveUp = false
        var summaries: [RoundSummary] = []
        while !stopping {
            do {
                try adoptCommitted(tier)
                if completedRounds >= configuration.rounds { break }
                if let reason = try tier.store.value(Self.tierStoppedKey), !reason.isEmpty {
                    stopReason = reason
                    gaveUp = true
                    break
                }
                if let summary = try await runGroupIfPossible(tier, hierarchy) {
                    attempts += 1
                    summaries.append(summary)
                    progress(summary)
                    continue
                }
            } catch {
                // The store cut off or restarting: an aggregator holds no round of its own, so
                // it asks again rather than leaving its participants (a group it was running
                // is recorded and its slot given back, or left to the liveness window).
                metrics.increment("veil_store_errors_total")
                logger.error("tier step failed; asking again", metadata: ["error": "\(error)"])
                try? await clock.sleep(for: .seconds(1))
                continue
            }
            await waitForConnections(upTo: .milliseconds(250))
        }
        stopping = true
        let stopped = stopReason == nil && completedRounds < configuration.rounds
        if stopped { stopReason = "the aggregator was stopped" }
        // Stopped early, its participants reconnect to another aggregator; at the end, they leave.
        return end(handingOver: stopped, attempts: attempts, rounds: summaries, gaveUp: gaveUp)
    }

    /// The `meta` key under which a leader that gave up writes why: the aggregators stop too.
    static let tierStoppedKey = "tier_stopped"

    /// An aggregator at `max_connections` refuses a further participant (not one reconnecting:
    /// its new stream replaces the old) with a retry hint — the live aggregators with room,
    /// the most room first, then the fastest measured.
    func shedding(_ identity: FederationIdentity) -> Veil_V1_Failure? {
        guard let hierarchy = configuration.hierarchy, hierarchy.maxConnections > 0, identity.role == .participant,
            registry.participants[identity.id] == nil, registry.participants.count >= hierarchy.maxConnections
        else { return nil }
        metrics.increment("veil_connections_shed_total")
        let addresses = Self.retryAddresses(pulse.peers, excluding: tier?.holder)
        logger.info(
            "participant shed",
            metadata: ["id": "\(identity.id)", "connected": "\(registry.participants.count)", "hint": "\(addresses)"])
        return .with {
            $0.code = .failureOverloaded
            $0.message =
                "this aggregator serves its hierarchy.max_connections of \(hierarchy.maxConnections) participants: connect again in \(hierarchy.retryAfterSeconds) s"
                + (addresses.isEmpty ? "" : ", first to \(addresses.joined(separator: ", "))")
            $0.retryAfterMillis = UInt32(hierarchy.retryAfterSeconds * 1000)
            $0.retryAddresses = addresses
        }
    }

    /// Up to eight addresses of live aggregators other than `holder` that have room: the most
    /// room first (no limit counts as the most), then the lowest cryptography time per member.
    static func retryAddresses(_ peers: [CoordinatorStore.AggregatorLoad], excluding holder: String?) -> [String] {
        func room(_ load: CoordinatorStore.AggregatorLoad) -> Int { load.capacity == 0 ? Int.max : load.spare }
        return peers.filter { $0.holder != holder && !$0.address.isEmpty && room($0) > 0 }
            .sorted { a, b in
                room(a) != room(b) ? room(a) > room(b) : a.secondsPerMember < b.secondsPerMember
            }
            .prefix(8).map(\.address)
    }

    /// Takes the leader's newest checkpoint as the model, and tells the members of each group
    /// deposited for a round now ended whether their group's sum was part of it.
    private func adoptCommitted(_ tier: TierMembership) throws {
        // The round number is one cheap read every loop; the checkpoint itself only when new.
        if try tier.store.latestRound() > completedRounds, let (round, state) = try tier.store.latestCheckpoint() {
            algorithm = state
            completedRounds = round
            metrics.set("veil_rounds_completed", Double(round))
            if privacy != nil, let stored = try tier.store.ledger() { ledger = stored }
        }
        var still: [DepositedGroup] = []
        for group in deposited {
            let claim = group.claim
            guard let round = try tier.store.tierRound(claim.round) else { continue }
            // A round whose checkpoint is written is committed, even if the leader that wrote it
            // died before marking its row so.
            let committed =
                (round.status == "committed" || round.status == "combining") && completedRounds >= claim.round
            if round.attempt == claim.attempt && !committed && round.status != "abandoned" {
                still.append(group)
                continue
            }
            var kept = false
            if round.attempt == claim.attempt && committed {
                kept = try tier.store.tierGroups(round: claim.round, attempt: claim.attempt, liveness: tier.liveness)
                    .contains { $0.slot == claim.slot && $0.claim == claim.claim && $0.status == "done" }
            }
            let result = Self.result(
                round: claim.round, completed: kept, survivors: kept ? group.contributors : 0,
                reason: kept ? nil : "the leader abandoned attempt \(claim.attempt) of round \(claim.round)",
                transcript: group.transcript)
            for id in group.cohort { registry.send(.with { $0.result = result }, to: id) }
        }
        deposited = still
    }

    /// Claims and runs one group of the open round when enough free participants are here.
    private func runGroupIfPossible(_ tier: TierMembership, _ hierarchy: ServiceHierarchy) async throws
        -> RoundSummary?
    {
        let number = completedRounds + 1
        guard let round = try tier.store.tierRound(number), round.status == "open", round.remaining > 0 else {
            pulse.waiting = (0, .none)
            return nil
        }
        let attempt = CoordinatorStore.AggregatorLoad.Waiting(round: number, attempt: round.attempt)
        let busy = try tier.store.busyMembers(round: number, attempt: round.attempt, liveness: tier.liveness)
        var candidates = registry.participants.values.filter { isCandidate($0) && !busy.contains($0.identity.id) }
            .map {
                CohortSelection.Candidate(id: $0.identity.id, resources: $0.hello.resources, roundsCompleted: 0)
            }
        _ = admitWithinBudget(&candidates)
        if leftOut.round == number {
            let present = candidates.filter { !leftOut.ids.contains($0.id) }
            if present.count >= hierarchy.minGroupSize { candidates = present }
        }
        // The leader combines once every live aggregator has counted too few for another group.
        pulse.waiting = (candidates.count, attempt)
        // A group as large as `group_size` and the cohort's room allow; a participant whose
        // declared smallest cohort is larger waits for a larger group (it would decline this
        // one, and the group abort — again and again).
        let target = min(hierarchy.groupSize, configuration.cohortSize - busy.count)
        let size = min(target, candidates.count)
        candidates.removeAll { (registry.participants[$0.id]?.policy?.minimumCohort ?? 0) > size }
        guard candidates.count >= hierarchy.minGroupSize, size >= hierarchy.minGroupSize else { return nil }
        // A full group at once; a smaller one only when no further free participant has come
        // for a second — participants arriving together are not split into minimal groups.
        let now = ContinuousClock.now
        if candidates.count < target {
            if gathering?.count != candidates.count || gathering?.round != number {
                gathering = (number, candidates.count, now)
                return nil
            }
            guard now - gathering!.since >= .seconds(1) else { return nil }
        }
        gathering = nil
        // A group drawn at random among the free: which participants share a group is not the
        // aggregator's to steer beyond who connected to it.
        let local = try store.nextAttempt(of: number)
        var selection = Xoshiro256(
            seed: configuration.seed, purpose: .cohortSelection, round: number, participant: local)
        var ids = candidates.map(\.id).sorted()
        for i in stride(from: ids.count - 1, to: 0, by: -1) {
            ids.swapAt(i, Int(selection.next() % UInt64(i + 1)))
        }
        let cohort = Array(ids.prefix(size)).sorted()
        let left = candidates.count - cohort.count
        guard
            let claim = try tier.store.claimGroup(
                round: number, attempt: round.attempt, holder: tier.holder, members: cohort, liveness: tier.liveness,
                cohortSize: configuration.cohortSize, waiting: left)
        else { return nil }
        pulse.waiting = (left, attempt)
        logger.info(
            "group claimed",
            metadata: [
                "round": "\(number)", "tier_attempt": "\(round.attempt)", "slot": "\(claim.slot)",
                "claim": "\(claim.claim)", "members": "\(cohort.count)",
            ])
        return try await runGroup(claim, attempt: local, cohort: cohort)
    }

    /// One group's secure sum, as a round of its own at this aggregator: deposited when it
    /// completes, the slot given back when it aborts.
    private func runGroup(_ claim: CoordinatorStore.GroupClaim, attempt: Int, cohort: [String]) async throws
        -> RoundSummary
    {
        let tier = tier!
        let number = claim.round
        let report = try beginAttempt(number, attempt: attempt, cohort: cohort, budgetRefusals: [])
        let machine: RoundMachine
        do {
            let actions: [RoundAction]
            (machine, actions) = try startRound(number: number, attempt: attempt, cohort: cohort)
            active = machine
            execute(actions, of: machine)
        } catch {
            let abort = RoundAbort(.setup, "the group could not start with \(cohort.count) participants: \(error)")
            try record(report, abort: abort, machine: nil)
            recording("give the group back") { try tier.store.releaseGroup(claim) }
            try? await clock.sleep(for: .seconds(1))
            return summarize(report, outcome: .aborted(abort), machine: nil)
        }
        let (outcome, finished) = await attemptEnd()
        switch outcome {
        case .aborted(let abort):
            leaveOut(after: finished)
            try record(report, abort: abort, machine: finished)
            recording("give the group back") { try tier.store.releaseGroup(claim) }
            // A moment for its members to reconnect or change before this aggregator claims again.
            try? await clock.sleep(for: .seconds(1))
            return summarize(report, outcome: outcome, machine: finished)
        case .completed(let result):
            let contributors = result.survivors.map { finished.id(of: $0) }
            let abort: RoundAbort?
            do {
                let sum = try release(result, machine: finished)
                try tier.store.depositGroup(
                    claim,
                    result: .init(
                        contributors: contributors, sum: sum, transcript: finished.transcript,
                        cryptoSeconds: cryptoCPUSeconds))
                abort = nil
            } catch let lost as GroupClaimLost {
                abort = RoundAbort(.release, "\(lost)")
            } catch {
                abort = RoundAbort(.release, "the group's sum could not be deposited: \(error)")
            }
            if let abort {
                try record(report, abort: abort, machine: finished, released: result)
                return summarize(report, outcome: .aborted(abort), machine: finished)
            }
            pulse.secondsPerMember = cryptoCPUSeconds / Double(max(1, cohort.count))
            // The group's own record (its audit record among them) stays in this aggregator's
            // scratch store; the tier keeps its transcript hash with the sum.
            let orchestration = orchestrationRecords(finished, contributors: contributors, abort: nil)
            try store.finishRound(
                number, attempt: attempt,
                record: .init(
                    outcome: "completed", survivors: contributors.count, abortReason: nil,
                    transcriptHash: finished.transcript, bytesIn: finished.bytesIn, bytesOut: finished.bytesOut,
                    contributors: contributors, participation: orchestration.participation),
                checkpoint: nil, accuracy: nil, ledger: nil, audit: auditDraft(finished, result: result, abort: nil))
            learn(orchestration.participation, credits: [])
            deposited.append(
                DepositedGroup(
                    claim: claim, cohort: finished.cohort, transcript: finished.transcript,
                    contributors: contributors.count))
            logger.info(
                "group deposited",
                metadata: [
                    "round": "\(number)", "slot": "\(claim.slot)", "survivors": "\(contributors.count)/\(cohort.count)",
                ])
            return summarize(report, outcome: outcome, machine: finished)
        }
    }

    /// Removes the scratch files of aggregators that died without closing their store (a
    /// SIGKILL): each is named by its process id, and one whose process is gone is nobody's.
    nonisolated static func removeAbandonedScratchFiles() {
        let directory = FileManager.default.temporaryDirectory
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix("veil-aggregator-") {
            guard let pid = name.dropFirst("veil-aggregator-".count).split(separator: "-").first.flatMap({ Int32($0) }),
                pid != getpid(), kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// Sleeps until a participant connects or `timeout` passes.
    private func waitForConnections(upTo timeout: Duration) async {
        let timer = Task { [clock] in
            do { try await clock.sleep(for: timeout) } catch { return }
            await self.wakeConnectionWaiters()
        }
        defer { timer.cancel() }
        await withCheckedContinuation { connectionWaiters.append($0) }
    }
}
