import ArgumentParser
import Foundation
import Logging
import Synchronization
import VeilCore
import VeilCrypto
import VeilExport
import VeilLearning
import VeilPaillier
import VeilSecAgg
import VeilService
import VeilTransport

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Train a model by federated learning in this process, with the sum computed by a secure-sum backend.",
        discussion: """
            Participants train locally on their share of the data; each round their updates are encoded in \
            fixed point and added by the chosen backend (secagg: pairwise masking; paillier: homomorphic \
            encryption with a separate key holder; plain: in the clear), and the algorithm's server rule uses \
            only the sum. Prints per-round test accuracy and loss and a summary; a progress bar goes to stderr. \
            The defaults — digits, 10 participants, Dirichlet(0.5), softmax regression, FedAvg, 50 rounds, \
            secure aggregation — finish in well under a minute.

            By default (--transport network) the federation runs over the network: a temporary CA, a \
            coordinator and the participants in this process, talking gRPC over loopback with mutual TLS — the \
            code of `veil serve` and `veil join`. That path runs the FedAvg family (fedavg, fedavgm, fedprox, \
            fedadagrad, fedadam, fedyogi) and FedBuff with secure aggregation or Paillier (with a key holder) on \
            digits; anything else (other algorithms, --dp with --fraction below 1 or --clip-quantile, --stragglers, --dropout, --secure-sum plain, other datasets) runs in-process, and \
            the first line says so. --transport in-process forces the in-process engine. FedBuff over the network is \
            the service's asynchronous mode (Specs/wire.md §4.4): every participant trains on the model it was last \
            offered and holds its update; each round sums a buffer of --buffer held updates, each weighted by its \
            staleness before it is masked.

            With --dp the run is DP-FedAvg with user-level (ε, δ)-differential privacy: participants are \
            Poisson-sampled at rate --fraction, weighted uniformly, their updates clipped to --clip (adapted \
            towards --clip-quantile when given), and the sum carries Gaussian noise added by the server \
            (central) or integer noise added by each participant inside the secure sum (ddg, skellam), \
            calibrated so that all --rounds rounds together meet --epsilon and --delta. Each round reports the \
            ε spent so far; --dp-budget keeps a per-participant ledger.
            """
    )

    @Option(help: "digits, synthetic:A,B (FedProx's Synthetic(α, β)), or csv:PATH (features…, label).")
    var dataset = "digits"

    @Option(help: "iid, dirichlet:A (label skew), or shards:S (S label-sorted shards each). Ignored by synthetic data.")
    var partition = "dirichlet:0.5"

    @Option(help: "Number of participants (synthetic: devices).")
    var clients = 10

    @Option(help: "Fraction of participants selected each round.")
    var fraction = 1.0

    @Option(help: "Rounds (FedBuff: server steps).")
    var rounds = 50

    @Option(help: "Local epochs per round.")
    var localEpochs = 1

    @Option(help: "Minibatch size.")
    var batch = 32

    @Option(help: "Client learning rate.")
    var lr = 0.1

    @Option(help: "Client SGD momentum.")
    var momentum = 0.0

    @Option(help: "Client L2 weight decay.")
    var weightDecay = 0.0

    @Option(help: "softmax, or mlp:H1,H2,… (ReLU hidden layers).")
    var model = "softmax"

    @Option(help: "One of: \(AlgorithmChoice.names.joined(separator: ", ")).")
    var algorithm = "fedavg"

    @OptionGroup var algorithmOptions: AlgorithmOptions

    @Option(help: "Fraction of selected participants that are stragglers (run 1…E−1 epochs; FedAvg drops them).")
    var stragglers = 0.0

    @Option(help: "plain, secagg or paillier.")
    var secureSum = "secagg"

    @Option(help: "network (default: coordinator and participants over loopback mutual TLS) or in-process.")
    var transport: String?

    @Option(help: "Probability that a participant drops out of a round's secure sum.")
    var dropout = 0.0

    @Option(help: "Paillier modulus size (paillier only).")
    var paillierBits = 2048

    @Option(
        help: ArgumentHelp(
            "A t-of-ℓ threshold key (paillier, network only): ℓ key holders each hold a share, t of them decrypt each round, each proving its partial decryption (Specs/paillier.md §6.3).",
            valueName: "T-of-L"))
    var thresholdKey: String?

    @Option(
        name: .customLong("damgard-jurik"),
        help: ArgumentHelp(
            "Damgård–Jurik's s, 1 to 4 (paillier only, in-process): ciphertexts mod n^(s+1), (s+1)/s the plaintext's length.",
            valueName: "S"))
    var damgardJurik = 1

    @Option(help: "Seed of the data split, initialisation, selection and training.")
    var seed: UInt64 = 0

    @Option(
        help: ArgumentHelp(
            "Prune the global model by magnitude after --prune-round and keep training with the mask: S (unstructured) or S:structured (hidden units; mlp).",
            valueName: "S[:KIND]"))
    var prune: String?

    @Option(help: "The round after which --prune prunes (default: half of --rounds).")
    var pruneRound: Int?

    @Option(
        help: ArgumentHelp(
            "Quantise each update coordinate stochastically to about B bits: the secure sum runs in Z_2^(B + ⌈log2 cohort⌉) with values clipped to ±--compress-clip.",
            valueName: "B"))
    var compressBits: Int?

    @Option(help: "The clip of --compress-bits (the payload's largest magnitude).")
    var compressClip = 1.0

    @Option(
        help: ArgumentHelp(
            "Choose each round's bits per value (down to B) and subset (down to F, default 1) from the cohort's uplinks and --deadline (needs --devices).",
            valueName: "B[:F]"))
    var adaptiveCompression: String?

    @Option(
        help: ArgumentHelp(
            "Send ⌈F·(d − 1)⌉ = k of the d − 1 update coordinates each round, the same for all (a public per-round seed), scaled by (d − 1)/k; also over the network, and with --dp (clipped to --clip after the scaling).",
            valueName: "F"))
    var subset: Double?

    @Option(
        help: ArgumentHelp(
            "Write the final global model to DIR: checkpoint.json; model.onnx, model_fp16.onnx; model.tflite, model_fp16.tflite, model_int8.tflite.",
            valueName: "DIR"))
    var export: String?

    @Option(
        help: ArgumentHelp(
            "Each participant trains with this program instead of Veil's trainer (Specs/trainer.md), reading its rows from the CSV file the request's data names; split at spaces. Over the network only.",
            valueName: "CMD"))
    var trainer: String?

    @Option(
        help: ArgumentHelp(
            "DP-SGD in every participant's local training (Specs/privacy.md §8): noise multiplier σ and per-example clip C (default 1); each participant's example-level ε at --dp-sgd-delta is reported. Over the network only.",
            valueName: "σ[:C]"))
    var dpSgd: String?

    @Option(help: "The δ of --dp-sgd's example-level ε.")
    var dpSgdDelta = 1e-5

    @OptionGroup(title: "Differential privacy") var privacy: PrivacyOptions

    @OptionGroup(title: "Devices and selection") var orchestration: OrchestrationOptions

    struct PrivacyOptions: ParsableArguments {
        @Option(help: "none, central, ddg (distributed discrete Gaussian) or skellam.")
        var dp = "none"
        @Option(help: "The run's ε (with --dp).")
        var epsilon: Double?
        @Option(help: "The run's δ (with --dp).")
        var delta = 1e-5
        @Option(help: "The L2 clip bound C on each update (with --dp; the initial bound with --clip-quantile).")
        var clip = 1.0
        @Option(help: "Adapt C towards this quantile of the update norms (Andrew et al. 2021).")
        var clipQuantile: Double?
        @Option(help: "The adaptive clip's learning rate η_C.")
        var clipLr = 0.2
        @Option(help: "ddg/skellam: the secure sum's modulus 2^bits.")
        var dpBits = 20
        @Option(help: "ddg/skellam: the fewest contributions a round may release (default: all when --fraction is 1).")
        var dpMinParticipants: Int?
        @Option(help: "A per-participant ε budget: a ledger refuses participants who would exceed it.")
        var dpBudget: Double?
        @Option(help: "Alert when a participant has spent this fraction of --dp-budget.")
        var dpAlert = 0.8

        func configuration() throws -> PrivacyConfiguration? {
            guard dp != "none" else {
                guard epsilon == nil else { throw ValidationError("--epsilon needs --dp central, ddg or skellam") }
                return nil
            }
            guard let mode = PrivacyConfiguration.Mode(rawValue: dp) else {
                throw ValidationError("--dp must be none, central, ddg or skellam")
            }
            guard let epsilon else { throw ValidationError("--dp \(dp) needs --epsilon") }
            guard (0...1).contains(dpAlert) else { throw ValidationError("--dp-alert must be in [0, 1]") }
            var c = PrivacyConfiguration(mode: mode, epsilon: epsilon, delta: delta, clip: clip)
            c.adaptiveQuantile = clipQuantile
            c.clipLearningRate = clipLr
            c.bits = dpBits
            c.minimumParticipants = dpMinParticipants
            c.participantBudget = dpBudget
            c.alertFraction = dpAlert
            return c
        }
    }

    @OptionGroup var output: OutputOptions

    @OptionGroup(title: "Dashboard (network only)") var dashboard: DashboardOptions

    struct DashboardOptions: ParsableArguments {
        @Option(
            name: .customLong("dashboard-port"),
            help:
                "Serve the live dashboard and /metrics on 127.0.0.1 at this port (0: any free port); the URL, with a token made for this run, is printed on stderr. Every participant runs in this process, so their resource reports all show it."
        )
        var port: Int?

        @Option(
            name: .customLong("drop-participant"),
            help:
                "INDEX:ROUND — participant INDEX (0-based) goes silent in ROUND after its first protocol message, a dropout the sum recovers from, then reconnects for the next round (repeatable; to watch a dropout on the dashboard)."
        )
        var drops: [String] = []

        /// The dropouts asked for, by participant index.
        func failures(participants: Int) throws -> [Int: (round: UInt64, messages: Int)] {
            var result: [Int: (round: UInt64, messages: Int)] = [:]
            for text in drops {
                let parts = text.split(separator: ":")
                guard parts.count == 2, let index = Int(parts[0]), let round = UInt64(parts[1]), round >= 1,
                    (0..<participants).contains(index), result[index] == nil
                else {
                    throw usageError(
                        "--drop-participant \(text): want INDEX:ROUND with INDEX in 0..<\(participants), ROUND ≥ 1, each INDEX once"
                    )
                }
                result[index] = (round, 1)
            }
            return result
        }

        @Option(
            name: .customLong("dashboard-hold"),
            help: "Keep the dashboard up this many seconds after the federation ends (SIGINT ends the wait).")
        var hold = 0

        func validate() throws {
            if let port, !(0...65535).contains(port) { throw ValidationError("--dashboard-port must be in 0...65535") }
            guard (0...86_400).contains(hold) else { throw ValidationError("--dashboard-hold must be in 0...86400") }
            if hold > 0, port == nil { throw ValidationError("--dashboard-hold needs --dashboard-port") }
        }
    }

    struct AlgorithmOptions: ParsableArguments {
        @Option(help: "FedProx μ.")
        var mu = 0.01
        @Option(help: "FedAvgM server momentum β.")
        var serverMomentum = 0.9
        @Option(help: "FedAdagrad/FedAdam/FedYogi server learning rate η.")
        var serverLr = 0.1
        @Option(help: "FedAdam/FedYogi β1.")
        var beta1 = 0.9
        @Option(help: "FedAdam/FedYogi β2.")
        var beta2 = 0.99
        @Option(help: "FedAdagrad/FedAdam/FedYogi adaptivity τ.")
        var tau = 1e-3
        @Option(help: "FedBuff buffer size K (default: half the concurrency).")
        var buffer: Int?
        @Option(
            help:
                "FedBuff participants training at once (default: the per-round cohort); in-process only: over the network every participant trains."
        )
        var concurrency: Int?
        @Option(help: "IFCA clusters.")
        var clusters = 2
        @Option(help: "Ditto λ.")
        var lambda = 0.1
        @Option(help: "q-FedAvg q.")
        var q = 1.0
        @Option(help: "Trimmed mean: fraction trimmed at each end.")
        var trim = 0.1
        @Option(help: "Krum: participants assumed Byzantine.")
        var byzantine = 1
    }

    func validate() throws {
        guard AlgorithmChoice.names.contains(algorithm) else {
            throw ValidationError(
                "unknown algorithm \"\(algorithm)\": use one of \(AlgorithmChoice.names.joined(separator: ", "))")
        }
        if let transport, !["network", "in-process"].contains(transport) {
            throw ValidationError("--transport must be network or in-process")
        }
        if dpSgd != nil {
            _ = try dpSgdSettings()
            if transport == "in-process" {
                throw ValidationError("--dp-sgd runs over the network: the in-process engine trains without it")
            }
            if trainer != nil { throw ValidationError("--dp-sgd is for Veil's own trainer, not --trainer") }
        }
        if dashboard.port != nil, transport == "in-process" {
            throw ValidationError("--dashboard-port runs over the network: the in-process engine has no coordinator")
        }
        if trainer != nil {
            guard !trainerCommand.isEmpty else { throw ValidationError("--trainer must name a program") }
            if transport == "in-process" {
                throw ValidationError(
                    "--trainer runs over the network: the in-process engine trains with Veil's trainer")
            }
        }
        guard ["plain", "secagg", "paillier"].contains(secureSum) else {
            throw ValidationError("--secure-sum must be plain, secagg or paillier")
        }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1)") }
        guard paillierBits == 2048 || paillierBits == 3072 else {
            throw ValidationError("--paillier-bits must be 2048 or 3072")
        }
        guard (1...4).contains(damgardJurik) else { throw ValidationError("--damgard-jurik must be 1 to 4") }
        if damgardJurik > 1, secureSum != "paillier" {
            throw ValidationError("--damgard-jurik is for --secure-sum paillier")
        }
        if thresholdKey != nil {
            guard secureSum == "paillier", transport != "in-process" else {
                throw ValidationError("--threshold-key is for --secure-sum paillier over the network")
            }
            _ = try thresholdHolders()
        }
        _ = try privacy.configuration()
    }

    func makeConfiguration() throws -> FederatedConfiguration {
        var c = FederatedConfiguration()
        do {
            c.dataset = try DatasetSource(parsing: dataset)
            c.partition = try Partition(parsing: partition)
            c.model = model
        } catch { throw usageError(error.description) }
        c.clients = clients
        c.fraction = fraction
        c.rounds = rounds
        c.localEpochs = localEpochs
        c.batchSize = batch
        c.learningRate = lr
        c.momentum = momentum
        c.weightDecay = weightDecay
        c.stragglerFraction = stragglers
        c.seed = seed
        if let prune {
            do { c.pruning = try Pruning(parsing: prune) } catch { throw usageError(error.description) }
        } else if pruneRound != nil {
            throw usageError("--prune-round needs --prune")
        }
        c.pruneRound = pruneRound
        if let bits = compressBits {
            // With DP the ring is --dp-bits (distributed) or the central mechanism's rounding
            // budget: compression there is --dp-bits, accounted for (Specs/export.md §5.4).
            guard privacy.dp == "none" else {
                throw usageError(
                    "--compress-bits is for runs without --dp: with distributed DP, --dp-bits sets the ring")
            }
            // The ring holds B bits per value and the headroom for the cohort's sum.
            let cohort = max(2, Int((fraction * Double(clients)).rounded()))
            let ring = bits + Int(log2(Double(cohort)).rounded(.up))
            guard (2...56).contains(bits), ring <= 64 else {
                throw usageError("--compress-bits must be in 2…56 with the cohort's headroom at most 64 bits")
            }
            guard compressClip > 0, compressClip.isFinite else { throw usageError("--compress-clip must be positive") }
            c.payloadBits = max(8, ring)
            c.payloadClip = compressClip
        }
        c.subset = subset
        if let adaptive = adaptiveCompression {
            let parts = adaptive.split(separator: ":", maxSplits: 1).map(String.init)
            guard let bits = Int(parts[0]), let fraction = parts.count == 2 ? Double(parts[1]) : 1 else {
                throw usageError("--adaptive-compression B[:F]: B the fewest bits per value, F the smallest subset")
            }
            guard compressBits == nil else {
                throw usageError("--adaptive-compression chooses the bits: not with --compress-bits")
            }
            do { c.adaptiveCompression = try AdaptiveCompression(minBits: bits, minSubset: fraction) } catch {
                throw usageError("--adaptive-compression: \(error)")
            }
            guard compressClip > 0, compressClip.isFinite else { throw usageError("--compress-clip must be positive") }
            c.payloadClip = compressClip
        }
        c.privacy = try privacy.configuration()
        try orchestration.apply(to: &c)
        let o = algorithmOptions
        var settings = AlgorithmSettings()
        settings.proximalMu = o.mu
        settings.serverMomentum = o.serverMomentum
        settings.serverLearningRate = o.serverLr
        settings.beta1 = o.beta1
        settings.beta2 = o.beta2
        settings.tau = o.tau
        settings.buffer = o.buffer
        settings.concurrency = o.concurrency
        settings.clusters = o.clusters
        settings.lambda = o.lambda
        settings.q = o.q
        settings.trim = o.trim
        settings.byzantine = o.byzantine
        do {
            c.algorithm = try AlgorithmChoice(
                name: algorithm, settings: settings, cohort: max(1, Int((fraction * Double(clients)).rounded())))
        } catch { throw usageError(error.description) }
        return c
    }

    func run() async throws {
        let configuration = try makeConfiguration()
        if transport != "in-process" {
            let blocker = networkBlocker(configuration)
            if blocker == nil { return try await runOnNetwork(configuration) }
            if transport == "network" { throw usageError("--transport network: \(blocker!)") }
            if trainer != nil { throw usageError("--trainer runs over the network, and \(blocker!)") }
            if dpSgd != nil { throw usageError("--dp-sgd runs over the network, and \(blocker!)") }
            if dashboard.port != nil { throw usageError("--dashboard-port runs over the network, and \(blocker!)") }
            FileHandle.standardError.write(Data("in-process: \(blocker!)\n".utf8))
        }
        let simulation: FederatedSimulation
        do { simulation = try FederatedSimulation(configuration: configuration) } catch { throw usageError("\(error)") }
        if case .oort = configuration.selection, secureSum != "plain" {
            FileHandle.standardError.write(
                Data(
                    "oort: each summed participant reveals its training loss and example count outside the secure sum (Specs/orchestration.md §2.3)\n"
                        .utf8))
        }
        let plan: PrivateRunPlan?
        do { plan = try simulation.privacyPlan() } catch { throw usageError(error.description) }
        let bar = ProgressBar(total: configuration.rounds)
        let outcome: SimulationOutcome
        do {
            switch secureSum {
            case "plain":
                var backend = PlainSum()
                outcome = try simulation.train(secureSum: &backend, progress: bar.update)
            case "paillier":
                FileHandle.standardError.write(Data("generating a \(paillierBits)-bit Paillier key…\n".utf8))
                var backend = try PaillierSecureSum(
                    keyBits: paillierBits, s: damgardJurik, bitWidth: BitWidth(simulation.sumBitWidth),
                    maxAddends: max(simulation.cohortSize, 2),
                    decryption: .keyHolder(minimumContributors: 2), dropoutProbability: dropout, seed: seed)
                outcome = try simulation.train(secureSum: &backend, progress: bar.update)
            default:
                var backend = SecAggSecureSum(
                    dropoutProbability: dropout, dropRounds: [.maskedInputCollection], seed: seed)
                outcome = try simulation.train(secureSum: &backend, progress: bar.update)
            }
        } catch let error as LearningError {
            bar.finish()
            throw usageError(error.description)
        }
        bar.finish()
        let reports = outcome.reports
        let final: ModelCheckpoint
        do {
            // Structured pruning's removed units leave zero rows: the exported model drops them.
            final = try ModelCheckpoint(
                model: simulation.model.name, features: simulation.model.featureCount,
                classes: simulation.model.classCount, round: reports.count, parameters: outcome.parameters
            ).compacted()
        } catch { throw usageError("\(error)") }
        let exported = try export.map { directory in try exportModel(final, to: directory) }
        let pruned = simulation.pruneRound.map { at in
            (
                round: at, accuracy: reports.first { $0.round == at }?.accuracy, model: final.model,
                nonzero: final.nonzeroCount, parameters: outcome.parameters.count
            )
        }
        let last = reports.last { $0.accuracy != nil }
        if output.json {
            var result: [String: Any] = [
                "final_accuracy": last?.accuracy ?? NSNull(), "final_loss": last?.loss ?? NSNull(),
                "final_training_loss": last?.trainingLoss ?? NSNull(),
                "final_personalized_accuracy": last?.personalizedAccuracy ?? NSNull(),
                "algorithm": algorithm,
                "secure_sum": secureSumName,
                "dataset": configuration.dataset.description,
                "model": simulation.model.name, "clients": simulation.data.clients.count,
                "parameters": simulation.model.parameterCount,
                "rounds": reports.map { r in
                    var round: [String: Any] = [
                        "round": r.round, "accuracy": r.accuracy ?? NSNull(), "loss": r.loss ?? NSNull(),
                        "training_loss": r.trainingLoss ?? NSNull(),
                        "personalized_accuracy": r.personalizedAccuracy ?? NSNull(),
                        "selected": r.selected, "survivors": r.survivors, "seconds": r.seconds,
                        "simulated_seconds": r.simulatedSeconds ?? NSNull(),
                    ]
                    round["subset"] = r.subsetFraction
                    if plan == nil {
                        round["upload_bytes"] = r.uploadBytes
                        round["payload_bits"] = r.payloadBits
                    }
                    if let spread = r.participantAccuracy { round["participant_accuracy"] = spread.json }
                    if let p = r.privacy {
                        round["epsilon"] = p.epsilon
                        round["round_epsilon"] = p.roundEpsilon
                        round["participant_epsilon"] = p.participantEpsilon
                        round["clip"] = p.clip
                        round["noise_stddev"] = p.noiseStandardDeviation
                        round["released"] = p.released
                        round["refusals"] = p.refusals
                        round["alerts"] = p.alerts
                    }
                    return round
                },
            ]
            let orchestrated = OrchestrationSummary(
                reports: reports, participants: simulation.data.clients.count,
                targetAccuracy: orchestration.targetAccuracy)
            result["selection"] = configuration.selection.name
            result["devices"] = configuration.devices?.source ?? NSNull()
            result["participation"] = orchestrated.participation
            result["participation_jain"] = orchestrated.participationJain
            result["simulated_seconds"] = orchestrated.simulatedSeconds ?? NSNull()
            if configuration.localTest {
                result["final_participant_accuracy"] = last?.participantAccuracy?.json ?? NSNull()
            }
            if let target = orchestration.targetAccuracy {
                result["target_accuracy"] = target
                result["time_to_accuracy"] = orchestrated.timeToAccuracy ?? NSNull()
                result["rounds_to_accuracy"] = orchestrated.roundsToAccuracy ?? NSNull()
            }
            if let plan, let final = reports.last?.privacy {
                result["privacy"] =
                    [
                        "mode": plan.configuration.mode.rawValue, "epsilon_target": plan.configuration.epsilon,
                        "delta": plan.configuration.delta, "epsilon_spent": final.epsilon,
                        "participant_epsilon": final.participantEpsilon,
                        "released_rounds": reports.count { $0.privacy?.released == true },
                        "round_epsilon": final.roundEpsilon,
                        "sampling_rate": plan.samplingRate, "noise_multiplier": plan.noiseMultiplier,
                        "minimum_participants": plan.minimumParticipants, "final_clip": final.clip,
                        "refusals": reports.reduce(0) { $0 + ($1.privacy?.refusals.count ?? 0) },
                    ] as [String: Any]
            }
            // Counted by the rounds without DP (the private rounds' ring is --dp-bits').
            if plan == nil {
                result["upload_bytes_per_round"] =
                    Double(reports.reduce(0) { $0 + $1.uploadBytes }) / Double(reports.count)
                result["payload_bits"] = configuration.payloadBits
            }
            if let exported { result["exported"] = exported.map(\.path).filter { !$0.isEmpty } }
            if let pruned, let pruning = configuration.pruning {
                result["pruning"] = [
                    "sparsity": pruning.sparsity, "kind": pruning.kind.rawValue, "round": pruned.round,
                    "accuracy_at_pruning": pruned.accuracy ?? NSNull(), "model": pruned.model,
                    "nonzero": pruned.nonzero, "parameters": pruned.parameters,
                ]
            }
            print(try jsonString(result))
        } else {
            print(
                "\(algorithm) on \(configuration.dataset) (\(simulation.data.clients.count) participants, \(configuration.partition)), "
                    + "\(simulation.model.name) with \(simulation.model.parameterCount) parameters, sum by \(secureSumName)"
            )
            if let plan {
                let p = plan.configuration
                var line = String(
                    format:
                        "DP-FedAvg, %@ noise: target (ε %.4g, δ %.3g) over %d rounds, sampling rate %.4g, noise multiplier %.4f",
                    p.mode.rawValue, p.epsilon, p.delta, plan.rounds, plan.samplingRate, plan.noiseMultiplier)
                if plan.distributed != nil { line += ", at least \(plan.minimumParticipants) noise shares per sum" }
                print(line)
            }
            let privacyColumns = plan == nil ? "" : "   ε spent    clip"
            let timed = configuration.devices != nil
            print(
                "round  accuracy     loss  train-loss  summed/selected   seconds" + (timed ? "  simulated-s" : "")
                    + privacyColumns)
            for r in reports where r.accuracy != nil {
                var line = String(
                    format: "%5d  %8.4f  %7.4f  %10.4f  %7d/%-8d %8.3f", r.round, r.accuracy!, r.loss!,
                    r.trainingLoss ?? .nan, r.survivors, r.selected, r.seconds)
                if let simulated = r.simulatedSeconds { line += String(format: "  %11.3f", simulated) }
                if let p = r.privacy { line += String(format: "  %8.4f %7.4f", p.epsilon, p.clip) }
                print(line)
            }
            for r in reports {
                for alert in r.privacy?.alerts ?? [] {
                    print("round \(r.round): alert: \(alert) passed \(privacy.dpAlert) of its budget")
                }
                if let refusals = r.privacy?.refusals, let first = refusals.first {
                    print("round \(r.round): \(refusals.count) not selected, e.g. \(first)")
                }
                if r.privacy?.released == false { print("round \(r.round): no sum released") }
            }
            if let last {
                var summary = String(
                    format: "final: accuracy %.4f, loss %.4f after %d rounds", last.accuracy!, last.loss!, last.round)
                if let personal = last.personalizedAccuracy {
                    summary += String(format: ", personalised accuracy %.4f", personal)
                }
                if let spread = last.participantAccuracy {
                    summary += String(
                        format:
                            "; on the participants' own test rows: mean %.4f, worst 10%% %.4f, best 10%% %.4f, sd %.4f",
                        spread.mean, spread.worst10, spread.best10, spread.standardDeviation)
                }
                if let p = reports.last?.privacy {
                    summary += String(
                        format:
                            "; ε spent %.4f (%.4f per round) at δ %.3g; against the coordinator, who knows the cohorts, the most any participant spent is ε %.4f",
                        p.epsilon, p.roundEpsilon, plan!.configuration.delta, p.participantEpsilon)
                }
                print(summary)
            }
            if orchestration.isSet || orchestration.targetAccuracy != nil {
                let o = OrchestrationSummary(
                    reports: reports, participants: simulation.data.clients.count,
                    targetAccuracy: orchestration.targetAccuracy)
                var line = String(
                    format: "selection %@: participation from %d to %d rounds, Jain's index %.3f",
                    configuration.selection.name, o.participation.min() ?? 0, o.participation.max() ?? 0,
                    o.participationJain)
                if let total = o.simulatedSeconds { line += String(format: "; %.1f simulated seconds", total) }
                if let target = orchestration.targetAccuracy {
                    if let round = o.roundsToAccuracy {
                        line += String(format: "; accuracy %.2f at round %d", target, round)
                        if let t = o.timeToAccuracy { line += String(format: ", %.1f simulated seconds", t) }
                    } else {
                        line += String(format: "; accuracy %.2f not reached", target)
                    }
                }
                print(line)
            }
            if let pruned, let pruning = configuration.pruning {
                print(
                    String(
                        format:
                            "pruned %@ after round %d (accuracy %.4f then), fine-tuned to the end: %@, %d nonzero parameters of the unpruned %d",
                        pruning.description, pruned.round, pruned.accuracy ?? Double.nan, pruned.model, pruned.nonzero,
                        pruned.parameters))
            }
            for file in exported ?? [] { print(file.line) }
        }
    }
}

