import Foundation
import Testing
import VeilCore
import VeilSecAgg
import VeilTestSupport
import VeilWire

@testable import VeilService

@Suite struct CoordinatorPartsTests {
    func candidate(_ id: String, cores: UInt32, memory: UInt64, battery: Double, link: UInt64, rounds: Int = 0)
        -> CohortSelection.Candidate
    {
        var r = Veil_V1_Resources()
        r.cores = cores
        r.memoryBytes = memory
        r.battery = battery
        r.linkBitsPerSecond = link
        return .init(id: id, resources: r, roundsCompleted: rounds)
    }

    @Test func selectionStrategies() {
        let pool = [
            candidate("a", cores: 8, memory: 16, battery: -1, link: 100, rounds: 3),
            candidate("b", cores: 2, memory: 4, battery: 0.9, link: 10, rounds: 0),
            candidate("c", cores: 8, memory: 16, battery: 0.1, link: 100, rounds: 1),
            candidate("d", cores: 4, memory: 8, battery: 0.5, link: 50, rounds: 0),
        ]
        var g = Xoshiro256(seed: 1)
        #expect(CohortSelection.select(pool, count: 2, strategy: .roundRobin, generator: &g) == ["b", "d"])
        // Low battery (c) is never picked; the others are drawn, the stronger more often.
        #expect(CohortSelection.select(pool, count: 4, strategy: .resourceAware, generator: &g) == ["a", "b", "d"])
        var picks: [String: Int] = [:]
        for _ in 0..<2000 {
            for id in CohortSelection.select(pool, count: 1, strategy: .resourceAware, generator: &g) {
                picks[id, default: 0] += 1
            }
        }
        #expect(picks["c"] == nil)
        #expect(picks["a"]! > picks["d"]! && picks["d"]! > picks["b"]!, "\(picks)")
        var seen = Set<[String]>()
        for seed in 0..<20 {
            var r = Xoshiro256(seed: UInt64(seed))
            let picked = CohortSelection.select(pool, count: 2, strategy: .random, generator: &r)
            #expect(picked.count == 2 && Set(picked).count == 2)
            seen.insert(picked)
        }
        #expect(seen.count > 3)
    }

    /// The finding: resource-aware selection ranked by self-reported, unbounded resources, so
    /// one participant claiming absurd ones was in every cohort (and a group of colluders could
    /// fill cohorts). Reports now only tilt a random draw, by at most a factor of two.
    @Test func overstatedResourcesDoNotBuyAPlaceInEveryCohort() {
        var pool = (0..<10).map { candidate("p\($0)", cores: 8, memory: 16 << 30, battery: -1, link: 100_000_000) }
        pool.append(candidate("liar", cores: .max, memory: .max, battery: -1, link: .max))
        var g = Xoshiro256(seed: 3)
        var picks: [String: Int] = [:]
        let rounds = 400
        for _ in 0..<rounds {
            for id in CohortSelection.select(pool, count: 3, strategy: .resourceAware, generator: &g) {
                picks[id, default: 0] += 1
            }
        }
        let liar = picks["liar", default: 0]
        let honest = Double(picks.filter { $0.key != "liar" }.values.reduce(0, +)) / 10
        #expect(liar < rounds * 9 / 10, "the liar was in \(liar) of \(rounds) cohorts")
        #expect(Double(liar) <= 2.5 * honest, "the liar \(liar) against \(honest) on average")
    }

    /// The coordinator plans each session to meet the policies its cohort declared (they check
    /// it anyway): the complete graph for anyone assuming a malicious coordinator, t the largest
    /// requirement, members whose smallest cohort is larger left to decline.
    @Test func sessionParametersMeetEveryDeclaredPolicy() throws {
        let curious = try ThreatModel(adversary: .honestButCuriousServer, corruptFraction: 0.05, dropoutFraction: 0.1)
        func plan(_ n: Int, _ policies: [SecAggPolicy], noise: Int? = nil) throws -> (k: Int, t: Int) {
            let p = try RoundMachine.sessionParameters(
                clientCount: n, bitWidth: BitWidth(32), dimension: 10, threatModel: curious, policies: policies,
                noiseShares: noise)
            return (p.neighborCount, p.threshold)
        }
        let malicious = try SecAggPolicy(threatModel: .malicious, minimumCohort: 3, minimumContributors: 3)
        let floor4 = try SecAggPolicy(threatModel: .honestButCurious, minimumCohort: 3, minimumContributors: 4)
        let bigCohorts = try SecAggPolicy(threatModel: .malicious, minimumCohort: 20, minimumContributors: 3)
        #expect(try plan(10, []) == (9, 2))
        #expect(try plan(10, [malicious]) == (9, 6))
        #expect(try plan(10, [floor4]) == (9, 4))
        #expect(try plan(10, [floor4], noise: 8) == (9, 8))
        #expect(try plan(10, [bigCohorts]) == (9, 2))  // it will decline a cohort of 10
        // A sparse graph at 300 for the coordinator's own model; a malicious member takes the complete one.
        #expect(try plan(300, []).k < 299)
        #expect(try plan(300, [malicious]) == (299, 158))
        #expect(throws: ConfigurationError.self) { try plan(10, [], noise: 11) }
    }

    @Test func tokenBucketLimitsTheRate() {
        let start = ContinuousClock.now
        var bucket = TokenBucket(rate: 10, burst: 3, now: start)
        var taken: [Bool] = []
        for _ in 0..<4 { taken.append(bucket.take(now: start)) }
        taken.append(bucket.take(now: start + .milliseconds(110)))
        taken.append(bucket.take(now: start + .milliseconds(120)))
        #expect(taken == [true, true, true, false, true, false])
    }

