import Foundation
import Testing
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
        #expect(try shared.claimGroup(round: 1, attempt: 1, holder: "a", members: ["p1"], liveness: liveness) == nil)
        try shared.openTierRound(1, attempt: 1, groups: 2, seconds: 60)
        let round = try #require(try shared.tierRound(1))
        #expect(round.groups == 2 && round.status == "open" && round.remaining > 50)

        let a = try #require(
            try shared.claimGroup(round: 1, attempt: 1, holder: "a", members: ["p1", "p2"], liveness: liveness))
        #expect(a.slot == 0 && a.claim == 1)
        // A member already in a live group cannot be in another.
        #expect(
            try shared.claimGroup(round: 1, attempt: 1, holder: "b", members: ["p2", "p3"], liveness: liveness) == nil)
        let b = try #require(
            try shared.claimGroup(round: 1, attempt: 1, holder: "b", members: ["p3", "p4"], liveness: liveness))
        #expect(b.slot == 1)
        // Both slots taken.
        #expect(try shared.claimGroup(round: 1, attempt: 1, holder: "b", members: ["p5"], liveness: liveness) == nil)
        #expect(try shared.busyMembers(round: 1, attempt: 1, liveness: liveness) == ["p1", "p2", "p3", "p4"])

        // a's heartbeat stops: its group is free for b, with the next claim number; a's late
        // deposit is refused, b's rerun counts.
        try await Task.sleep(for: .milliseconds(800))
        try beat("b")
        #expect(try shared.busyMembers(round: 1, attempt: 1, liveness: liveness) == ["p3", "p4"])
        let rerun = try #require(
            try shared.claimGroup(round: 1, attempt: 1, holder: "b", members: ["p1", "p2"], liveness: liveness))
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
            try shared.claimGroup(round: 1, attempt: 1, holder: "b", members: ["p3", "p4"], liveness: liveness))
        #expect(again.slot == 1 && again.claim == 2)

        // The leader freezes the attempt: nothing deposited after that counts.
        try shared.closeTierRound(1, attempt: 1, status: "combining")
        #expect(throws: GroupClaimLost.self) { try shared.depositGroup(again, result: result) }
        #expect(try shared.claimGroup(round: 1, attempt: 1, holder: "b", members: ["p9"], liveness: liveness) == nil)

        // A new attempt starts with every slot free, and the old attempt's claims are void.
        try shared.openTierRound(1, attempt: 2, groups: 1, seconds: 60)
        #expect(throws: GroupClaimLost.self) { try shared.depositGroup(again, result: result) }
        let fresh = try #require(
            try shared.claimGroup(round: 1, attempt: 2, holder: "b", members: ["p1", "p2"], liveness: liveness))
        #expect(fresh.slot == 0 && fresh.claim == 1)

        // A holder only paused: its group's members are claimed again elsewhere, which frees
        // its group at once — its deposit, when it wakes, cannot count them twice.
        try shared.openTierRound(1, attempt: 3, groups: 3, seconds: 60)
        try beat("a")
        let given = try #require(
            try shared.claimGroup(round: 1, attempt: 3, holder: "a", members: ["p1"], liveness: liveness))
        let slow = try #require(
            try shared.claimGroup(round: 1, attempt: 3, holder: "a", members: ["p3", "p4"], liveness: liveness))
        try shared.releaseGroup(given)
        #expect(given.slot == 0 && slow.slot == 1)
        try await Task.sleep(for: .milliseconds(800))
        try beat("b")
        let overlapping = try #require(
            try shared.claimGroup(round: 1, attempt: 3, holder: "b", members: ["p4", "p5"], liveness: liveness))
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
            try shared.claimGroup(round: 1, attempt: 3, holder: "b", members: ["p6", "p7"], liveness: liveness))
        #expect(throws: GroupClaimLost.self) {
            try shared.depositGroup(
                liar, result: .init(contributors: ["p5", "p6"], sum: [1], transcript: [], cryptoSeconds: 0))
        }

        // A clean stop removes the heartbeat at once.
        try shared.leaveTier(holder: "b")
        try shared.leaveTier(holder: "a")
        #expect(try shared.aggregators(liveness: 60).isEmpty)
    }

    static func group(_ slot: Int, _ status: String, contributors: Int) -> Group {
        Group(
            slot: slot, holder: "h", claim: 1, members: (0..<contributors).map { "p\(slot)-\($0)" }, status: status,
            alive: true, contributors: (0..<contributors).map { "p\(slot)-\($0)" }, sum: [], transcript: [],
            cryptoSeconds: 0)
    }

    static func round(groups: Int, remaining: Double) -> CoordinatorStore.TierRound {
        .init(number: 3, attempt: 1, groups: groups, remaining: remaining, status: "open")
    }

    @Test func theLeaderCombinesWhenEveryGroupIsDoneOrTimeRunsOutWithEnoughContributors() {
        let groups = [Self.group(0, "done", contributors: 4), Self.group(1, "running", contributors: 4)]
        #expect(TierDecision.decide(Self.round(groups: 2, remaining: 5), groups: groups, minParticipants: 6) == .wait)
        #expect(
            TierDecision.decide(
                Self.round(groups: 2, remaining: 5), groups: groups + [Self.group(1, "done", contributors: 3)],
                minParticipants: 6) == .combine(slots: [0, 1]))
        // Time is up: four contributors are enough for 4, not for 6.
        #expect(
            TierDecision.decide(Self.round(groups: 2, remaining: 0), groups: groups, minParticipants: 4)
                == .combine(slots: [0]))
        guard
            case .abandon(let reason) = TierDecision.decide(
                Self.round(groups: 2, remaining: -1), groups: groups, minParticipants: 6)
        else {
            Issue.record("a round short of min_participants was not abandoned")
            return
        }
        #expect(reason.contains("4 contributors in 1 of 2 groups when"))
        // Every group done, but fewer contributors than the round's floor: a new attempt.
        let small = [Self.group(0, "done", contributors: 3), Self.group(1, "done", contributors: 2)]
        #expect(
            TierDecision.decide(Self.round(groups: 2, remaining: 50), groups: small, minParticipants: 6)
                == .abandon(reason: "5 contributors in 2 of 2 groups with every group done (min_participants 6)"))
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
        #expect(good.hierarchy?.groups(cohortSize: 40) == 4)
        #expect(ServiceHierarchy().groups(cohortSize: 250) == 3)
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
