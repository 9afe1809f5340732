import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// Selection, reputation and credits in the coordinator (`Specs/orchestration.md` §5–§7).
@Suite struct OrchestrationBookTests {
    typealias Row = CoordinatorStore.Participation

    func row(_ id: String, _ round: Int, _ outcome: ParticipationOutcome, seconds: Double? = 1, attempt: Int = 1)
        -> Row
    {
        Row(participant: id, round: round, attempt: attempt, outcome: outcome, seconds: seconds, examples: 100)
    }

    func candidates(_ ids: [String]) -> [CohortSelection.Candidate] {
        ids.map { CohortSelection.Candidate(id: $0, resources: .init(), roundsCompleted: 0) }
    }

    @Test func outcomesTakeTheFirstThatApplies() {
        let outcomes = AttemptObservations.outcomes(
            cohort: ["a", "b", "c", "d", "e", "f", "g"], contributors: ["a", "b"], faulted: ["b", "c"],
            declined: ["d", "e"], aborted: ["e"], dropped: ["c", "f", "e"])
        #expect(
            outcomes == [
                "a": .contributed, "b": .faulted, "c": .faulted, "d": .declined, "e": .excused, "f": .dropped,
                "g": .excused,
            ])
    }

    @Test func theBookIsAFoldOfTheRowsAndUsesTheMeasuredTimeliness() {
        let rows = [
            row("a", 1, .contributed, seconds: 0), row("b", 1, .contributed, seconds: 30), row("c", 1, .dropped),
            row("a", 2, .contributed, seconds: nil), row("c", 2, .faulted, attempt: 1),
            row("b", 2, .declined, attempt: 2),
        ]
        let book = OrchestrationBook(settings: .init(), trainingDeadline: 60, history: rows)
        var incremental = OrchestrationBook(settings: .init(), trainingDeadline: 60, history: [])
        incremental.record(Array(rows[0..<3]))
        incremental.record(Array(rows[3..<5]))
        incremental.record([rows[5]])
        #expect(book.reputations == incremental.reputations && book.lastInvited == incremental.lastInvited)
        // b answered at half the deadline: P = 3/4.
        var b = Reputation()
        b.record(.contributed, timeliness: 0.5, round: 1, parameters: book.parameters)
        b.record(.declined, timeliness: 0, round: 2, parameters: book.parameters)
        #expect(book.reputations["b"] == b)
        #expect(book.lastInvited == ["a": 2, "b": 2, "c": 2])
        #expect(book.reputation(of: "a", at: 3) > book.reputation(of: "b", at: 3))
        #expect(book.reputation(of: "c", at: 3) < 0.2)
        #expect(book.reputation(of: "new", at: 3) == 0.5)
    }

    @Test func theReputationFloorKeepsOutTheLowestWhileEnoughRemain() {
        var settings = ServiceOrchestration()
        settings.minReputation = 0.4
        let rows = [
            row("a", 1, .contributed), row("b", 1, .dropped), row("c", 1, .faulted), row("d", 1, .contributed),
        ]
        let book = OrchestrationBook(settings: settings, trainingDeadline: 60, history: rows)
        let all = candidates(["a", "b", "c", "d", "e"])
        #expect(book.admitted(all, needed: 3, round: 2).map(\.id) == ["a", "d", "e"])
        // Too few above the floor: the most reputable of the others come back (b dropped, c faulted).
        #expect(book.admitted(all, needed: 4, round: 2).map(\.id) == ["a", "b", "d", "e"])
        #expect(book.admitted(all, needed: 5, round: 2).map(\.id) == ["a", "b", "c", "d", "e"])
    }

    @Test func theFairnessFloorInvitesTheLongestWaitingFirst() {
        var settings = ServiceOrchestration()
        settings.maxGap = 2
        // a, b invited in round 1; c in round 2; d, e never.
        let rows = [row("a", 1, .contributed), row("b", 1, .contributed), row("c", 2, .contributed)]
        var book = OrchestrationBook(settings: settings, trainingDeadline: 60, history: rows)
        var generator = Xoshiro256(seed: 3, purpose: .cohortSelection, round: 4)
        // Round 4: d and e (never invited: 4 − 0 > 2) and a, b (4 − 1 > 2) are due; c is not.
        let chosen = book.select(
            candidates(["a", "b", "c", "d", "e"]), count: 3, strategy: .random, round: 4, generator: &generator)
        #expect(chosen == ["a", "d", "e"])
    }

    /// fast answers in 1 s, slow in 50 s; flaky is as fast but drops every other round. On
    /// measured durations Oort leaves out slow; flaky is as likely as fast until reputation
    /// weighs in, and then it falls below the admission cut-off.
    @Test func oortInTheServicePrefersTheFastAndWeighsReputation() {
        var rows: [Row] = []
        for round in 1...10 {
            rows.append(row("fast", round, .contributed, seconds: 1))
            rows.append(row("slow", round, .contributed, seconds: 50))
            rows.append(row("flaky", round, round.isMultiple(of: 2) ? .dropped : .contributed, seconds: 1))
        }
        func counts(weight: Double) -> [String: Int] {
            var settings = ServiceOrchestration()
            settings.reputationWeight = weight
            var counts: [String: Int] = [:]
            for trial in 0..<400 {
                var book = OrchestrationBook(settings: settings, trainingDeadline: 60, history: rows)
                var generator = Xoshiro256(seed: UInt64(trial), purpose: .cohortSelection, round: 11)
                for id in book.select(
                    candidates(["fast", "flaky", "slow"]), count: 1, strategy: .oort, round: 11, generator: &generator)
                {
                    counts[id, default: 0] += 1
                }
            }
            return counts
        }
        let unweighted = counts(weight: 0)
        #expect(unweighted["slow"] == nil, "\(unweighted)")
        // Equal scores: a binomial(400, 1/2), within 5 standard deviations.
        #expect(abs(unweighted["flaky", default: 0] - 200) < 50, "\(unweighted)")
        let weighted = counts(weight: 4)
        #expect(weighted == ["fast": 400], "\(weighted)")
    }

    @Test func orchestrationSettingsAreRefusedByName() throws {
        func refusal(_ json: String) -> String? {
            do {
                _ = try JSONDecoder.snake.decode(ServiceOrchestration.self, from: Data(json.utf8)).validate()
                return nil
            } catch { return "\(error)" }
        }
        #expect(refusal(#"{"max_gap": 3, "min_reputation": 0.3}"#) == nil)
        #expect(refusal(#"{"max_gaps": 3}"#)?.contains(#"unknown key "max_gaps"; did you mean "max_gap"?"#) == true)
        #expect(refusal(#"{"max_gap": 0}"#) == "orchestration.max_gap must be at least 1")
        #expect(refusal(#"{"min_reputation": 0.5}"#) == "orchestration.min_reputation must be in [0, 0.5)")
        #expect(refusal(#"{"reputation_weight": -1}"#) == "orchestration.reputation_weight must be in [0, 16]")
        #expect(
            refusal(#"{"reputation_half_life": 0}"#) == "orchestration.reputation_half_life must be in (0, 1000000]")
    }
}

