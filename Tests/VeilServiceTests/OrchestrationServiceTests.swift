import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilSecAgg
import VeilTestSupport
import VeilTransport
import VeilWire

@testable import VeilService

/// Selection, reputation and credits in the coordinator (`Specs/orchestration.md` §5–§7).
@Suite struct OrchestrationBookTests {
    typealias Row = CoordinatorStore.Participation

    func row(_ id: String, _ round: Int, _ outcome: ParticipationOutcome, seconds: Double? = 1, attempt: Int = 1)
        -> Row
    {
        Row(
            participant: id, round: round, attempt: attempt, outcome: outcome, seconds: seconds, examples: 100,
            deadline: 60)
    }

    func candidates(_ ids: [String]) -> [CohortSelection.Candidate] {
        ids.map { CohortSelection.Candidate(id: $0, resources: .init(), roundsCompleted: 0) }
    }

    @Test func outcomesTakeTheFirstThatApplies() {
        func outcomes(named: Set<String>) -> [String: ParticipationOutcome] {
            AttemptObservations.outcomes(
                cohort: ["a", "b", "c", "d", "e", "f", "g"], contributors: ["a", "b"], faulted: ["b", "c"],
                declined: ["d", "e"], aborted: ["e"], named: named, dropped: ["c", "f", "e"])
        }
        #expect(
            outcomes(named: ["b"]) == [
                "a": .contributed, "b": .faulted, "c": .faulted, "d": .declined, "e": .excused, "f": .dropped,
                "g": .excused,
            ])
        // A client abort with nobody else named for a fault is the participant's word alone: a
        // decline (naming itself with an invalid complaint does not excuse it).
        #expect(outcomes(named: [])["e"] == .declined)
        #expect(outcomes(named: ["e"])["e"] == .declined)
    }

    @Test func overstatedExampleCountsAreCappedAtTwiceTheMedian() {
        #expect(AttemptObservations.capped([]) == [])
        #expect(AttemptObservations.capped([100, 120, 1 << 32]) == [100, 120, 240])
        #expect(AttemptObservations.capped([100, 120, 1 << 32, 1 << 32]) == [100, 120, 1 << 32, 1 << 32])
        #expect(AttemptObservations.capped([0, 0, 7]) == [0, 0, 0])
    }

    /// Oort's numbers follow first invitation, and candidates go to it in that order: a book
    /// rebuilt from the rows draws the cohort the live book draws, even when scores tie.
    @Test func aRebuiltBookDrawsTheSameOortCohortAsTheLiveOne() {
        var settings = ServiceOrchestration()
        settings.reputationWeight = 1
        let everyone = ["zed", "amy", "kim", "bob", "lia", "max"]
        var live = OrchestrationBook(settings: settings, history: [])
        var history: [Row] = []
        for round in 1...6 {
            var generator = Xoshiro256(seed: 9, purpose: .cohortSelection, round: round)
            let cohort = live.select(
                candidates(everyone), count: 3, strategy: .oort, round: round, generator: &generator)
            let rows = cohort.map { row($0, round, $0 == "kim" ? .dropped : .contributed, seconds: 2) }
            live.record(rows)
            history += rows
            let rebuilt = OrchestrationBook(settings: settings, history: history)
            var a = Xoshiro256(seed: 5, purpose: .cohortSelection, round: round + 1)
            var b = a
            var copy = live
            var again = rebuilt
            #expect(
                copy.select(candidates(everyone), count: 3, strategy: .oort, round: round + 1, generator: &a)
                    == again.select(candidates(everyone), count: 3, strategy: .oort, round: round + 1, generator: &b))
            #expect(rebuilt.reputations == live.reputations)
        }
    }

    @Test func theBookIsAFoldOfTheRowsAndUsesTheMeasuredTimeliness() {
        let rows = [
            row("a", 1, .contributed, seconds: 0), row("b", 1, .contributed, seconds: 30),
            row("c", 1, .dropped, seconds: nil),
            row("a", 2, .contributed, seconds: nil), row("c", 2, .faulted, attempt: 1),
            row("b", 2, .declined, attempt: 2),
        ]
        let book = OrchestrationBook(settings: .init(), history: rows)
        var incremental = OrchestrationBook(settings: .init(), history: [])
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
        let book = OrchestrationBook(settings: settings, history: rows)
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
        var book = OrchestrationBook(settings: settings, history: rows)
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
                var book = OrchestrationBook(settings: settings, history: rows)
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
        // Recomputed from Specs/orchestration.md §6–§7 alone: P += 1/2 + τ/2 per contribution
        // (τ = 1 − t/D), halved every 20 rounds; ρ = (1 + P)/(2 + P + N); c = ρ(1/2 + n/(2n̄))
        // with every count within twice the median.
        var evidence: [String: (p: Double, round: Int)] = [:]
        for round in 1...7 {
            let these = rows.filter { $0.round == round }
            let mean = Double(these.map(\.examples).reduce(0, +)) / Double(these.count)
            let median = these.map(\.examples).sorted()[1]
            #expect(these.allSatisfy { $0.examples <= 2 * median })
            for r in these {
                let credit = try #require(credits.first { $0.round == round && $0.participant == r.participant })
                let p = evidence[r.participant].map { $0.p * pow(2, -Double(round - $0.round) / 20) } ?? 0
                let reputation = (1 + p) / (2 + p)
                #expect(abs(credit.reputation - reputation) < 1e-12 && credit.examples == r.examples)
                let expected = reputation * (0.5 + 0.5 * min(Double(r.examples) / mean, 2))
                #expect(abs(credit.credits - expected) < 1e-12)
                let tau = 1 - min(r.seconds! / r.deadline, 1)
                evidence[r.participant] = (p + 0.5 + 0.5 * tau, round)
            }
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
        #expect(rogueEntry["marginal"] is NSNull)
        let rogueReputation = try #require(rogueEntry["reputation"] as? Double)
        #expect(rogueReputation < 0.2)
        for (id, entry) in byID where id != "participant-1" {
            #expect((entry["reputation"] as? Double ?? 0) > 0.5 && (entry["credits"] as? Double ?? 0) > 0, "\(entry)")
        }
        let text = try await VeilProcess.run(["credits", "--config", config.path])
        #expect(
            text.status == 0 && text.stdout.contains("credit ledger after round 2: 5 participants"), "\(text.stdout)")
        let csv = try await VeilProcess.run(["credits", "--config", config.path, "--csv"])
        #expect(
            csv.stdout.hasPrefix("participant,invited,contributed,dropped,declined,faulted,excused,reputation,credits,")
        )
        #expect(csv.stdout.split(separator: "\n").count == 6)
        let both = try await VeilProcess.run(["credits", "--config", config.path, "--csv", "--json"])
        #expect(both.status != 0 && both.stderr.contains("--csv and --json are exclusive"))
    }
}

