import Foundation
import Testing
import VeilLearning
import VeilTestSupport

@testable import VeilService

/// Configuration is strict: an unknown key or a bad value is refused, naming the key (and,
/// for a typo, the key or value meant).
@Suite struct ConfigurationTests {
    static let tls = #""tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s"}"#

    /// Loads `json` as `load` does from a file, returning the refusal's text (nil: accepted).
    func refusal(_ json: String, _ load: (String) throws -> Void) throws -> String? {
        let directory = try RepositoryPaths.temporaryDirectory("veil-config")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("config.json")
        try json.write(to: file, atomically: true, encoding: .utf8)
        do {
            try load(file.path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func serve(_ keys: String) throws -> String? {
        try refusal("{\(Self.tls)\(keys.isEmpty ? "" : ", " + keys)}") { _ = try ServeConfiguration.load(path: $0) }
    }

    /// Under privacy the ring is fixed and only the subset adapts (Specs/export.md §5.4):
    /// `min_bits` is refused by name there, and `payload_bits` is the ring it adapts in.
    @Test func adaptiveCompressionUnderPrivacyAdaptsOnlyTheSubset() throws {
        let privacy = #""privacy": {"epsilon": 8}"#
        #expect(
            try serve(privacy + #", "adaptive_compression": {"min_bits": 8}"#)?.contains(
                "adaptive_compression.min_bits: with privacy") == true)
        #expect(try serve(privacy + #", "payload_bits": 32, "adaptive_compression": {"min_subset": 0.25}"#) == nil)
        #expect(
            try serve(#""payload_bits": 32, "adaptive_compression": {"min_subset": 0.25}"#)?.contains(
                "not with payload_bits") == true)
        // `"privacy": null` is no privacy, whatever the key's presence.
        #expect(
            try serve(#""privacy": null, "payload_bits": 32, "adaptive_compression": {"min_subset": 0.25}"#)?.contains(
                "not with payload_bits") == true)
        #expect(try serve(#""privacy": null, "payload_clip": 1, "adaptive_compression": {"min_bits": 8}"#) == nil)
        // A ring that cannot hold the cohort's payloads would abort every private round at setup.
        #expect(
            try serve(#""privacy": {"epsilon": 8, "mode": "ddg"}, "payload_bits": 8"#)?.contains(
                "payload_bits 8 cannot hold") == true)
    }

    /// The finding: `"privcy"` ran a federation without differential privacy.
    @Test func aMisspeltKeyIsRefusedNamingTheKeyMeant() throws {
        #expect(
            try serve(#""privcy": {"epsilon": 1}"#)
                == #"the configuration: unknown key "privcy"; did you mean "privacy"?"#)
        #expect(try serve(#""round": 7"#) == #"the configuration: unknown key "round"; did you mean "rounds"?"#)
        #expect(try serve(#""privacy": {"epsilon": 1, "mechanism": "ddg"}"#) == #"privacy: unknown key "mechanism""#)
        #expect(
            try refusal(#"{"tls": {"ca": "c", "certificate": "x", "key": "k", "signing_key": "s", "cert": "y"}}"#) {
                _ = try ServeConfiguration.load(path: $0)
            } == #"tls: unknown key "cert""#)
        #expect(
            try refusal(#"{\#(Self.tls), "reconect_attempts": 3}"#) { _ = try JoinConfiguration.load(path: $0) }
                == #"the configuration: unknown key "reconect_attempts"; did you mean "reconnect_attempts"?"#)
        #expect(
            try refusal(#"{\#(Self.tls), "policy": {"min_cohrt": 3}}"#) { _ = try JoinConfiguration.load(path: $0) }
                == #"policy: unknown key "min_cohrt"; did you mean "min_cohort"?"#)
        #expect(
            try refusal(#"{\#(Self.tls), "privacy_budget": {"epsilon": 1, "ledgr": "l.json"}}"#) {
                _ = try JoinConfiguration.load(path: $0)
            } == #"privacy_budget: unknown key "ledgr"; did you mean "ledger"?"#)
        #expect(
            try refusal(#"{\#(Self.tls), "secret_key": "p.key", "min_contributers": 2}"#) {
                _ = try KeyHolderConfiguration.load(path: $0)
            } == #"the configuration: unknown key "min_contributers"; did you mean "minimum_contributors"?"#)
    }

    /// The decoder's snake-case conversion also took `"learningRate"`, and a repeated key kept
    /// its last value: a file could show ε = 1 at the top and set ε = 50 below.
    @Test func keysAreSnakeCaseAndAppearOnce() throws {
        #expect(
            try serve(#""learningRate": 0.5"#)
                == #"unknown key "learningRate": keys are snake_case; did you mean "learning_rate"?"#)
        #expect(
            try serve(#""learning__rate": 0.5"#)
                == #"unknown key "learning__rate": keys are snake_case; did you mean "learning_rate"?"#)
        #expect(try serve(#""Rounds": 3"#) == #"unknown key "Rounds": keys are snake_case; did you mean "rounds"?"#)
        #expect(try serve(#""rounds": 3, "rounds": 4"#) == #"the key "rounds" appears twice; give each setting once"#)
        #expect(
            try serve(#""privacy": {"epsilon": 1, "delta": 1e-5, "epsilon": 50}"#)
                == #"the key "privacy.epsilon" appears twice; give each setting once"#)
        #expect(
            try refusal(#"{\#(Self.tls), "policy": {"minCohort": 3}}"#) { _ = try JoinConfiguration.load(path: $0) }
                == #"unknown key "policy.minCohort": keys are snake_case; did you mean "min_cohort"?"#)
        // The same key in two objects (or two array elements) is two settings; a quote escaped
        // inside a value does not end it.
        try ConfigurationKeys.check(Array(#"{"a": {"x": 1}, "b": {"x": "q\"}"}, "c": [{"x": 1}, {"x": 2}]}"#.utf8))
        #expect(throws: ConfigurationError(#"the key "c.1.x" appears twice; give each setting once"#)) {
            try ConfigurationKeys.check(Array(#"{"c": [{"x": 1}, {"x": 2, "x": 3}]}"#.utf8))
        }
        // The second review: a byte-order mark, UTF-16 or anything else the scanner cannot
        // follow must not carry keys past it unchecked (the decoder reads all of them).
        let twice = #"{"rounds": 3, "rounds": 4}"#
        for bytes in [
            [0xEF, 0xBB, 0xBF] + Array(twice.utf8), Array(twice.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }),
        ] {
            #expect(throws: ConfigurationError.self) { try ConfigurationKeys.check(bytes) }
        }
        #expect(
            throws: ConfigurationError(
                "not plain UTF-8 JSON at byte 14 (one object; no byte-order mark, UTF-16 or comments)")
        ) {
            try ConfigurationKeys.check(Array(#"{"rounds": 3} {"#.utf8))
        }
        // Nesting is bounded before the recursion could exhaust the stack.
        #expect(throws: ConfigurationError("the JSON nests deeper than 512 levels")) {
            try ConfigurationKeys.check(Array(repeating: UInt8(ascii: "["), count: 100_000))
        }
        try ConfigurationKeys.check(Array(#"{"a": [1, -2.5e3, true, false, null, "x"], "b": {}}"#.utf8))
        #expect(ConfigurationKeys.isSnakeCase("max_round_attempts"))
        #expect(ConfigurationKeys.isSnakeCase("beta1"))
        for bad in ["", "_rounds", "rounds_", "1rounds", "round s", "rouNds", #"r\u006fund"#] {
            #expect(!ConfigurationKeys.isSnakeCase(bad), "\(bad)")
        }
    }

    @Test func aNameOutsideItsSetIsRefusedWithTheNamesAllowed() throws {
        #expect(
            try serve(#""algorithm": "fedadm""#)
                == #"algorithm: "fedadm" is not one of fedavg, fedavgm, fedprox, fedadagrad, fedadam, fedyogi; did you mean "fedadam"?"#
        )
        #expect(
            try serve(#""algorithm": "scaffold""#)
                == #"algorithm: "scaffold" is not one of fedavg, fedavgm, fedprox, fedadagrad, fedadam, fedyogi"#)
        #expect(
            try serve(#""secure_sum": "pailier""#)
                == #"secure_sum: "pailier" is not one of secagg, paillier; did you mean "paillier"?"#)
        #expect(
            try serve(#""threat_model": "honest""#)
                == #"threat_model: "honest" is not one of malicious, honest-but-curious"#)
        #expect(try serve(#""evaluate": "mnist""#) == #"evaluate: "mnist" is not one of digits"#)
        #expect(
            try serve(#""selection": "round_robin""#)
                == #"selection: "round_robin" is not one of random, round-robin, resource-aware, oort; did you mean "round-robin"?"#
        )
        #expect(
            try serve(#""privacy": {"epsilon": 1, "mode": "gauss"}"#)
                == #"privacy.mode: "gauss" is not one of central, ddg, skellam"#)
        #expect(
            try serve(#""model": "mlp:64,,10""#)?.hasSuffix(
                #"model: "mlp:64,,10" is not softmax, mlp:H1,H2,… with positive widths, or tensors:NAME=D1xD2x…,…"#)
                == true)
        #expect(
            try serve(#""model": "cnn""#)?.hasSuffix(
                #"model: "cnn" is not softmax, mlp:H1,H2,… with positive widths, or tensors:NAME=D1xD2x…,…"#) == true)
        // Accepted spellings.
        let c = ServeConfiguration(tls: .init(ca: "", certificate: "", key: "", signingKey: ""))
        #expect(
            c.algorithm == .fedavg && c.secureSum == .secagg && c.threatModel == .malicious && c.evaluate == .digits)
        #expect(try serve(#""model": "mlp:32,16", "evaluate": null, "algorithm": "fedyogi""#) == nil)
    }

    /// Every rule of `ServeConfiguration.validate()`, with its message.
    @Test(arguments: [
        (#""federation": """#, "federation must not be empty"),
        (#""port": 70000"#, "port must be in 0...65535"),
        (#""metrics_port": -1"#, "metrics_port must be in 0...65535 or null"),
        (#""rounds": 0"#, "rounds must be at least 1"),
        (#""min_participants": 1"#, "min_participants must be at least 2 (a secure sum needs two)"),
        (#""min_participants": 5, "cohort_size": 4"#, "cohort_size must be at least min_participants"),
        (#""round_deadline_seconds": 0"#, "round_deadline_seconds must be in (0, 86400]"),
        (#""round_deadline_seconds": 5000000"#, "round_deadline_seconds must be in (0, 86400]"),
        (#""training_deadline_seconds": -1"#, "training_deadline_seconds must be in (0, 86400]"),
        (#""registration_timeout_seconds": 0"#, "registration_timeout_seconds must be in (0, 86400]"),
        (#""max_round_attempts": 0"#, "max_round_attempts must be at least 1"),
        (#""features": 0"#, "features must be at least 1"),
        (#""classes": 1"#, "classes must be at least 2"),
        (#""local_epochs": 0"#, "local_epochs must be at least 1"),
        (#""batch_size": 0"#, "batch_size must be at least 1"),
        (#""learning_rate": 0"#, "learning_rate must be positive"),
        (#""momentum": 1"#, "momentum must be in [0, 1)"),
        (#""weight_decay": -0.1"#, "weight_decay must be at least 0"),
        (#""proximal_mu": -1"#, "proximal_mu must be at least 0"),
        (#""server_momentum": 1.5"#, "server_momentum must be in [0, 1)"),
        (#""server_learning_rate": 0"#, "server_learning_rate must be positive"),
        (#""beta1": 1"#, "beta1 must be in [0, 1)"),
        (#""beta2": -0.5"#, "beta2 must be in [0, 1)"),
        (#""tau": 0"#, "tau must be positive"),
        (#""weight_scale": 0"#, "weight_scale must be positive"),
        (#""payload_bits": 65"#, "payload_bits must be in 8...64"),
        (#""payload_clip": 0"#, "payload_clip must be positive"),
        (#""corrupt_fraction": 0.95"#, "corrupt_fraction, dropout_fraction, security_bits: "),
        (#""max_message_bytes": 1000"#, "max_message_bytes must be at least 65536"),
        (#""messages_per_second": 0"#, "messages_per_second must be positive"),
        (#""message_burst": 0"#, "message_burst must be at least 1"),
        (#""key_holder": "a b""#, "key_holder: "),
        (#""privacy": {"epsilon": 0}"#, "privacy.epsilon must be positive"),
        (#""privacy": {"epsilon": 1, "delta": 1}"#, "privacy.delta must be in (0, 1)"),
        (#""privacy": {"epsilon": 1, "clip": 0}"#, "privacy.clip must be positive"),
        (#""privacy": {"epsilon": 1, "participant_budget": -1}"#, "privacy.participant_budget must be positive"),
        (#""privacy": {"epsilon": 1, "alert_fraction": 0}"#, "privacy.alert_fraction must be in (0, 1]"),
        (#""privacy": {"epsilon": 1, "mode": "ddg", "bits": 4}"#, "privacy.bits must be in 8...62"),
        (
            #""privacy": {"epsilon": 1, "mode": "ddg", "min_contributors": 0}"#,
            "privacy.min_contributors must be at least 1"
        ),
        (
            #""secure_sum": "paillier", "privacy": {"epsilon": 1, "mode": "skellam"}"#,
            "privacy.mode skellam needs secure_sum secagg (the noise shares are summed modulo 2^bits)"
        ),
        (
            #""privacy": {"epsilon": 1, "mode": "ddg", "min_contributors": 11}"#,
            "privacy.min_contributors must be at most cohort_size"
        ),
        (#""model": "tensors:w=0""#, "model: tensor w's shape must be 1 to 8 positive dimensions"),
        (#""model": "tensors:w=2x3,b=2""#, "evaluate must be null with a tensors: model"),
        (#""browser": {"port": 70000}"#, "browser.port must be in 0...65535"),
        (#""browser": {"port": 9464}"#, "browser.port 9464 is already the gRPC or the metrics port"),
        (#""browser": {"certificate": "web.pem"}"#, "browser.certificate and browser.key go together"),
        (#""browser": {"max_connections": 0}"#, "browser.max_connections must be in 1...100000"),
        (
            #""browser": {"origins": ["https://Pages.example/"]}"#,
            #"browser.origins.0: "https://Pages.example/" is not an origin"#
        ),
        (#""browser": {"page_folder": "web"}"#, #"browser: unknown key "page_folder""#),
        (#""asynchronous": {"max_staleness": -1}"#, "asynchronous.max_staleness must be in 0...1000000"),
        (#""asynchronous": {"buffer_wait_seconds": 0}"#, "asynchronous.buffer_wait_seconds must be in (0, 86400]"),
        (
            #""asynchronous": {"max_stalenes": 3}"#,
            #"asynchronous: unknown key "max_stalenes"; did you mean "max_staleness"?"#
        ),
    ])
    func everyServeRuleIsCheckedWithItsMessage(keys: String, message: String) throws {
        let refusal = try #require(try serve(keys), "accepted \(keys)")
        #expect(refusal.hasPrefix(message), "\(keys)")
    }

    @Test(arguments: [
        (#""index": 10, "clients": 10"#, "index must be in 0..<clients"),
        (#""clients": 0"#, "clients must be at least 1"),
        (#""port": 0"#, "port must be in 1...65535"),
        (#""cores": -1"#, "cores must be in 1...1048576"),
        (#""battery": 2"#, "battery must be in [0, 1], or -1 (mains power)"),
        (#""reconnect_attempts": -1"#, "reconnect_attempts must be at least 0"),
        (#""policy": {"corrupt_fraction": 0.9}"#, "policy: "),
        (#""policy": {"paillier_min_bits": 128}"#, "policy.paillier_min_bits must be at least 256"),
        (#""policy": {"paillier_fingerprint": "abc"}"#, "policy.paillier_fingerprint must be 64 hexadecimal digits"),
        (
            #""policy": {"adversary": "curious"}"#,
            #"policy.adversary: "curious" is not one of malicious, honest-but-curious"#
        ),
        (#""privacy_budget": {"epsilon": 0}"#, "privacy_budget.epsilon must be positive"),
        (#""privacy_budget": {"epsilon": 1, "delta": 0}"#, "privacy_budget.delta must be in (0, 1)"),
        (
            #""privacy_budget": {"epsilon": 1, "max_round_epsilon": 0}"#,
            "privacy_budget.max_round_epsilon must be positive"
        ),
        (#""trainer": {"command": []}"#, "trainer.command must name a program"),
        (#""trainer": {"command": ["t"], "timeout_seconds": 0}"#, "trainer.timeout_seconds must be in (0, 86400]"),
        (
            #""trainer": {"command": ["t"], "max_memory_bytes": 1000}"#,
            "trainer.max_memory_bytes must be in [2^26, 2^50]"
        ),
        (#""trainer": {"command": ["t"], "work_directory": ""}"#, "trainer.work_directory must name a folder"),
        (#""trainer": {"comand": ["t"]}"#, #"trainer: unknown key "comand"; did you mean "command"?"#),
        (#""trainer": {"command": ["t"]}, "dataset": "digits""#, "dataset is not used with a trainer"),
        (#""trainer": {"command": ["t"]}, "index": 2"#, "index is not used with a trainer"),
        (#""trainer": {"command": ["t"]}, "loss_report": {}"#, "loss_report needs Veil's own trainer"),
        (#""dp_sgd": {"clip": 1}"#, "missing key dp_sgd.noise_multiplier"),
        (#""dp_sgd": {"noise_multiplier": 0.01}"#, "dp_sgd.noise_multiplier must be in [0.1, 1000]"),
        (#""dp_sgd": {"noise_multiplier": 1, "clip": 0}"#, "dp_sgd.clip must be positive"),
        (#""dp_sgd": {"noise_multiplier": 1, "delta": 1}"#, "dp_sgd.delta must be in (0, 1)"),
        (#""dp_sgd": {"noise_multiplier": 1, "epsilon": -1}"#, "dp_sgd.epsilon must be positive"),
        (#""dp_sgd": {"noise_multiplier": 1, "ledger": ""}"#, "dp_sgd.ledger must name a file"),
        (#""dp_sgd": {"noise_multiplier": 1, "sigma": 2}"#, #"dp_sgd: unknown key "sigma""#),
        (#""dp_sgd": {"noise_multiplier": 1}, "trainer": {"command": ["t"]}"#, "dp_sgd is for Veil's own trainer"),
        (#""dp_sgd": {"noise_multiplier": 1}, "loss_report": {}"#, "loss_report and dp_sgd are exclusive"),
        (#""offline_state": """#, "offline_state must name a folder"),
    ])
    func everyJoinRuleIsCheckedWithItsMessage(keys: String, message: String) throws {
        let refusal = try #require(
            try refusal("{\(Self.tls), \(keys)}") { _ = try JoinConfiguration.load(path: $0) }, "accepted \(keys)")
        #expect(refusal.hasPrefix(message) || refusal.hasSuffix(message), "\(keys)")
    }

    @Test func theKeyHolderRefusesAFloorBelowTwo() throws {
        #expect(
            try refusal(#"{\#(Self.tls), "secret_key": "p.key", "minimum_contributors": 1}"#) {
                _ = try KeyHolderConfiguration.load(path: $0)
            } == "minimum_contributors must be at least 2: a sum of one is that one's input")
    }

    @Test func suggestionsAreForTyposOnly() {
        #expect(editDistance("kitten", "sitting") == 3)
        #expect(editDistance("", "abc") == 3)
        #expect(suggestion("privcy", among: ["privacy", "rounds"]) == #"; did you mean "privacy"?"#)
        #expect(suggestion("mechanism", among: ["mode", "epsilon", "delta"]) == "")
    }
}

/// `veil simulate` over the network builds the coordinator's configuration from its flags.
@Suite struct NetworkSimulationSettingsTests {
    /// The finding: over the network, `--beta1/--beta2/--tau` were dropped and the coordinator
    /// used 0.9/0.99/1e-3 whatever was asked. Every FedAvg-family setting now reaches it: the
    /// coordinator's algorithm is the one the flags describe.
    @Test(arguments: [
        AlgorithmChoice.fedAvg, .fedAvgM(beta: 0.7), .fedProx(mu: 0.3), .fedAdagrad(learningRate: 0.05, tau: 0.01),
        .fedAdam(learningRate: 0.02, beta1: 0.5, beta2: 0.9, tau: 1e-4),
        .fedYogi(learningRate: 0.03, beta1: 0.6, beta2: 0.95, tau: 1e-2),
    ])
    func everyAlgorithmSettingReachesTheCoordinator(algorithm: AlgorithmChoice) throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-network-settings")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 3
        c.algorithm = algorithm
        let network = try NetworkSimulation(configuration: c, directory: directory)
        #expect(network.serve.algorithmChoice == algorithm)
        // The server state the coordinator starts from is the in-process engine's.
        let initial = [0.5, -0.25]
        #expect(network.serve.initialAlgorithm(initial) == algorithm.fedAvgFamily(initial: initial))
    }

    @Test func whatTheNetworkDoesNotRunIsRefusedWithTheReason() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-network-settings")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 3
        c.algorithm = .scaffold
        #expect(throws: ConfigurationError.self) { try NetworkSimulation(configuration: c, directory: directory) }
        c.algorithm = .fedAvg
        c.stragglerFraction = 0.2
        #expect(throws: ConfigurationError("stragglers run in-process only")) {
            try NetworkSimulation(configuration: c, directory: directory)
        }
    }
}

/// `Specs/wire.md` is checked against the code: the keys its §7 tables document are exactly
/// the keys the decoders accept, and its §9 table lists exactly the metrics exported.
@Suite struct SpecificationAgreementTests {
    static let wire =
        (try? String(contentsOf: RepositoryPaths.root.appendingPathComponent("Specs/wire.md"), encoding: .utf8)) ?? ""

    /// The keys in the first column of the table that follows `heading` (backticked, comma-separated).
    func documentedKeys(after heading: String) throws -> Set<String> {
        let start = try #require(Self.wire.range(of: heading), "no \(heading) in Specs/wire.md")
        var keys = Set<String>()
        var inTable = false
        for line in Self.wire[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("|") else {
                if inTable { break }
                continue
            }
            inTable = true
            let first = line.split(separator: "|").first ?? ""
            for part in first.split(separator: ",") {
                let key = part.trimmingCharacters(in: .whitespaces)
                if key.hasPrefix("`") && key.hasSuffix("`") { keys.insert(String(key.dropFirst().dropLast())) }
            }
        }
        return keys
    }

    func decoded<Keys: CodingKey & CaseIterable>(_: Keys.Type) -> Set<String> {
        Set(Keys.allCases.map { snakeCase($0.stringValue) })
    }

    @Test func section7DocumentsEveryKeyTheDecodersAccept() throws {
        #expect(try documentedKeys(after: "`veil serve --config FILE`:") == decoded(ServeConfiguration.CodingKeys.self))
        #expect(try documentedKeys(after: "`veil join --config FILE`:") == decoded(JoinConfiguration.CodingKeys.self))
        #expect(
            try documentedKeys(after: "`veil keyholder --config FILE`:")
                == decoded(KeyHolderConfiguration.CodingKeys.self))
    }

    @Test func section9ListsEveryMetricExported() throws {
        let documented = try documentedKeys(after: "## 9. Observability")
        #expect(documented == Set(Metrics.catalogue.map(\.name)))
        for (name, kind, _) in Metrics.catalogue {
            #expect(
                Self.wire.contains("| `\(name)` | \(kind.rawValue) |"),
                "\(name) is not documented as a \(kind.rawValue)")
        }
    }
}