extension JSONDecoder {
    static var snake: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}

/// Federations over loopback that keep participation rows, reputation and credits.
@Suite(.serialized) struct OrchestrationFederationTests {
    /// The fairness floor in the service: six participants, cohorts of three, `max_gap` 1 and
    /// Oort choosing the rest. Once everyone has connected, the cohorts alternate.
    @Test func theFloorAlternatesCohortsAndEveryContributionEarnsCredits() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-orchestration")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 6
        c.rounds = 7
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 20)
        network.serve.minParticipants = 3
        network.serve.cohortSize = 3
        network.serve.selection = .oort
        network.serve.orchestration.maxGap = 1
        for i in network.participants.indices {
            network.participants[i].join.policy.minCohort = 3
            network.participants[i].join.policy.minContributors = 3
        }
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 7)
        let store = try CoordinatorStore(readingAt: network.serve.state)
        let rows = try store.participation()
        #expect(rows.allSatisfy { $0.outcome == .contributed && $0.seconds != nil && $0.examples > 0 }, "\(rows)")
        let cohorts = Dictionary(grouping: rows, by: \.round).mapValues { Set($0.map(\.participant)) }
        #expect(cohorts.values.reduce(Set()) { $0.union($1) }.count == 6)
        for round in 4...7 {
            #expect(cohorts[round]!.isDisjoint(with: cohorts[round - 1]!), "\(cohorts)")
        }
        // One credit row per contribution, each by the rule from the reputation before the round.
        let credits = try store.credits()
        #expect(credits.count == rows.count)
        var book = OrchestrationBook(
            settings: network.serve.orchestration, trainingDeadline: network.serve.trainingDeadlineSeconds,
            history: [])
        for round in 1...7 {
            let these = rows.filter { $0.round == round }
            let mean = Double(these.map(\.examples).reduce(0, +)) / Double(these.count)
            for r in these {
                let credit = try #require(credits.first { $0.round == round && $0.participant == r.participant })
                let reputation = book.reputation(of: r.participant, at: round)
                #expect(credit.reputation == reputation && credit.examples == r.examples)
                #expect(
                    credit.credits
                        == CreditRule.credits(reputation: reputation, examples: r.examples, meanExamples: mean))
            }
            book.record(these)
        }
        // Everyone contributed promptly: reputations above 1/2.
        let report = try CreditReport.load(network.serve)
        #expect(report.round == 7 && report.entries.count == 6)
        #expect(report.entries.allSatisfy { $0.reputation > 0.5 && $0.dropped == 0 && $0.invited == $0.contributed })
        #expect(report.entries.map(\.invited).reduce(0, +) == 21)
    }

    /// A participant whose signed shares are garbage is convicted each time it is in a
    /// cohort: its rows say `faulted`, its reputation falls below everyone's, it earns no
    /// credits, and `veil credits` shows it.
    @Test func aConvictedParticipantLosesReputationAndEarnsNothing() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-reputation")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 5
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        network.misbehaviours = [0: .garbageShares]
        network.serve.excludeAfterFaults = 0
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 2)
        let store = try CoordinatorStore(readingAt: network.serve.state)
        let rows = try store.participation()
        let rogue = rows.filter { $0.participant == "participant-1" }
        #expect(!rogue.isEmpty && rogue.allSatisfy { $0.outcome == .faulted }, "\(rows)")
        #expect(try store.credits().allSatisfy { $0.participant != "participant-1" })

        // The command line reads the same ledger.
        let config = directory.appendingPathComponent("serve.json")
        let tls = network.serve.tls
        let json: [String: Any] = [
            "tls": ["ca": tls.ca, "certificate": tls.certificate, "key": tls.key, "signing_key": tls.signingKey],
            "state": network.serve.state, "training_deadline_seconds": network.serve.trainingDeadlineSeconds,
        ]
        try JSONSerialization.data(withJSONObject: json).write(to: config)
        let out = try await VeilProcess.run(["credits", "--config", config.path, "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        let entries = try #require(object["participants"] as? [[String: Any]])
        #expect(object["round"] as? Int == 2 && entries.count == 5)
        let byID = Dictionary(uniqueKeysWithValues: entries.map { ($0["participant"] as! String, $0) })
        let rogueEntry = try #require(byID["participant-1"])
        #expect(rogueEntry["faulted"] as? Int == rogue.count && rogueEntry["credits"] as? Double == 0)
        let rogueReputation = try #require(rogueEntry["reputation"] as? Double)
        #expect(rogueReputation < 0.2)
        for (id, entry) in byID where id != "participant-1" {
            #expect((entry["reputation"] as? Double ?? 0) > 0.5 && (entry["credits"] as? Double ?? 0) > 0, "\(entry)")
        }
        let text = try await VeilProcess.run(["credits", "--config", config.path])
        #expect(
            text.status == 0 && text.stdout.contains("credit ledger after round 2: 5 participants"), "\(text.stdout)")
        let csv = try await VeilProcess.run(["credits", "--config", config.path, "--csv"])
        #expect(csv.stdout.hasPrefix("participant,invited,contributed,dropped,declined,faulted,reputation,credits,"))
        #expect(csv.stdout.split(separator: "\n").count == 6)
        let both = try await VeilProcess.run(["credits", "--config", config.path, "--csv", "--json"])
        #expect(both.status != 0 && both.stderr.contains("--csv and --json are exclusive"))
    }
}