    @Test func metricsRenderThePrometheusTextFormat() {
        let metrics = Metrics()
        metrics.increment("veil_rounds_total", labels: ["outcome": "completed"])
        metrics.increment("veil_rounds_total", labels: ["outcome": "completed"])
        metrics.increment("veil_dropouts_total", labels: ["protocol_round": "R2", "reason": "say \"hi\"\n"])
        metrics.set("veil_participants_connected", 7)
        metrics.set("veil_round_seconds", 0.25)
        metrics.observe("veil_protocol_round_seconds", 0.3, labels: ["protocol_round": "R1"])
        metrics.observe("veil_protocol_round_seconds", 7, labels: ["protocol_round": "R1"])
        let text = metrics.render()
        #expect(text.contains("# TYPE veil_rounds_total counter\nveil_rounds_total{outcome=\"completed\"} 2.0\n"))
        #expect(text.contains("veil_dropouts_total{protocol_round=\"R2\",reason=\"say \\\"hi\\\"\\n\"} 1.0"))
        #expect(text.contains("veil_participants_connected 7.0\n") && text.contains("veil_round_seconds 0.25\n"))
        // A histogram: cumulative buckets, sum and count, under the family's one TYPE line.
        #expect(text.contains("# TYPE veil_protocol_round_seconds histogram\n"))
        #expect(text.contains("veil_protocol_round_seconds_bucket{protocol_round=\"R1\",le=\"0.5\"} 1\n"))
        #expect(text.contains("veil_protocol_round_seconds_bucket{protocol_round=\"R1\",le=\"10.0\"} 2\n"))
        #expect(metrics.value("veil_protocol_round_seconds_count", labels: ["protocol_round": "R1"]) == 2)
        #expect(metrics.value("veil_protocol_round_seconds_sum", labels: ["protocol_round": "R1"]) == 7.3)
        #expect(Metrics.catalogue.allSatisfy { text.contains("# HELP \($0.name) ") })
    }

    @Test func configurationDefaultsAndRefusals() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-config")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("serve.json")
        try
            #"{"tls": {"ca": "c.pem", "certificate": "x.pem", "key": "k.pem", "signing_key": "s.key"}, "rounds": 7, "metrics_port": null}"#
            .write(to: file, atomically: true, encoding: .utf8)
        let c = try ServeConfiguration.load(path: file.path)
        #expect(c.rounds == 7 && c.port == 7443 && c.metricsPort == nil && c.selection == .random)
        #expect(c.tls.ca == directory.appendingPathComponent("c.pem").path)
        #expect(c.state == directory.appendingPathComponent("coordinator.sqlite").path)
        try #"{"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}, "algorithm": "scaffold"}"#
            .write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try ServeConfiguration.load(path: file.path) }
        try #"{"rounds": 3}"#.write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try ServeConfiguration.load(path: file.path)
            Issue.record("a file without tls was accepted")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("missing key tls"))
        }
        try #"{"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}, "selection": "fastest"}"#
            .write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try ServeConfiguration.load(path: file.path) }
    }

    @Test func privacyConfigurationDefaultsAndRefusals() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-config-privacy")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("serve.json")
        func load(_ privacy: String) throws -> ServeConfiguration {
            try #"{"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}, "privacy": \#(privacy)}"#
                .write(to: file, atomically: true, encoding: .utf8)
            return try ServeConfiguration.load(path: file.path)
        }
        let p = try #require(try load(#"{"epsilon": 4}"#).privacy)
        #expect(p.epsilon == 4 && p.delta == 1e-5 && p.clip == 1 && p.alertFraction == 0.8)
        #expect(p.participantBudget == nil && p.budget == 4)
        #expect(try load(#"{"epsilon": 4, "participant_budget": 10, "clip": 0.5}"#).privacy?.budget == 10)
        #expect(try load("null").privacy == nil)
        for bad in [
            #"{"epsilon": 0}"#, #"{"epsilon": 1, "delta": 1}"#, #"{"epsilon": 1, "clip": -1}"#,
            #"{"epsilon": 1, "alert_fraction": 1.5}"#, #"{"epsilon": 1, "participant_budget": 0}"#, #"{"delta": 1e-5}"#,
        ] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try load(bad) }
        }
        let distributed = try #require(try load(#"{"epsilon": 4, "mode": "skellam", "min_contributors": 3}"#).privacy)
        #expect(distributed.mode == .skellam && distributed.bits == 20 && distributed.minContributors == 3)
        #expect(throws: (any Error).self) { try load(#"{"epsilon": 4, "mode": "laplace"}"#) }
        #expect(throws: ConfigurationError.self) { try load(#"{"epsilon": 4, "mode": "ddg", "bits": 70}"#) }
        // cohort_size is 10 by default.
        #expect(throws: ConfigurationError.self) { try load(#"{"epsilon": 4, "mode": "ddg", "min_contributors": 11}"#) }
        try
            #"{"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}, "secure_sum": "paillier", "privacy": {"epsilon": 4, "mode": "ddg"}}"#
            .write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try ServeConfiguration.load(path: file.path) }
    }

    @Test func aParticipantsOwnBudgetIsReadWithItsLedgerBesideTheFile() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-config-budget")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("join.json")
        try
            #"{"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}, "privacy_budget": {"epsilon": 3}}"#
            .write(to: file, atomically: true, encoding: .utf8)
        let budget = try #require(try JoinConfiguration.load(path: file.path).privacyBudget)
        #expect(budget.epsilon == 3 && budget.delta == 1e-5)
        #expect(budget.ledger == directory.appendingPathComponent("privacy-ledger.json").path)
        try
            #"{"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}, "privacy_budget": {"epsilon": -1}}"#
            .write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try JoinConfiguration.load(path: file.path) }
    }
}