extension SimulateCommand {
    /// The backend's name in the output: damgard-jurik-S for Paillier with s = S > 1.
    var secureSumName: String {
        secureSum == "paillier" && damgardJurik > 1 ? "damgard-jurik-\(damgardJurik)" : secureSum
    }

    /// --threshold-key T-of-L as (t, ℓ), checked.
    func thresholdHolders() throws -> (t: Int, l: Int)? {
        guard let thresholdKey else { return nil }
        let parts = thresholdKey.split(separator: "-of-", omittingEmptySubsequences: false)
        guard parts.count == 2, let t = Int(parts[0]), let l = Int(parts[1]), t >= 2, t <= l, 2 * t > l,
            l <= ThresholdPaillierPublicKey.maxHolders
        else {
            throw ValidationError(
                "--threshold-key must be T-of-L with 2 ≤ T ≤ L ≤ \(ThresholdPaillierPublicKey.maxHolders) and 2T > L (any two quorums share a holder), such as 2-of-3"
            )
        }
        return (t, l)
    }

    /// --dp-sgd as join.json's `dp_sgd` (its ledger set per participant), or nil without it.
    func dpSgdSettings() throws -> DPSGDSettings? {
        guard let dpSgd else { return nil }
        let parts = dpSgd.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let sigma = Double(parts[0]),
            let clip = parts.count == 2 ? Double(parts[1]) : 1
        else { throw ValidationError("--dp-sgd must be σ or σ:C, not \(dpSgd)") }
        let settings = DPSGDSettings(noiseMultiplier: sigma, clip: clip, delta: dpSgdDelta)
        do { try settings.validate() } catch { throw ValidationError("--dp-sgd: \(error)") }
        return settings
    }

