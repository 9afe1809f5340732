import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilTestSupport

@testable import VeilService

/// Hierarchical secure aggregation's shared state (`Specs/wire.md` §6.3), on both stores: a
/// group's claim fences its deposit, members are in one group per attempt, a dead holder's
/// group is claimed again, and nothing counts once the leader has frozen the attempt.
@Suite struct TierStoreTests {
    typealias Group = CoordinatorStore.TierGroup

    @Test(arguments: StoreKind.allCases)
    func aGroupsClaimFencesItsDepositAndADeadHoldersGroupIsClaimedAgain(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-tier") else { return }
        defer { Task { await remove() } }
        let shared = try CoordinatorStore(electingAt: location, driver: StoreKind.driver)
        defer { try? shared.close() }
        let liveness = 0.6
        func beat(_ holder: String) throws {
            try shared.heartbeat(
                .init(holder: holder, address: "\(holder):1", connections: 4, capacity: 0, secondsPerMember: 0))
        }
        try beat("a")
        try beat("b")
        // Nothing to claim before the leader opens the round.
        #expect(
            try shared.claimGroup(
                round: 1, attempt: 1, holder: "a", members: ["p1"], liveness: liveness, cohortSize: 100) == nil)
        try shared.openTierRound(1, attempt: 1, groups: 2, seconds: 60)
        let round = try #require(try shared.tierRound(1))
        #expect(round.groups == 2 && round.status == "open" && round.remaining > 50)