/// `loss_report` (`Specs/orchestration.md` §5.1): what a participant reveals, and what the
/// coordinator keeps.
@Suite struct LossReportTests {
    @Test func theReportIsClippedOnTheGridAndNoisedAsSpecified() {
        var generator = Xoshiro256(seed: 1, purpose: .cohortSelection)
        let exact = LossReportSettings(clip: 2, noise: 0)
        #expect(exact.report(0.3, clip: 2, using: &generator) == (0.3 * 65536).rounded() / 65536)
        #expect(exact.report(7, clip: 2, using: &generator) == 2)
        #expect(exact.report(7, clip: 1.5, using: &generator) == 1.5)
        #expect(exact.report(-1, clip: 2, using: &generator) == 0)
        #expect(exact.report(.nan, clip: 2, using: &generator) == 2)
        #expect(exact.report(.infinity, clip: 2, using: &generator) == 2)
        // σ = 0.5: 4,000 draws around 1.25 with the sample deviation near 0.5.
        let noisy = LossReportSettings(clip: 2, noise: 0.5)
        let draws = (0..<4000).map { _ in noisy.report(1.25, clip: 2, using: &generator) }
        let mean = draws.reduce(0, +) / 4000
        let sd = (draws.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 3999).squareRoot()
        #expect(abs(mean - 1.25) < 5 * 0.5 / 4000.squareRoot(), "\(mean)")
        #expect(abs(sd - 0.5) < 0.03, "\(sd)")
        #expect(draws.allSatisfy { ($0 * 65536).rounded() == $0 * 65536 })
    }