    /// --trainer's program and arguments.
    var trainerCommand: [String] { (trainer ?? "").split(separator: " ").map(String.init) }

    /// How the network federation sums, for the text output.
    var sumDescription: String {
        guard secureSum == "paillier" else { return "secure aggregation" }
        guard let thresholdKey else { return "Paillier encryption (a separate key holder decrypts)" }
        return
            "Paillier encryption under a \(thresholdKey) threshold key (each key holder proves its partial decryption)"
    }

    /// Why this run cannot go over the network, or nil.
    func networkBlocker(_ c: FederatedConfiguration) -> String? {
        if orchestration.localTest { return "--local-test is simulated in-process" }
        if prune != nil { return "--prune is simulated in-process" }
        if adaptiveCompression != nil {
            return
                "--adaptive-compression is simulated in-process (a network coordinator chooses from the links its participants report: serve.json's adaptive_compression)"
        }
        if orchestration.isSet {
            return
                "devices, overcommitment, deadlines, the fairness floor and selection other than random are simulated in-process"
        }
        if secureSum == "plain" { return "the network federation sums securely (--secure-sum secagg or paillier)" }
        if dropout > 0 { return "--dropout is simulated in-process" }
        if damgardJurik > 1 { return "the service's Paillier sessions are s = 1 (--damgard-jurik runs in-process)" }
        if let why = NetworkSimulation.privacyBlocker(c, paillier: secureSum == "paillier") { return why }
        if c.stragglerFraction > 0 { return "stragglers run in-process" }
        guard case .digits = c.dataset else { return "the network federation trains on digits" }
        if algorithm == "fedbuff", algorithmOptions.concurrency != nil {
            return "--concurrency is simulated in-process (over the network every participant trains)"
        }
        if FedAvgFamilyMember(rawValue: algorithm) == nil && algorithm != "fedbuff" {
            return "the network federation runs the FedAvg family, not \(algorithm)"
        }
        return nil
    }