        let a = try #require(
            try shared.claimGroup(
                round: 1, attempt: 1, holder: "a", members: ["p1", "p2"], liveness: liveness, cohortSize: 100))
        #expect(a.slot == 0 && a.claim == 1)
        // A member already in a live group cannot be in another.
        #expect(
            try shared.claimGroup(
                round: 1, attempt: 1, holder: "b", members: ["p2", "p3"], liveness: liveness, cohortSize: 100) == nil)
        let b = try #require(
            try shared.claimGroup(
                round: 1, attempt: 1, holder: "b", members: ["p3", "p4"], liveness: liveness, cohortSize: 100))
        #expect(b.slot == 1)
        // Both slots taken.
        #expect(
            try shared.claimGroup(
                round: 1, attempt: 1, holder: "b", members: ["p5"], liveness: liveness, cohortSize: 100) == nil)
        #expect(try shared.busyMembers(round: 1, attempt: 1, liveness: liveness) == ["p1", "p2", "p3", "p4"])

        // a's heartbeat stops: its group is free for b, with the next claim number; a's late
        // deposit is refused, b's rerun counts.
        try await Task.sleep(for: .milliseconds(800))
        try beat("b")
        #expect(try shared.busyMembers(round: 1, attempt: 1, liveness: liveness) == ["p3", "p4"])
        let rerun = try #require(
            try shared.claimGroup(
                round: 1, attempt: 1, holder: "b", members: ["p1", "p2"], liveness: liveness, cohortSize: 100))
        #expect(rerun.slot == 0 && rerun.claim == 2)
        let result = CoordinatorStore.GroupResult(
            contributors: ["p1", "p2"], sum: [1.5, -2.25, 2], transcript: [9], cryptoSeconds: 0.1)
        #expect(throws: GroupClaimLost.self) { try shared.depositGroup(a, result: result) }
        try shared.depositGroup(rerun, result: result)
        // A group deposited once cannot be deposited or given back again under its claim.
        #expect(throws: GroupClaimLost.self) { try shared.depositGroup(rerun, result: result) }
        #expect(throws: GroupClaimLost.self) { try shared.releaseGroup(rerun) }

        // b's own group aborts and is given back: free for anyone.
        try shared.releaseGroup(b)
        let groups = try shared.tierGroups(round: 1, attempt: 1, liveness: liveness)
        #expect(groups.map(\.status) == ["done", "free"])
        #expect(groups[0].sum == [1.5, -2.25, 2] && groups[0].contributors == ["p1", "p2"] && groups[0].holder == "b")
        let again = try #require(
            try shared.claimGroup(
                round: 1, attempt: 1, holder: "b", members: ["p3", "p4"], liveness: liveness, cohortSize: 100))
        #expect(again.slot == 1 && again.claim == 2)

        // The leader freezes the attempt: nothing deposited after that counts.
        try shared.closeTierRound(1, attempt: 1, status: "combining")
        #expect(throws: GroupClaimLost.self) { try shared.depositGroup(again, result: result) }
        #expect(
            try shared.claimGroup(
                round: 1, attempt: 1, holder: "b", members: ["p9"], liveness: liveness, cohortSize: 100) == nil)

        // A new attempt starts with every slot free, and the old attempt's claims are void.
        try shared.openTierRound(1, attempt: 2, groups: 1, seconds: 60)
        #expect(throws: GroupClaimLost.self) { try shared.depositGroup(again, result: result) }
        let fresh = try #require(
            try shared.claimGroup(
                round: 1, attempt: 2, holder: "b", members: ["p1", "p2"], liveness: liveness, cohortSize: 100))
        #expect(fresh.slot == 0 && fresh.claim == 1)

        // A holder only paused: its group's members are claimed again elsewhere, which frees
        // its group at once — its deposit, when it wakes, cannot count them twice.
        try shared.openTierRound(1, attempt: 3, groups: 3, seconds: 60)
        try beat("a")
        let given = try #require(
            try shared.claimGroup(
                round: 1, attempt: 3, holder: "a", members: ["p1"], liveness: liveness, cohortSize: 100))
        let slow = try #require(
            try shared.claimGroup(
                round: 1, attempt: 3, holder: "a", members: ["p3", "p4"], liveness: liveness, cohortSize: 100))
        try shared.releaseGroup(given)
        #expect(given.slot == 0 && slow.slot == 1)
        try await Task.sleep(for: .milliseconds(800))
        try beat("b")
        let overlapping = try #require(
            try shared.claimGroup(
                round: 1, attempt: 3, holder: "b", members: ["p4", "p5"], liveness: liveness, cohortSize: 100))
        // The lowest slot is the free one; the paused holder's, sharing p4, is freed with it.
        #expect(overlapping.slot == 0)
        #expect(try shared.tierGroups(round: 1, attempt: 3, liveness: liveness).map(\.status) == ["running", "free"])
        #expect(throws: GroupClaimLost.self) {
            try shared.depositGroup(
                slow, result: .init(contributors: ["p3", "p4"], sum: [1], transcript: [], cryptoSeconds: 0))
        }
        // A deposit naming a contributor already counted in a done group is refused.
        try shared.depositGroup(
            overlapping, result: .init(contributors: ["p4", "p5"], sum: [1], transcript: [], cryptoSeconds: 0))
        let liar = try #require(
            try shared.claimGroup(
                round: 1, attempt: 3, holder: "b", members: ["p6", "p7"], liveness: liveness, cohortSize: 100))
        #expect(throws: GroupClaimLost.self) {
            try shared.depositGroup(
                liar, result: .init(contributors: ["p5", "p6"], sum: [1], transcript: [], cryptoSeconds: 0))
        }

        // A round holds at most cohort_size members across its groups.
        #expect(
            try shared.claimGroup(
                round: 1, attempt: 3, holder: "b", members: ["p8"], liveness: liveness, cohortSize: 4) == nil)
        #expect(
            try shared.claimGroup(
                round: 1, attempt: 3, holder: "b", members: ["p8"], liveness: liveness, cohortSize: 5) != nil)

        // A clean stop removes the heartbeat at once.
        try shared.leaveTier(holder: "b")
        try shared.leaveTier(holder: "a")
        #expect(try shared.aggregators(liveness: 60).isEmpty)
    }

    static func group(_ slot: Int, _ status: String, contributors: Int) -> Group {
        Group(
            slot: slot, holder: "h", claim: 1, members: (0..<contributors).map { "p\(slot)-\($0)" }, status: status,
            alive: status != "dead", recent: status != "dead",
            contributors: (0..<contributors).map { "p\(slot)-\($0)" }, sum: [], transcript: [],
            cryptoSeconds: 0)
    }

    static func round(groups: Int, remaining: Double) -> CoordinatorStore.TierRound {
        .init(number: 3, attempt: 1, groups: groups, remaining: remaining, status: "open")
    }

    static func waiting(_ count: Int, attempt: Int = 1) -> CoordinatorStore.AggregatorLoad {
        .init(
            holder: "h", address: "", connections: count, capacity: 0, secondsPerMember: 0, waiting: count,
            waitingFor: .init(round: 3, attempt: attempt))
    }

    @Test func theLeaderCombinesOnceNoFurtherGroupWillComeWithEnoughContributors() {
        var hierarchy = ServiceHierarchy()
        hierarchy.minGroupSize = 3
        func decide(
            _ groups: [Group], _ aggregators: [CoordinatorStore.AggregatorLoad], remaining: Double = 5,
            cohort: Int = 20
        ) -> TierDecision {
            TierDecision.decide(
                Self.round(groups: 6, remaining: remaining), groups: groups, aggregators: aggregators,
                hierarchy: hierarchy, cohortSize: cohort, minParticipants: 6)
        }
        let done = [Self.group(0, "done", contributors: 4), Self.group(1, "done", contributors: 3)]
        // A group still running: wait.
        #expect(decide(done + [Self.group(2, "running", contributors: 4)], [Self.waiting(0)]) == .wait)
        // A group whose holder died recently may be summed again: wait; once long dead, not.
        var died = Self.group(2, "running", contributors: 4)
        died.alive = false
        #expect(decide(done + [died], [Self.waiting(0)]) == .wait)
        died.recent = false
        #expect(decide(done + [died], [Self.waiting(0)]) == .combine(slots: [0, 1]))
        // Nothing running, and no aggregator can form another group for this attempt: combine.
        #expect(decide(done, [Self.waiting(2), Self.waiting(0)]) == .combine(slots: [0, 1]))
        // An aggregator that has not counted for this attempt yet, or counts enough for a group: wait.
        #expect(decide(done, [Self.waiting(0, attempt: 0)]) == .wait)
        #expect(decide(done, [Self.waiting(2), Self.waiting(3)]) == .wait)
        // The cohort is full: no room for another group, whatever is waiting.
        #expect(decide(done, [Self.waiting(9)], cohort: 7) == .combine(slots: [0, 1]))
        // Too few contributors: wait for more while there is time; at the deadline, abandon.
        let few = [Self.group(0, "done", contributors: 4)]
        #expect(decide(few, [Self.waiting(0)]) == .wait)
        #expect(
            decide(few, [Self.waiting(0)], remaining: 0)
                == .abandon(
                    reason: "4 contributors in 1 groups when hierarchy.round_seconds ran out (min_participants 6)"))
        // At the deadline, enough contributors are combined even with more waiting.
        #expect(decide(done, [Self.waiting(5)], remaining: -1) == .combine(slots: [0, 1]))
    }

    @Test func theLeaderLeavesOutWhatTheStoreWouldHaveRefused() {
        func group(_ slot: Int, members: [String], contributors: [String], values: Int = 3) -> Group {
            Group(
                slot: slot, holder: "h", claim: 1, members: members, status: "done", alive: true, recent: true,
                contributors: contributors, sum: [Double](repeating: 1, count: values), transcript: [],
                cryptoSeconds: 0)
        }
        let (kept, leftOut) = TierLeader.usable(
            [
                group(2, members: ["c", "d"], contributors: ["c", "d"]),
                group(0, members: ["a", "b"], contributors: ["a", "b"]),
                group(1, members: ["b", "e"], contributors: ["b", "e"]),  // b counted in slot 0
                group(3, members: ["f"], contributors: ["f", "x"]),  // x is nobody's member
                group(4, members: ["g"], contributors: ["g"], values: 2),  // not this model's length
                group(9, members: ["h"], contributors: ["h"]),  // beyond the attempt's slots
            ], length: 3, slots: 5)
        #expect(kept.map(\.slot) == [0, 2])
        #expect(leftOut.map(\.slot) == [1, 3, 4, 9])
        #expect(leftOut.map(\.why)[0] == "a contributor is already counted")
    }

    @Test func aRetryHintNamesLiveAggregatorsWithRoomTheMostRoomFirst() {
        func load(_ holder: String, _ connections: Int, _ capacity: Int, _ speed: Double, address: String? = nil)
            -> CoordinatorStore.AggregatorLoad
        {
            .init(
                holder: holder, address: address ?? "\(holder):7443", connections: connections, capacity: capacity,
                secondsPerMember: speed)
        }
        let peers = [
            load("me", 1, 10, 0), load("full", 10, 10, 0), load("some", 8, 10, 0.5), load("more", 2, 10, 0.9),
            load("fast", 8, 10, 0.1), load("nolimit", 50, 0, 2), load("hidden", 0, 10, 0, address: ""),
        ]
        #expect(
            Coordinator.retryAddresses(peers, excluding: "me") == [
                "nolimit:7443", "more:7443", "fast:7443", "some:7443",
            ])
        let many = (0..<12).map { load("a\($0)", 0, 10, 0) }
        #expect(Coordinator.retryAddresses(many, excluding: nil).count == 8)
    }

    @Test func hierarchyIsStrictAndDeclinesWhatAGroupSumDoesNotDo() throws {
        func configuration(_ hierarchy: String, extra: String = "", store: String? = nil) throws -> ServeConfiguration {
            let json = """
                {"tls": {"ca": "c", "certificate": "c", "key": "k", "signing_key": "s"},
                 \(store ?? #""postgres": {"host": "h", "database": "d", "user": "u""#  + "}"),
                 "min_participants": 10, "cohort_size": 40\(extra), "hierarchy": \(hierarchy)}
                """
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: file) }
            try json.write(to: file, atomically: true, encoding: .utf8)
            let c = try ServeConfiguration.load(path: file.path)
            try c.validate()
            return c
        }
        let good = try configuration(#"{"group_size": 10, "min_group_size": 5}"#)
        #expect(good.hierarchy?.groups(cohortSize: 40) == 8)
        #expect(ServiceHierarchy().groups(cohortSize: 250) == 25)
        func refused(_ hierarchy: String, extra: String = "", store: String? = nil, _ words: String) {
            #expect {
                try configuration(hierarchy, extra: extra, store: store)
            } throws: { error in
                "\(error)".contains(words)
            }
        }
        refused(#"{"group_sise": 10}"#, "group_sise")
        refused(#"{"group_size": 10, "min_group_size": 5}"#, store: #""state": "s.sqlite""#, "needs a postgres store")
        refused(#"{"group_size": 10, "min_group_size": 1}"#, "min_group_size must be at least 2")
        refused(#"{"group_size": 4, "min_group_size": 5}"#, "group_size must be at least")
        refused(#"{"group_size": 50, "min_group_size": 5}"#, "at most cohort_size")
        refused(#"{"group_size": 20, "min_group_size": 11}"#, "min_participants must be at least")
        refused(#"{"group_size": 10, "min_group_size": 5, "max_connections": 3}"#, "max_connections must be 0 or")
        refused(#"{"group_size": 10, "min_group_size": 5, "round_seconds": 0}"#, "round_seconds")
        refused(#"{"group_size": 10, "min_group_size": 5}"#, extra: #", "secure_sum": "paillier""#, "Paillier")
        refused(#"{"group_size": 10, "min_group_size": 5}"#, extra: #", "asynchronous": {}"#, "asynchronous")
        refused(#"{"group_size": 10, "min_group_size": 5}"#, extra: #", "selection": "oort""#, "selection oort")
        refused(
            #"{"group_size": 10, "min_group_size": 5}"#, extra: #", "adaptive_compression": {}"#,
            "adaptive_compression")
        refused(
            #"{"group_size": 10, "min_group_size": 5}"#,
            extra: #", "privacy": {"mode": "central", "epsilon": 1, "delta": 1e-6, "clip": 1}"#, "central")
        refused(
            #"{"group_size": 10, "min_group_size": 5}"#,
            extra: #", "privacy": {"mode": "ddg", "epsilon": 1, "delta": 1e-6, "clip": 1}"#,
            "privacy.min_contributors")
    }
}

/// The leader against aggregators played by the test through the store (`Specs/wire.md` §6.3):
/// what it commits is the algorithm's server rule on the sum of the groups' sums.
@Suite struct TierLeaderTests {
    static func configuration(_ settings: PostgresSettings, roundSeconds: Double) -> ServeConfiguration {
        var c = ServeConfiguration(tls: .init(ca: "", certificate: "", key: "", signingKey: ""))
        c.postgres = settings
        c.rounds = 1
        c.features = 3
        c.classes = 2
        c.evaluate = nil
        c.minParticipants = 4
        c.cohortSize = 6
        c.maxRoundAttempts = 5
        var hierarchy = ServiceHierarchy()
        hierarchy.groupSize = 3
        hierarchy.minGroupSize = 2
        hierarchy.roundSeconds = roundSeconds
        c.hierarchy = hierarchy
        return c
    }

    /// A leader of `configure`'s configuration on a new database, under the lease; the store
    /// the test plays the aggregators through (one aggregator, "x", beating); round 1 as the
    /// leader opened it. The caller ends the leader, closes the store and removes the database.
    struct Led {
        let shared: CoordinatorStore
        let configuration: ServeConfiguration
        let running: Task<FederationSummary, any Error>
        let opened: CoordinatorStore.TierRound
        let remove: @Sendable () async -> Void

        func end() {
            running.cancel()
            try? shared.close()
            Task { await remove() }
        }
    }

    static func lead(_ name: String, _ configure: (inout ServeConfiguration) -> Void = { _ in }) async throws
        -> Led?
    {
        guard let (location, remove) = try await StoreKind.postgres.make(name),
            case .postgres(let settings) = location
        else { return nil }
        let shared = try CoordinatorStore(electingAt: location, driver: StoreKind.driver)
        guard case .leading(let lease) = try shared.acquireLeadership(holder: "leader", seconds: 60) else {
            Issue.record("no lease")
            return nil
        }
        var c = configuration(settings, roundSeconds: 1.5)
        configure(&c)
        try c.validate()
        let leader = try TierLeader(configuration: c, fence: lease, stores: StoreKind.driver)
        let running = Task { try await leader.run() }
        #expect(await eventually(timeout: 10) { (try? shared.tierRound(1)) != nil })
        let opened = try #require(try shared.tierRound(1))
        try shared.heartbeat(.init(holder: "x", address: "", connections: 3, capacity: 0, secondsPerMember: 0))
        return Led(shared: shared, configuration: c, running: running, opened: opened, remove: remove)
    }

    @Test func theLeaderCommitsTheServerRuleOnTheSumOfTheGroupsSums() async throws {
        guard let led = try await Self.lead("tier-leader") else { return }
        defer { led.end() }
        let (shared, c, running, opened) = (led.shared, led.configuration, led.running, led.opened)
        #expect(opened.groups == 3 && opened.status == "open")

        // The first attempt: one group of two by the deadline, under min_participants 4: abandoned.
        let lone = try #require(
            try shared.claimGroup(
                round: 1, attempt: opened.attempt, holder: "x", members: ["a", "b"], liveness: 60, cohortSize: 6))
        let length = 3 * 2 + 2 + 1  // weights and biases of a 3-feature, 2-class softmax, and the weight
        try shared.depositGroup(
            lone,
            result: .init(
                contributors: ["a", "b"], sum: [Double](repeating: 1, count: length), transcript: [1],
                cryptoSeconds: 0))
        #expect(await eventually(timeout: 10) { (try? shared.tierRound(1))?.attempt == opened.attempt + 1 })
        #expect(try shared.rounds().map(\.outcome) == ["aborted", "running"])

        // The second: two groups, five contributors; the leader combines them.
        let attempt = opened.attempt + 1
        let first: [Double] = (0..<length).map { i in Double(i) * 0.25 - 1 }
        let second: [Double] = (0..<length).map { i in Double(length - i) * 0.125 }
        let sums = [first, second]
        for (members, sum) in zip([["a", "b", "c"], ["d", "e", "f"]], sums) {
            let claim = try #require(
                try shared.claimGroup(
                    round: 1, attempt: attempt, holder: "x", members: members, liveness: 60, cohortSize: 6, waiting: 3))
            try shared.depositGroup(
                claim,
                result: .init(
                    contributors: Array(members.prefix(members.contains("a") ? 3 : 2)), sum: sum, transcript: [2],
                    cryptoSeconds: 0.5))
        }
        let summary = try await running.value
        #expect(summary.completedRounds == 1 && summary.rounds.map(\.completed) == [false, true])
        #expect(summary.rounds.last?.survivors == 5 && summary.rounds.last?.cohort == 6)

        var generator = Xoshiro256(seed: c.seed, purpose: .initialParameters)
        var expected = c.initialAlgorithm(
            try FederatedModel(c.model.description, featureCount: 3, classCount: 2).initialParameters(
                using: &generator))
        expected.serverUpdate(sum: zip(first, second).map { a, b in a + b }, contributors: 5)
        let (round, state) = try #require(try shared.latestCheckpoint())
        #expect(round == 1)
        #expect(state.parameters == expected.parameters)
        #expect(try shared.tierRound(1)?.status == "committed")
        #expect(try shared.rounds().map(\.outcome) == ["aborted", "completed"])
        #expect((try shared.combineSeconds(1) ?? -1) >= 0)
    }
}

extension TierLeaderTests {
    /// Distributed DP in a tier (`Specs/wire.md` §6.3 item 4): each contributor of a committed
    /// round is charged once, and so is each contributor of an abandoned attempt's done groups
    /// (their sums were released) — in the store's ledger, which the aggregators admit by.
    @Test func theLeaderChargesEveryReleasedGroupSumsContributorsOnce() async throws {
        let led = try await Self.lead("tier-ledger") { c in
            var privacy = ServicePrivacy(epsilon: 8, mode: .ddg)
            privacy.minContributors = 2
            c.privacy = privacy
            c.payloadBits = 32
        }
        guard let led else { return }
        defer { led.end() }
        let (shared, running, opened) = (led.shared, led.running, led.opened)
        let length = 3 * 2 + 2 + 1
        let sum = [Double](repeating: 0.5, count: length)
        // The first attempt: {a, b} deposited, too few for min_participants 4 — abandoned.
        let early = try #require(
            try shared.claimGroup(
                round: 1, attempt: opened.attempt, holder: "x", members: ["a", "b"], liveness: 60, cohortSize: 6))
        try shared.depositGroup(
            early, result: .init(contributors: ["a", "b"], sum: sum, transcript: [], cryptoSeconds: 0))
        #expect(await eventually(timeout: 10) { (try? shared.tierRound(1))?.attempt == opened.attempt + 1 })
        let afterAbandon = try #require(try shared.ledger())
        #expect(afterAbandon.spent(by: "a") > 0 && afterAbandon.spent(by: "c") == 0)
        // The second: {a, c} and {d, e} committed.
        for members in [["a", "c"], ["d", "e"]] {
            let claim = try #require(
                try shared.claimGroup(
                    round: 1, attempt: opened.attempt + 1, holder: "x", members: members, liveness: 60, cohortSize: 6,
                    waiting: 2))
            try shared.depositGroup(
                claim, result: .init(contributors: members, sum: sum, transcript: [], cryptoSeconds: 0))
        }
        let summary = try await running.value
        #expect(summary.completedRounds == 1)
        let ledger = try #require(try shared.ledger())
        let once = ledger.spent(by: "c")
        #expect(once > 0 && ledger.spent(by: "d") == once && ledger.spent(by: "e") == once)
        #expect(ledger.spent(by: "b") == afterAbandon.spent(by: "b") && abs(ledger.spent(by: "b") - once) < 1e-9)
        #expect(ledger.spent(by: "a") > once, "a's update was in two released group sums")
        #expect(ledger.spent(by: "f") == 0)
    }
}