    @Test func joinRefusesABadLossReportByName() throws {
        let tls = #""tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}"#
        func refusal(_ keys: String) throws -> String? {
            let directory = try RepositoryPaths.temporaryDirectory("veil-loss")
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = directory.appendingPathComponent("join.json")
            try "{\(tls), \(keys)}".write(to: file, atomically: true, encoding: .utf8)
            do {
                _ = try JoinConfiguration.load(path: file.path)
                return nil
            } catch { return "\(error)" }
        }
        #expect(try refusal(#""loss_report": {"clip": 5, "noise": 0.1}"#) == nil)
        #expect(try refusal(#""loss_report": {"clip": 0}"#) == "loss_report.clip must be in (0, 1000000]")
        #expect(try refusal(#""loss_report": {"noise": 2000}"#) == "loss_report.noise must be 0 or in [2^-16, 1024]")
        #expect(try refusal(#""loss_report": {"noise": 1e-170}"#) == "loss_report.noise must be 0 or in [2^-16, 1024]")
        #expect(try refusal(#""loss_report": {"max_reports": 0}"#) == "loss_report.max_reports must be at least 1")
        #expect(try refusal(#""loss_report": {"nois": 1}"#)?.contains(#"did you mean "noise"?"#) == true)
        #expect(
            try refusal(#""loss_report": {}, "privacy_budget": {"epsilon": 1}"#)?.hasPrefix(
                "loss_report and privacy_budget are exclusive") == true)
    }

    /// Participants with `loss_report` (no noise) reveal the broadcast model's loss on their
    /// own rows: round 1's is the initial model's, recomputed here from the data. A report
    /// outside any round is refused and counted.
    @Test func revealedLossesAreKeptAndUsed() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-loss-federation")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 3
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 20)
        network.serve.selection = .oort
        for i in [0, 1] { network.participants[i].join.lossReport = LossReportSettings(clip: 10, noise: 0) }
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 2)
        let rows = try CoordinatorStore(readingAt: network.serve.state).participation()
        let model = try makeModel(
            network.serve.model.description, featureCount: network.serve.features, classCount: network.serve.classes)
        var generator = Xoshiro256(seed: network.serve.seed, purpose: .initialParameters)
        let initial = model.initialParameters(using: &generator)
        for i in 0..<3 {
            let id = "participant-\(i + 1)"
            let first = try #require(rows.first { $0.round == 1 && $0.participant == id })
            if i == 2 {
                #expect(first.loss == nil)
            } else {
                let loss = model.evaluate(initial, on: network.participants[i].data).loss
                #expect(first.loss == (min(loss, 10) * 65536).rounded() / 65536, "\(id)")
            }
        }

        // A participant reveals a round's loss once: asked again, it sends the same report (no
        // fresh noise to average), and past max_reports nothing; unasked, nothing.
        var join = network.participants[0].join
        join.lossReport = LossReportSettings(clip: 10, noise: 1, maxReports: 2)
        let agent = try ParticipantAgent(configuration: join, data: network.participants[0].data)
        func assignment(_ round: UInt64, lossClip: Double = 10) -> Veil_V1_RoundAssignment {
            .with {
                $0.round = round
                $0.lossClip = lossClip
                $0.model = .with { $0.vectors = [.with { $0.values = initial }] }
                $0.training = .with {
                    $0.model = network.serve.model.description
                    $0.features = UInt32(network.serve.features)
                    $0.classes = UInt32(network.serve.classes)
                }
            }
        }
        #expect(agent.lossReport(assignment(7, lossClip: 0)) == nil)
        #expect(agent.lossReport(assignment(7, lossClip: .infinity)) == nil)
        // The smaller clip wins: the participant's own, or the coordinator's. (The initial
        // model's loss on ten classes is near ln 10 ≈ 2.3, above both clips.)
        for (own, asked) in [(0.5, 10.0), (10.0, 0.25)] {
            var clipped = network.participants[1].join
            clipped.lossReport = LossReportSettings(clip: own, noise: 0)
            let reporter = try ParticipantAgent(configuration: clipped, data: network.participants[1].data)
            #expect(reporter.lossReport(assignment(1, lossClip: asked))?.loss == min(own, asked))
        }
        let first = try #require(agent.lossReport(assignment(7)))
        #expect(agent.lossReport(assignment(7)) == first)
        #expect(agent.lossReport(assignment(8)) != nil)
        #expect(agent.lossReport(assignment(9)) == nil)

        let coordinator = try Coordinator(configuration: network.serve, logger: quietLogger())
        let identity = try network.participants[0].join.tls.credentials(role: .participant).identity
        let (_, outbox) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        let generation = try #require(await coordinator.connect(identity: identity, hello: .init(), outbox: outbox))
        await coordinator.receive(
            .with {
                $0.loss = .with {
                    $0.round = 3; $0.loss = 0.5
                }
            }, from: identity.id, generation: generation)
        #expect(coordinator.metrics.value("veil_refused_messages_total", labels: ["reason": "out_of_round"]) == 1)
        await coordinator.closeStore()
    }
}