    func runOnNetwork(_ configuration: FederatedConfiguration) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "veil-simulate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var network: NetworkSimulation
        let dpsgd = try dpSgdSettings()
        if secureSum == "paillier" {
            let what =
                thresholdKey.map { "dealing a \(paillierBits)-bit \($0) threshold Paillier key" }
                ?? "generating a \(paillierBits)-bit Paillier key"
            FileHandle.standardError.write(Data("\(what)…\n".utf8))
        }
        do {
            network = try NetworkSimulation(
                configuration: configuration, directory: directory,
                paillierBits: secureSum == "paillier" ? paillierBits : nil, thresholdHolders: try thresholdHolders())
            if trainer != nil { try network.useTrainer(trainerCommand, for: network.participants.indices) }
            if let dpsgd { network.useDPSGD(dpsgd) }
        } catch {
            throw usageError("\(error)")
        }
        // The dashboard (Specs/wire.md §9.2) on loopback, with a token made for this run.
        let token = dashboard.port.map { _ in Hex.encode(SecureBytes.random(count: 24).unsafeExposedBytes()) }
        network.serve.metricsPort = dashboard.port
        network.failures = try dashboard.failures(participants: network.participants.count)
        network.rejoining = Set(network.failures.keys)
        var logger = Logger(label: "veil.simulate")
        logger.logLevel = .warning
        let bar = ProgressBar(total: configuration.rounds)
        let started = ContinuousClock.now
        // The federation's time ends with its last round, not with the dashboard's hold.
        let lastRound = LastRound(started)
        let summary = try await network.run(
            logger: logger, dashboardToken: token, holdAfterFederation: .seconds(dashboard.hold),
            stopOnSignals: dashboard.hold > 0,
            ready: { endpoints in
                guard let port = endpoints.metricsPort, let token else { return }
                FileHandle.standardError.write(Data("dashboard: http://127.0.0.1:\(port)/#token=\(token)\n".utf8))
            },
            progress: { round in
                lastRound.note()
                bar.update(round: round.number, accuracy: round.accuracy, loss: round.loss)
            })
        bar.finish()
        let elapsed = (dashboard.hold > 0 ? lastRound.instant : ContinuousClock.now) - started
        let total = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let rounds = summary.rounds
        let exported = try export.map { directory in
            let checkpoint: ModelCheckpoint
            do {
                checkpoint = try network.serve.latestModel()
            } catch { throw usageError("--export: \(error)") }
            return try exportModel(checkpoint, to: directory)
        }
        if output.json {
            var object = summaryObject(summary)
            if let exported { object["exported"] = exported.map(\.path).filter { !$0.isEmpty } }
            object["transport"] = "network"
            if let trainer { object["trainer"] = trainer }
            if let settings = dpsgd {
                let spent = summary.participants.compactMap(\.exampleEpsilon)
                object["dp_sgd"] = [
                    "noise_multiplier": settings.noiseMultiplier, "clip": settings.clip, "delta": settings.delta,
                    "max_example_epsilon": spent.max() ?? NSNull(),
                    "example_epsilon": Dictionary(
                        uniqueKeysWithValues: summary.participants.map { ($0.id, $0.exampleEpsilon ?? 0) }),
                    "steps": Dictionary(
                        uniqueKeysWithValues: summary.participants.map { ($0.id, $0.exampleSteps ?? 0) }),
                ]
            }
            object["algorithm"] = algorithm
            object["secure_sum"] = secureSum
            if let holders = try thresholdHolders() {
                object["threshold_key"] = ["threshold": holders.t, "holders": holders.l]
            }
            object["clients"] = network.participants.count
            object["final_loss"] = rounds.last?.loss ?? NSNull()
            object["seconds"] = total
            if let p = configuration.privacy {
                object["privacy"] = [
                    "mode": p.mode.rawValue, "epsilon_target": p.epsilon, "delta": p.delta,
                    "epsilon_spent": rounds.last?.epsilon ?? 0,
                ]
            }
            print(try jsonString(object))
            if summary.gaveUp { throw ExitCode.failure }
            return
        }
        print(
            "\(algorithm) on \(configuration.dataset) (\(network.participants.count) participants, \(configuration.partition)), "
                + "\(configuration.model) model, sum by \(sumDescription) over loopback gRPC with mutual TLS"
                + (trainer.map { "; trained by \($0)" } ?? "")
        )
        if let p = configuration.privacy {
            print(
                "DP-FedAvg, \(p.mode.rawValue) noise, target ε = \(p.epsilon) at δ = \(p.delta) over \(configuration.rounds) rounds, clip \(p.clip); everyone every round, so each participant's ε is the run's"
            )
        }
        if let asynchronous = network.serve.asynchronous {
            print(
                "FedBuff as the service runs it (Specs/wire.md §4.4): every participant trains on the model it was last offered; each round sums a buffer of \(network.serve.cohortSize) held updates, each weighted 1/√(1 + τ) by its own participant before masking (τ at most \(asynchronous.maxStaleness))"
            )
        }
        let private_ = configuration.privacy != nil
        let asynchronous = network.serve.asynchronous != nil
        print(
            "round  accuracy     loss  summed/selected   seconds    bytes in   bytes out"
                + (private_ ? "         ε" : "") + (asynchronous ? "  staleness (mean, max)" : ""))
        for r in rounds {
            print(
                String(
                    format: "%5d  %8.4f  %7.4f  %7d/%-8d %8.3f  %10d  %10d", r.number, r.accuracy ?? Double.nan,
                    r.loss ?? Double.nan,
                    r.survivors, r.cohort, r.seconds, r.bytesIn, r.bytesOut)
                    + (r.epsilon.map { String(format: "  %8.4g", $0) } ?? "")
                    + (r.staleness.isEmpty
                        ? ""
                        : String(
                            format: "  %9.2f %4d", Double(r.staleness.values.reduce(0, +)) / Double(r.staleness.count),
                            r.staleness.values.max() ?? 0)))
            for alert in r.budgetAlerts {
                print("round \(r.number): alert: \(alert) passed the alert fraction of its budget")
            }
            if let first = r.budgetRefusals.first {
                print("round \(r.number): \(r.budgetRefusals.count) not selected for their budget, e.g. \(first)")
            }
        }
        if let reason = summary.stopReason { print("stopped early: \(reason)") }
        let bytes = rounds.reduce(0) { $0 + $1.bytesIn + $1.bytesOut }
        print(
            String(
                format: "final: accuracy %.4f, loss %.4f after %d rounds (%d attempts) in %.2f s; %d protocol bytes",
                summary.finalAccuracy ?? Double.nan, rounds.last?.loss ?? Double.nan, summary.completedRounds,
                summary.attempts, total,
                bytes))
        if let settings = dpsgd,
            let worst = summary.participants.max(by: {
                ($0.exampleEpsilon ?? 0) < ($1.exampleEpsilon ?? 0)
            })
        {
            print(
                String(
                    format:
                        "DP-SGD (σ %.3g, per-example clip %.3g): example-level ε at most %.4g at δ = %.3g (%@: %d steps)",
                    settings.noiseMultiplier, settings.clip, worst.exampleEpsilon ?? 0, settings.delta, worst.id,
                    worst.exampleSteps ?? 0))
        }
        for file in exported ?? [] { print(file.line) }
        if summary.gaveUp { throw ExitCode.failure }
    }

    /// Writes DIR/checkpoint.json and the model in every format and precision (DIR is created);
    /// int8 is calibrated on the first 200 rows of the held-out test set (none for synthetic data).
    func exportModel(_ checkpoint: ModelCheckpoint, to directory: String) throws -> [(path: String, line: String)] {
        let folder = URL(fileURLWithPath: directory)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("checkpoint.json").path
            try checkpoint.write(to: URL(fileURLWithPath: path))
            var files = [(path, "exported \(path): the \(checkpoint.model) model after round \(checkpoint.round)")]
            // Synthetic data has no held-out split to calibrate on: no int8 file then.
            var calibration: Dataset?
            if dataset.hasPrefix("synthetic:") {
                files.append(("", "no model_int8.tflite: synthetic data has no held-out rows to calibrate int8 on"))
            } else {
                let test = try FederatedSimulation.testSet(of: try DatasetSource(parsing: dataset), seed: seed)
                calibration = test.subset(Array(0..<min(200, test.count)))
            }
            for format in ModelFormat.allCases {
                for precision in format.precisions where precision != .int8 || calibration != nil {
                    let suffix = precision == .float32 ? "" : precision == .float16 ? "_fp16" : "_int8"
                    let path = folder.appendingPathComponent("model\(suffix).\(format.rawValue)").path
                    let bytes = try writeModel(
                        checkpoint, format: format, precision: precision, calibration: calibration, to: path)
                    files.append(
                        (path, "exported \(path): \(format.rawValue) \(precision.rawValue), \(bytes) bytes"))
                }
            }
            return files
        } catch let error as ExitCode { throw error } catch { throw usageError("--export \(directory): \(error)") }
    }
}