/// The multi-criteria weights of `orchestration` (`Specs/orchestration.md` §5).
@Suite struct SelectionWeightTests {
    @Test func weightsReachOortAndAreRefusedOutOfRange() throws {
        var settings = ServiceOrchestration()
        #expect(settings.oort == OortParameters())
        settings.statisticalWeight = 0
        settings.stalenessWeight = 0.5
        settings.systemWeight = 3
        #expect(settings.oort.statistical == 0 && settings.oort.staleness == 0.5 && settings.oort.straggler == 3)
        settings.systemWeight = 17
        #expect(throws: ConfigurationError("orchestration.system_weight must be in [0, 16]")) {
            try settings.validate()
        }
        settings = ServiceOrchestration()
        settings.lossClip = 0
        #expect(throws: ConfigurationError("orchestration.loss_clip must be in (0, 1000000]")) {
            try settings.validate()
        }
    }

    /// With the statistical weight at 0 the revealed utility no longer orders the draw: of two
    /// equally fast participants, the one with the larger utility wins every exploit draw at
    /// κ = 1 and only about half of them at κ = 0.
    @Test func theStatisticalWeightScalesTheUtilityTerm() {
        func wins(statistical: Double) -> Int {
            var parameters = OortParameters()
            parameters.statistical = statistical
            var count = 0
            for trial in 0..<400 {
                var oort = OortSelector(parameters: parameters)
                oort.observe(
                    round: 1,
                    [
                        ParticipationObservation(participant: 0, completed: true, seconds: 1, loss: 2, examples: 100),
                        ParticipationObservation(participant: 1, completed: true, seconds: 1, loss: 1, examples: 100),
                    ])
                var generator = Xoshiro256(seed: UInt64(trial), purpose: .cohortSelection, round: 2)
                if oort.select([0, 1], count: 1, round: 2, generator: &generator) == [0] { count += 1 }
            }
            return count
        }
        #expect(wins(statistical: 1) == 400)
        #expect(abs(wins(statistical: 0) - 200) < 50)
    }
}

/// Which assignments ask for a loss, and serve.json's `orchestration` keys as a file spells them.
@Suite struct OrchestrationConfigurationTests {
    @Test func onlyOortWithAStatisticalWeightAsksForLosses() throws {
        var c = ServeConfiguration(tls: TLSFiles(ca: "c", certificate: "x", key: "k", signingKey: "s"))
        let algorithm = c.initialAlgorithm([Double](repeating: 0, count: 650))
        func lossClip() throws -> Double {
            try RoundTask(number: 1, cohortSize: 3, configuration: c, algorithm: algorithm, privacy: nil)
                .assignment(number: 1, position: ParticipantID(1), deadlines: RoundDeadlines(c)).lossClip
        }
        #expect(try lossClip() == 0)
        c.selection = .oort
        c.orchestration.lossClip = 4
        #expect(try lossClip() == 4)
        c.orchestration.statisticalWeight = 0
        #expect(try lossClip() == 0)
    }

    @Test func everyOrchestrationKeyIsReadFromTheFile() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-orchestration-config")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("serve.json")
        try #"""
        {"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}, "selection": "oort",
         "orchestration": {"max_gap": 4, "min_reputation": 0.25, "reputation_weight": 2, "reputation_half_life": 7,
                           "loss_clip": 3, "statistical_weight": 0.5, "staleness_weight": 0.2, "system_weight": 1}}
        """#.write(to: file, atomically: true, encoding: .utf8)
        let o = try ServeConfiguration.load(path: file.path).orchestration
        #expect(o.maxGap == 4 && o.minReputation == 0.25 && o.reputationWeight == 2 && o.reputationHalfLife == 7)
        #expect(o.lossClip == 3 && o.statisticalWeight == 0.5 && o.stalenessWeight == 0.2 && o.systemWeight == 1)
        #expect(o.reputation.halfLife == 7)
        for (key, value) in [("statistical_weight", "-1"), ("staleness_weight", "17")] {
            try
                #"{"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}, "orchestration": {"\#(key)": \#(value)}}"#
                .write(to: file, atomically: true, encoding: .utf8)
            #expect(throws: ConfigurationError("orchestration.\(key) must be in [0, 16]")) {
                try ServeConfiguration.load(path: file.path)
            }
        }
    }
}