/// A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise.
final class ProgressBar: @unchecked Sendable {
    // Updated from one task at a time (the simulation reports rounds in order).
    let total: Int
    let isTerminal = isatty(STDERR_FILENO) != 0
    var lastTenth = -1

    init(total: Int) { self.total = total }

    func update(_ report: RoundReport) { update(round: report.round, accuracy: report.accuracy, loss: report.loss) }

    func update(round: Int, accuracy: Double?, loss: Double?) {
        let width = 30
        let filled = width * min(round, total) / max(total, 1)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let metrics = accuracy.map { String(format: " accuracy %.4f loss %.4f", $0, loss ?? .nan) } ?? ""
        let line = "round \(round)/\(total) [\(bar)]\(metrics)"
        if isTerminal {
            FileHandle.standardError.write(Data("\r\(line)".utf8))
        } else if round * 10 / max(total, 1) != lastTenth {
            lastTenth = round * 10 / max(total, 1)
            FileHandle.standardError.write(Data("\(line)\n".utf8))
        }
    }

    func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension AccuracySpread {
    var json: [String: Double] {
        ["mean": mean, "worst_10": worst10, "best_10": best10, "std": standardDeviation]
    }
}

/// When the network federation's last round ended (its run time excludes `--dashboard-hold`).
final class LastRound: Sendable {
    private let value: Mutex<ContinuousClock.Instant>
    init(_ start: ContinuousClock.Instant) { value = Mutex(start) }
    func note() { value.withLock { $0 = .now } }
    var instant: ContinuousClock.Instant { value.withLock { $0 } }
}
