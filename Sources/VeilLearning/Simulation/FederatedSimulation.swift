import Foundation
import VeilCore

/// Where the data comes from.
public enum DatasetSource: Hashable, Sendable, CustomStringConvertible {
    /// The handwritten digits; a stratified 20% hold-out is the test set.
    case digits
    /// FedProx's Synthetic(α, β): devices are the participants.
    case synthetic(alpha: Double, beta: Double)
    /// A CSV file (features…, label); a stratified 20% hold-out is the test set.
    case csv(path: String)

    /// Parses `digits`, `synthetic:A,B`, `csv:PATH`.
    public init(parsing text: String) throws(DataError) {
        if text == "digits" {
            self = .digits
        } else if text.hasPrefix("synthetic:") {
            let values = text.dropFirst("synthetic:".count).split(separator: ",").compactMap { Double($0) }
            guard values.count == 2, values.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
                throw .invalidSpecification("synthetic:A,B needs two non-negative numbers, got \(text)")
            }
            self = .synthetic(alpha: values[0], beta: values[1])
        } else if text.hasPrefix("csv:"), text.count > 4 {
            self = .csv(path: String(text.dropFirst(4)))
        } else {
            throw .invalidSpecification("unknown dataset \"\(text)\": use digits, synthetic:A,B or csv:PATH")
        }
    }

    public var description: String {
        switch self {
        case .digits: "digits"
        case .synthetic(let a, let b): "synthetic:\(a),\(b)"
        case .csv(let path): "csv:\(path)"
        }
    }
}

/// Which algorithm, with its options.
public enum AlgorithmChoice: Hashable, Sendable {
    case fedAvg
    case fedAvgM(beta: Double)
    case fedProx(mu: Double)
    case fedAdagrad(learningRate: Double, tau: Double)
    case fedAdam(learningRate: Double, beta1: Double, beta2: Double, tau: Double)
    case fedYogi(learningRate: Double, beta1: Double, beta2: Double, tau: Double)
    case scaffold
    case fedNova
    case fedBuff(buffer: Int, concurrency: Int)
    case ifca(clusters: Int)
    case ditto(lambda: Double)
    case qFedAvg(q: Double)
    case robust(RobustAggregation.Rule)

    /// The command-line names.
    public static let names = [
        "fedavg", "fedavgm", "fedprox", "fedadagrad", "fedadam", "fedyogi", "scaffold", "fednova", "fedbuff", "ifca",
        "ditto",
        "qfedavg", "median", "trimmed-mean", "krum",
    ]

    public var name: String {
        switch self {
        case .fedAvg: "fedavg"
        case .fedAvgM: "fedavgm"
        case .fedProx: "fedprox"
        case .fedAdagrad: "fedadagrad"
        case .fedAdam: "fedadam"
        case .fedYogi: "fedyogi"
        case .scaffold: "scaffold"
        case .fedNova: "fednova"
        case .fedBuff: "fedbuff"
        case .ifca: "ifca"
        case .ditto: "ditto"
        case .qFedAvg: "qfedavg"
        case .robust(let rule): RobustAggregation(rule: rule).name
        }
    }

    /// Whether the algorithm needs each participant's update (and so cannot run on a secure sum).
    public var needsIndividualUpdates: Bool {
        if case .robust = self { return true }
        return false
    }
}

/// Everything a simulated federation needs.
public struct FederatedConfiguration: Sendable {
    public var dataset: DatasetSource = .digits
    public var partition: Partition = .dirichlet(alpha: 0.5)
    public var clients = 10
    /// The fraction of participants selected each round (at least one).
    public var fraction = 1.0
    public var rounds = 50
    public var localEpochs = 1
    public var batchSize = 32
    public var learningRate = 0.1
    public var momentum = 0.0
    public var weightDecay = 0.0
    public var model = "softmax"
    public var algorithm: AlgorithmChoice = .fedAvg
    public var seed: UInt64 = 0
    /// The fraction of selected participants that are stragglers each round: they run a
    /// uniformly random 1…E−1 local epochs (FedProx's systems heterogeneity).
    public var stragglerFraction = 0.0
    /// The payload ring and the clip of each payload entry.
    public var payloadBits = 64
    public var payloadClip = 1024.0
    /// Evaluate the global model every this many rounds (and always after the last).
    public var evaluateEvery = 1
    /// User-level differential privacy (DP-FedAvg); nil: none.
    public var privacy: PrivacyConfiguration?
    /// The participants' devices (`Specs/orchestration.md` §1); nil: no simulated time, and
    /// every participant online in every round.
    public var devices: DevicePopulation?
    /// How each round's cohort is picked from the participants online.
    public var selection: SelectionChoice = .random
    /// Invite ⌈overcommit × cohort⌉ participants and sum the first cohort-many contributions
    /// to arrive (needs devices when above 1).
    public var overcommit = 1.0
    /// Contributions arriving later than this many simulated seconds are not summed (needs devices).
    public var deadline: Double?
    /// The most rounds an online participant may wait between selections; nil: no floor.
    public var fairness: FairnessFloor?
    /// Keep 20% of each participant's rows as its local test set and report the spread of the
    /// global model's accuracy over the participants (q-FedAvg's fairness; Ditto always keeps them).
    public var localTest = false
    /// Magnitude pruning of the global model after round `pruneRound`, the mask kept for the
    /// rounds after it (federated fine-tuning; `Specs/export.md` §4).
    public var pruning: Pruning?
    /// The round after which to prune (default: half the rounds).
    public var pruneRound: Int?
    /// Random-subset compression: the fraction of payload coordinates sent each round, the
    /// same for every participant, drawn from a public per-round seed (`Specs/export.md` §5.2).
    public var subset: Double?
    /// Adaptive compression: each round's bits and subset chosen from the cohort's links and
    /// the deadline (`Specs/export.md` §5.3); needs devices and a deadline.
    public var adaptiveCompression: AdaptiveCompression?

    /// Whether each participant keeps 20% of its rows as a local test set.
    var keepsLocalTests: Bool {
        if case .ditto = algorithm { return true }
        return localTest
    }

    public init() {}
}

/// What a whole run produced: a report per round and the global model's final parameters.
public struct SimulationOutcome: Sendable {
    public let reports: [RoundReport]
    public let parameters: [Double]
}

/// One round's outcome.
public struct RoundReport: Sendable {
    public let round: Int
    /// Global test accuracy and loss (nil on rounds that were not evaluated).
    public let accuracy: Double?
    public let loss: Double?
    /// The global model's loss on all training rows.
    public let trainingLoss: Double?
    /// Ditto: the mean accuracy of the personal models on their participants' own test rows.
    public let personalizedAccuracy: Double?
    public let selected: Int
    public let survivors: Int
    public let seconds: Double
    /// What the round spent, in a private run.
    public let privacy: PrivacyRoundReport?
    /// The round's simulated duration, with devices (`Specs/orchestration.md` §1.3).
    public var simulatedSeconds: Double? = nil
    /// What the summed participants uploaded for the secure sum, by the backend's count.
    public var uploadBytes: Int = 0
    /// The ring the round's sum ran in, and the fraction of coordinates sent.
    public var payloadBits: Int = 64
    public var subsetFraction: Double = 1
    /// The participants invited to the round (indices from 0), in order.
    public var invited: [Int] = []
    /// With local test sets: the global model's accuracy on each participant's, summarised.
    public var participantAccuracy: AccuracySpread? = nil
}

/// How a model's accuracy spreads over the participants' own test sets (after q-FedAvg, Li et
/// al. ICLR 2020: the mean, the worst and best 10%, the standard deviation).
public struct AccuracySpread: Hashable, Sendable {
    public let mean: Double
    /// The mean of the lowest (highest) ⌈n/10⌉ accuracies.
    public let worst10: Double
    public let best10: Double
    /// The population standard deviation.
    public let standardDeviation: Double

    public init?(_ accuracies: [Double]) {
        guard !accuracies.isEmpty else { return nil }
        let sorted = accuracies.sorted()
        let n = Double(sorted.count)
        let tenth = (sorted.count + 9) / 10
        let mean = sorted.reduce(0, +) / n
        self.mean = mean
        worst10 = sorted.prefix(tenth).reduce(0, +) / Double(tenth)
        best10 = sorted.suffix(tenth).reduce(0, +) / Double(tenth)
        standardDeviation = (sorted.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
    }
}

/// What went wrong in a simulation.
public enum LearningError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidConfiguration(String)
    case robustAggregatorOnSecureSum(aggregator: String, backend: String)
    case privacyUnsupported(algorithm: String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let why): why
        case .robustAggregatorOnSecureSum(let aggregator, let backend):
            "the \(aggregator) aggregator needs every participant's own update, which the \(backend) secure sum hides by design; "
                + "robust aggregation runs only with --secure-sum plain"
        case .privacyUnsupported(let algorithm):
            "DP-FedAvg bounds the sensitivity of the FedAvg update; \(algorithm) sends other quantities "
                + "(control variates, normalisers, several models or stale updates) that it does not clip: "
                + "use fedavg, fedavgm, fedprox, fedadagrad, fedadam, fedyogi or ditto with --dp"
        }
    }
}

/// Runs a federation in one process: participants train locally, their payloads go through
/// the fixed-point codec into the given ``SecureSum``, and the algorithm's server rule uses
/// only the decoded sum.
public struct FederatedSimulation {
    public let configuration: FederatedConfiguration
    public let data: FederatedData
    public let model: any Model

    /// The participant-free test set of a digits or CSV run with this seed: the same 20%
    /// stratified split the simulation evaluates on (`veil model evaluate` uses it).
    public static func testSet(of source: DatasetSource, seed: UInt64) throws -> Dataset {
        var generator = Xoshiro256(seed: seed, purpose: .dataSplit)
        return try heldOut(source, generator: &generator).test
    }

    private static func heldOut(_ source: DatasetSource, generator: inout Xoshiro256) throws -> (
        train: Dataset, test: Dataset
    ) {
        let all: Dataset
        switch source {
        case .csv(let path): all = try CSVLoader.load(path: path)
        case .digits: all = try Digits.load()
        case .synthetic: throw DataError.invalidSpecification("synthetic data has no held-out test set of its own")
        }
        return all.stratifiedSplit(testFraction: 0.2, using: &generator)
    }

    /// Round `round`'s coordinate subset (`Specs/export.md` §5.2).
    func coordinateSubset(length: Int, fraction: Double, round: Int) throws -> CoordinateSubset {
        try CoordinateSubset(
            length: length, size: CoordinateSubset.size(length: length, fraction: fraction),
            seed: CoordinateSubset.seed(runSeed: configuration.seed, round: round))
    }

    /// The round after which the global model is pruned, if it is.
    public var pruneRound: Int? {
        configuration.pruning.map { _ in configuration.pruneRound ?? max(1, configuration.rounds / 2) }
    }

    /// After the pruning round's server step, makes the mask from the global model's
    /// magnitudes; from then on zeroes what it prunes after every server step.
    func prune(_ algorithm: inout any FederatedAlgorithm, round: Int, mask: inout [Bool]?) {
        guard let pruning = configuration.pruning, let at = pruneRound, round >= at else { return }
        if mask == nil {
            // init checked that the model suits the pruning (structured needs an mlp).
            mask = try? pruning.mask(model, parameters: algorithm.parameters)
        }
        if let mask { algorithm.prune(keeping: mask) }
    }

    /// Loads or generates the data and partitions it.
    public init(configuration: FederatedConfiguration) throws {
        try Self.validate(configuration)
        self.configuration = configuration
        var generator = Xoshiro256(seed: configuration.seed, purpose: .dataSplit)
        switch configuration.dataset {
        case .digits, .csv:
            let (train, test) = try Self.heldOut(configuration.dataset, generator: &generator)
            let parts = try configuration.partition.split(train, clients: configuration.clients, using: &generator)
            if configuration.keepsLocalTests {
                // Personal models (Ditto), and the spread of the global model's accuracy
                // (--local-test), are judged on each participant's own distribution: keep 20% of
                // each participant's rows as its local test set.
                let local = parts.map { $0.stratifiedSplit(testFraction: 0.2, using: &generator) }
                data = FederatedData(clients: local.map(\.train), test: test, clientTests: local.map(\.test))
            } else {
                data = FederatedData(clients: parts, test: test)
            }
        case .synthetic(let alpha, let beta):
            data = try SyntheticData.generate(
                alpha: alpha, beta: beta, devices: configuration.clients, seed: configuration.seed)
        }
        model = try makeModel(configuration.model, featureCount: data.featureCount, classCount: data.classCount)
    }

    static func validate(_ c: FederatedConfiguration) throws(LearningError) {
        func require(_ ok: Bool, _ why: String) throws(LearningError) { if !ok { throw .invalidConfiguration(why) } }
        try require(c.clients >= 1, "--clients must be at least 1")
        try require(c.fraction > 0 && c.fraction <= 1, "--fraction must be in (0, 1]")
        try require(c.rounds >= 1, "--rounds must be at least 1")
        try require(c.localEpochs >= 1, "--local-epochs must be at least 1")
        try require(c.batchSize >= 1, "--batch must be at least 1")
        try require(c.learningRate > 0 && c.learningRate.isFinite, "--lr must be positive")
        try require((0..<1).contains(c.stragglerFraction), "--stragglers must be in [0, 1)")
        try require((8...64).contains(c.payloadBits), "payload bits must be in 8...64")
        try require(c.payloadClip > 0, "the payload clip must be positive")
        if c.privacy != nil, !supportsPrivacy(c.algorithm) {
            throw .privacyUnsupported(algorithm: c.algorithm.name)
        }
        try require(c.overcommit >= 1 && c.overcommit <= 10, "--overcommit must be in [1, 10]")
        try require(c.deadline.map { $0 > 0 && $0.isFinite } ?? true, "--deadline must be a positive number of seconds")
        try require(
            c.devices != nil || (c.overcommit == 1 && c.deadline == nil),
            "--overcommit and --deadline act on simulated arrival times: give --devices")
        if case .oort(let parameters) = c.selection { try parameters.validate() }
        if c.adaptiveCompression != nil {
            try require(
                c.devices != nil && c.deadline != nil,
                "adaptive compression chooses from the cohort's links and the deadline: give --devices and --deadline")
            try require(c.subset == nil, "adaptive compression chooses the subset itself: not with --subset")
            guard case .some = c.algorithm.fedAvgFamily(initial: [0]) else {
                throw .invalidConfiguration("adaptive compression's subsets are for the FedAvg family")
            }
            try require(
                c.privacy == nil,
                "adaptive compression needs --devices, which --dp's sampling accountant does not allow (a network coordinator adapts subsets under DP: serve.json's adaptive_compression)"
            )
        }
        if let r = c.subset {
            try require(r > 0 && r <= 1, "--subset must be in (0, 1]")
            guard case .some = c.algorithm.fedAvgFamily(initial: [0]) else {
                throw .invalidConfiguration(
                    "--subset rescales a FedAvg-family payload (weighted update, then weight): not \(c.algorithm.name)")
            }
        }
        if c.pruning != nil {
            if case .fedBuff = c.algorithm {
                throw .invalidConfiguration("--prune acts on the synchronous rounds: fedbuff keeps its own clock")
            }
            try require(c.privacy == nil, "--prune is for rounds without --dp")
            try require(
                c.pruneRound.map { (1...c.rounds).contains($0) } ?? true, "--prune-round must be in 1…--rounds")
            if c.pruning?.kind == .structured {
                try require(c.model.hasPrefix("mlp:"), "structured pruning removes hidden units: use an mlp model")
            }
        }
        if c.localTest, case .fedBuff = c.algorithm {
            throw .invalidConfiguration(
                "--local-test reports the synchronous rounds' spread of accuracy: fedbuff keeps its own clock")
        }
        if c.localTest, case .synthetic = c.dataset {
            throw .invalidConfiguration(
                "--local-test splits each participant's rows of digits or a CSV file; synthetic data is generated per device without a split"
            )
        }
        let orchestrated = c.devices != nil || c.selection != .random || c.fairness != nil
        if orchestrated, case .fedBuff = c.algorithm {
            throw .invalidConfiguration(
                "fedbuff schedules participants by its own clock: --devices, --selection and --max-gap are for the synchronous algorithms"
            )
        }
        if orchestrated, c.privacy != nil {
            // The accountant's amplification by sampling assumes every participant is drawn
            // independently with the same probability; availability, utility and a fairness
            // floor all break that assumption, and the ε printed would be wrong.
            throw .invalidConfiguration(
                "--dp's accountant assumes uniform Poisson sampling of participants: --devices, --selection oort and --max-gap change who is sampled, so they cannot run with --dp"
            )
        }
    }

    /// The number of participants selected per round.
    public var cohortSize: Int { max(1, Int((configuration.fraction * Double(data.clients.count)).rounded())) }

    /// Runs every round, calling `progress` after each.
    /// - Throws: ``LearningError`` for a robust aggregator on a secure backend; the backend's
    ///   error when a round cannot produce a sum.
    public func run(secureSum: inout some SecureSum, progress: (RoundReport) -> Void = { _ in }) throws -> [RoundReport]
    {
        try train(secureSum: &secureSum, progress: progress).reports
    }

    /// Runs every round like ``run(secureSum:progress:)`` and also returns the global model's
    /// final parameters (what `veil simulate --export` writes out).
    public func train(secureSum: inout some SecureSum, progress: (RoundReport) -> Void = { _ in }) throws
        -> SimulationOutcome
    {
        let c = configuration
        if c.algorithm.needsIndividualUpdates && secureSum.hidesIndividualContributions {
            throw LearningError.robustAggregatorOnSecureSum(aggregator: c.algorithm.name, backend: secureSum.name)
        }
        if let plan = try privacyPlan() {
            return try runPrivately(plan: plan, secureSum: &secureSum, progress: progress)
        }
        var initGenerator = Xoshiro256(seed: c.seed, purpose: .initialParameters)
        let initial = model.initialParameters(using: &initGenerator)
        let weightScale = Double(data.clients.map(\.count).max() ?? 1)
        var algorithm = makeAlgorithm(initial: initial, generator: &initGenerator)
        var clientStates = [[String: [Double]]](repeating: [:], count: data.clients.count)
        var selection = Xoshiro256(seed: c.seed, purpose: .cohortSelection)
        let pooled = data.pooledTraining
        let personalTests = personalTestSets()
        var reports: [RoundReport] = []

        if case .fedBuff(let buffer, let concurrency) = c.algorithm {
            return try runFedBuff(
                secureSum: &secureSum, algorithm: &algorithm, buffer: buffer, concurrency: concurrency,
                weightScale: weightScale,
                states: &clientStates, pooled: pooled, progress: progress)
        }

        var selector = makeSelector()
        var pruneMask: [Bool]?
        // ⌈overcommit · K⌉, with binary64's error in the product forgiven (1.1 · 50 is 55.000…01).
        let invitations = Int((Double(cohortSize) * c.overcommit - 1e-9).rounded(.up))
        var lastSelected = [Int](repeating: 0, count: data.clients.count)
        for round in 1...c.rounds {
            let started = ContinuousClock.now
            let online = onlineParticipants(round: round)
            let invited = min(online.count, invitations)
            let forced = c.fairness?.due(online, lastSelected: { lastSelected[$0] }, round: round, count: invited) ?? []
            let rest = forced.isEmpty ? online : online.filter { !forced.contains($0) }
            let cohort =
                (forced + selector.select(rest, count: invited - forced.count, round: round, generator: &selection))
                .sorted()
            for index in cohort { lastSelected[index] = round }
            let broadcast = algorithm.broadcast()
            var trained: [(index: Int, payload: [Double], state: [String: [Double]], epochs: Int)] = []
            for index in cohort {
                var epochs = c.localEpochs
                let straggler = c.stragglerFraction > 0 && selection.unit() < c.stragglerFraction
                if straggler {
                    if algorithm.dropsStragglers { continue }
                    epochs = c.localEpochs > 1 ? 1 + selection.below(c.localEpochs - 1) : 1
                }
                var context = ClientContext(
                    id: ParticipantID(UInt32(index + 1)), data: data.clients[index], model: model, epochs: epochs,
                    batchSize: c.batchSize,
                    optimizer: SGD(learningRate: c.learningRate, momentum: c.momentum, weightDecay: c.weightDecay),
                    weightScale: weightScale,
                    generator: Xoshiro256(seed: c.seed, purpose: .training, round: round, participant: index + 1),
                    state: clientStates[index])
                let payload = algorithm.clientUpdate(broadcast, &context)
                trained.append((index, payload, context.state, epochs))
            }
            // The round's compression, then who arrives in time (everyone, without devices), and
            // when the round ends.
            let (ring, sent) = try compression(
                for: trained.map { ($0.index, $0.epochs) }, broadcast: broadcast, cohort: cohort.count,
                payloadLength: algorithm.payloadLength, round: round, secureSum: secureSum)
            let timing = arrivals(
                of: trained.map { ($0.index, $0.epochs, sent?.indices.count ?? $0.payload.count) },
                broadcast: broadcast, cohort: cohort.count, bitWidth: ring, secureSum: secureSum)
            var payloads: [ParticipantID: [Double]] = [:]
            for t in trained where timing.summed.contains(t.index) {
                payloads[ParticipantID(UInt32(t.index + 1))] = sent.map { $0.compress(t.payload) } ?? t.payload
                // A participant cut off by time keeps nothing of the round, as if it had not
                // finished; one the backend drops later has finished, and keeps its own state.
                clientStates[t.index] = t.state
            }
            // The loss each summed participant reveals: the broadcast model's (for IFCA, the
            // first cluster's) mean loss on its own examples, before its training.
            var losses: [Int: Double] = [:]
            if case .oort = c.selection {
                for index in timing.summed {
                    losses[index] = model.evaluate(broadcast[0], on: data.clients[index]).loss
                }
            }
            var survivors: Set<ParticipantID> = []
            var uploadBytes = 0
            if !payloads.isEmpty {
                do {
                    let (sum, _, summed) = try aggregate(
                        payloads, round: round, bits: ring, subset: sent, secureSum: &secureSum,
                        algorithm: &algorithm)
                    if let sum {
                        algorithm.serverUpdate(sum: sent.map { $0.expand(sum) } ?? sum, contributors: summed.count)
                    }
                    prune(&algorithm, round: round, mask: &pruneMask)
                    uploadBytes =
                        summed.count
                        * secureSum.uploadCost(
                            elements: payloads.first?.value.count ?? 0, bitWidth: ring, cohort: cohort.count
                        ).bytes
                    survivors = summed
                } catch is SecureSumError where c.devices != nil {
                    // With devices, availability and deadlines can leave a round fewer
                    // contributions than the backend needs: the coordinator abandons that round
                    // (`Specs/orchestration.md` §1.3) and the federation goes on, as a real one would.
                }
            }
            if case .oort = c.selection, !cohort.isEmpty {
                selector.observe(
                    round: round,
                    cohort.map { index in
                        let completed = survivors.contains(ParticipantID(UInt32(index + 1)))
                        return ParticipationObservation(
                            participant: index, completed: completed,
                            seconds: completed ? timing.seconds[index] ?? 0 : timing.end,
                            loss: completed ? losses[index] : nil,
                            examples: completed ? data.clients[index].count : 0)
                    })
            }
            var report = evaluate(
                algorithm, round: round, selected: cohort.count, survivors: survivors.count, pooled: pooled,
                personal: personalTests,
                states: clientStates, started: started)
            report.simulatedSeconds = c.devices == nil ? nil : timing.end
            report.invited = cohort
            report.uploadBytes = uploadBytes
            report.payloadBits = ring.bits
            report.subsetFraction = sent?.fraction ?? 1
            reports.append(report)
            progress(report)
        }
        return SimulationOutcome(reports: reports, parameters: algorithm.parameters)
    }

    func makeSelector() -> any CohortSelector {
        switch configuration.selection {
        case .random: RandomSelector()
        case .oort(let parameters): OortSelector(parameters: parameters)
        }
    }

    /// The participants online in `round`: all without devices; else each participant k
    /// independently with its device's availability, from the stream (availability, round, k).
    func onlineParticipants(round: Int) -> [Int] {
        guard let devices = configuration.devices else { return Array(data.clients.indices) }
        return data.clients.indices.filter { index in
            var coin = Xoshiro256(
                seed: configuration.seed, purpose: .availability, round: round, participant: index + 1)
            return coin.unit() < devices.device(ofParticipantAt: index).availability
        }
    }

    /// A round's simulated timing: each trained participant's duration (download, training,
    /// upload, protocol round trips — `Specs/orchestration.md` §1.3), which of them are summed
    /// (the first `cohortSize` to arrive, none after the deadline), and when the round ends.
    func arrivals(
        of trained: [(index: Int, epochs: Int, payloadCount: Int)], broadcast: [[Double]], cohort: Int,
        bitWidth: BitWidth, secureSum: some SecureSum
    ) -> (summed: Set<Int>, seconds: [Int: Double], end: Double) {
        guard let devices = configuration.devices else { return (Set(trained.map(\.index)), [:], 0) }
        let c = configuration
        // Nobody invited, or every one of them dropped as a straggler: the round lasts its
        // deadline, or nothing without one.
        guard !trained.isEmpty else { return ([], [:], c.deadline ?? 0) }
        let downloadBytes = broadcast.reduce(0) { $0 + $1.count } * MemoryLayout<Double>.size
        var seconds: [Int: Double] = [:]
        for t in trained {
            let device = devices.device(ofParticipantAt: t.index)
            let upload = secureSum.uploadCost(elements: t.payloadCount, bitWidth: bitWidth, cohort: cohort)
            let examples = Double(data.clients[t.index].count * t.epochs)
            seconds[t.index] =
                Double(downloadBytes * 8) / device.downlinkBitsPerSecond + examples / device.examplesPerSecond
                + Double(upload.bytes * 8) / device.uplinkBitsPerSecond
                + Double(upload.exchanges) * device.roundTripSeconds
        }
        let inTime = seconds.filter { c.deadline == nil || $0.value <= c.deadline! }
            .sorted { ($0.value, $0.key) < ($1.value, $1.key) }
        let summed = inTime.prefix(cohortSize)
        let end: Double =
            if summed.count == cohortSize {
                summed.last!.value
            } else if let deadline = c.deadline, !seconds.isEmpty,
                inTime.count < seconds.count
            {
                deadline
            } else { seconds.values.max() ?? 0 }
        return (Set(summed.map(\.key)), seconds, end)
    }

    /// Encodes payloads, sums them through the backend, decodes the sum. Robust aggregators
    /// (plain backend only) get the decoded individual payloads instead.
    private func aggregate(
        _ payloads: [ParticipantID: [Double]], round: Int, bits: BitWidth, subset: CoordinateSubset? = nil,
        secureSum: inout some SecureSum, algorithm: inout any FederatedAlgorithm
    ) throws -> (sum: [Double]?, contributors: Int, survivors: Set<ParticipantID>) {
        // A subset's values are scaled up by (d − 1)/k, and so is the clip that must bound them.
        let clip = subset.map { configuration.payloadClip * $0.scale }
        let codec = try payloadCodec(addends: payloads.count, clip: clip, bits: bits)
        var contributions: [ParticipantID: ModularVector] = [:]
        for (id, payload) in payloads {
            var rounding = Xoshiro256(
                seed: configuration.seed, purpose: .rounding, round: round, participant: Int(id.rawValue))
            contributions[id] = try codec.encode(payload, using: &rounding)
        }
        if case .robust(let rule) = configuration.algorithm, var robust = algorithm as? FedAvgFamily {
            // Plaintext only (checked in run): the server sees each update.
            let updates = try contributions.sorted { $0.key < $1.key }.map { _, v -> [Double] in
                let decoded = try codec.decode(v)
                // FedAvg payloads end with their weight, so they are never empty.
                let weight = max(decoded.last!, .leastNormalMagnitude)
                return decoded.dropLast().map { $0 / weight }
            }
            let combined = RobustAggregation(rule: rule).combine(updates)
            robust.serverUpdate(sum: combined + [1], contributors: updates.count)
            algorithm = robust
            return (nil, updates.count, Set(contributions.keys))
        }
        let result = try secureSum.sum(contributions, round: round)
        return (try codec.decode(result.sum), result.survivors.count, Set(result.survivors))
    }

    /// The fixed-point codec for `addends` payloads: the payload ring, the clip, and the most
    /// fractional bits (at most 32) for which the sum of `addends` clipped values cannot wrap.
    public func payloadCodec(addends: Int, clip: Double? = nil, bits: BitWidth? = nil) throws -> FixedPointCodec {
        let clip = clip ?? configuration.payloadClip
        do {
            let bits = try bits ?? BitWidth(configuration.payloadBits)
            return try FixedPointCodec.finest(clip: clip, bitWidth: bits, maxAddends: addends)
        } catch {
            throw LearningError.invalidConfiguration(
                "no fixed-point precision lets \(addends) payloads clipped to ±\(clip) sum in Z_2^\(bits?.bits ?? configuration.payloadBits): \(error)"
            )
        }
    }

    /// Round `round`'s ring and coordinate subset: the configured ones, or with adaptive
    /// compression the least compressed candidate (§5.3) under which as many of the trained
    /// members arrive by the deadline as the round sums — the most compressed if none does.
    func compression(
        for trained: [(index: Int, epochs: Int)], broadcast: [[Double]], cohort: Int, payloadLength: Int, round: Int,
        secureSum: some SecureSum
    ) throws -> (ring: BitWidth, subset: CoordinateSubset?) {
        let c = configuration
        guard let adaptive = c.adaptiveCompression else {
            return (
                try BitWidth(c.payloadBits),
                try c.subset.map { try coordinateSubset(length: payloadLength, fraction: $0, round: round) }
            )
        }
        let wanted = min(cohortSize, trained.count)
        var choice: (ring: BitWidth, subset: CoordinateSubset?)?
        for (bits, fraction) in adaptive.candidates {
            let ring = try AdaptiveCompression.ring(bits: bits, cohort: cohort)
            let subset =
                fraction < 1 ? try coordinateSubset(length: payloadLength, fraction: fraction, round: round) : nil
            // A ring too narrow for the (scaled) clip is skipped, as the coordinator does.
            let clip = c.payloadClip * (subset?.scale ?? 1)
            guard (try? payloadCodec(addends: max(cohort, 1), clip: clip, bits: ring)) != nil else { continue }
            choice = (ring, subset)
            let timing = arrivals(
                of: trained.map { ($0.index, $0.epochs, subset?.indices.count ?? payloadLength) }, broadcast: broadcast,
                cohort: cohort, bitWidth: ring, secureSum: secureSum)
            if timing.summed.count >= wanted { break }
        }
        guard let choice else {
            throw LearningError.invalidConfiguration(
                "adaptive compression: no ring of the ladder holds \(cohort) payloads clipped to \(c.payloadClip): raise the floor's bits or lower the clip"
            )
        }
        return choice
    }

    func makeAlgorithm(initial: [Double], generator: inout Xoshiro256) -> any FederatedAlgorithm {
        switch configuration.algorithm {
        case .fedAvg, .fedAvgM, .fedProx, .fedAdagrad, .fedAdam, .fedYogi:
            // Built where the service builds them; non-nil for exactly these cases.
            configuration.algorithm.fedAvgFamily(initial: initial)!
        case .scaffold: Scaffold(initial: initial, population: data.clients.count)
        case .fedNova: FedNova(initial: initial)
        case .fedBuff: FedAvgFamily(name: "fedbuff", initial: initial)
        case .ifca(let k):
            // Distinct random starting points, so that the clusters can separate.
            IFCA(
                initialModels: [initial]
                    + (1..<max(k, 1)).map { _ in initial.map { $0 + 0.01 * generator.standardNormal() } })
        case .ditto(let lambda): FedAvgFamily(name: "ditto", initial: initial, dittoLambda: lambda)
        case .qFedAvg(let q): QFedAvg(initial: initial, q: q)
        case .robust(let rule): FedAvgFamily(name: RobustAggregation(rule: rule).name, initial: initial)
        }
    }

    /// The per-participant test rows (Ditto's personal evaluation, --local-test), or none.
    func personalTestSets() -> [Dataset] {
        configuration.keepsLocalTests ? data.clientTests : []
    }

    func evaluate(
        _ algorithm: any FederatedAlgorithm, round: Int, selected: Int, survivors: Int, pooled: Dataset,
        personal: [Dataset],
        states: [[String: [Double]]], started: ContinuousClock.Instant, privacy: PrivacyRoundReport? = nil
    ) -> RoundReport {
        let due = round % configuration.evaluateEvery == 0 || round == configuration.rounds
        let evaluation = due ? algorithm.evaluate(model: model, on: data.test) : nil
        let training = due ? model.evaluate(algorithm.parameters, on: pooled).loss : nil
        var personalized: Double?
        if due, case .ditto = configuration.algorithm {
            let tests = personal.isEmpty ? [data.test] : personal
            let accuracies = states.indices.compactMap { i -> Double? in
                guard let v = states[i]["ditto"] else { return nil }
                return model.evaluate(v, on: tests[min(i, tests.count - 1)]).accuracy
            }
            personalized = accuracies.isEmpty ? nil : accuracies.reduce(0, +) / Double(accuracies.count)
        }
        // The global model on every participant's own test rows (a participant with too few
        // rows to keep any is left out).
        let spread =
            due && configuration.localTest
            ? AccuracySpread(
                personal.filter { $0.count > 0 }.map { algorithm.evaluate(model: model, on: $0).accuracy }) : nil
        let elapsed = ContinuousClock.now - started
        return RoundReport(
            round: round, accuracy: evaluation?.accuracy, loss: evaluation?.loss, trainingLoss: training,
            personalizedAccuracy: personalized, selected: selected, survivors: survivors,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18,
            privacy: privacy, participantAccuracy: spread)
    }

    /// FedBuff (Nguyen et al., AISTATS 2022): `concurrency` participants train at once, each
    /// from the model version current when it started, finishing after an exponential delay;
    /// every `buffer` finished updates form one secure sum, each weighted by p̃·s(τ) with
    /// staleness τ and s(τ) = 1/√(1 + τ). A report is one server step.
    private func runFedBuff(
        secureSum: inout some SecureSum, algorithm: inout any FederatedAlgorithm, buffer: Int, concurrency: Int,
        weightScale: Double,
        states: inout [[String: [Double]]], pooled: Dataset, progress: (RoundReport) -> Void
    ) throws -> SimulationOutcome {
        let c = configuration
        let n = data.clients.count
        let concurrency = min(max(concurrency, 1), n)
        let buffer = min(max(buffer, 1), concurrency)
        var clock = Xoshiro256(seed: c.seed, purpose: .asyncClock)
        var version = 0
        var inFlight: [(finish: Double, client: Int, version: Int, broadcast: [[Double]])] = []
        var idle = Array(0..<n)
        clock.shuffle(&idle)
        var now = 0.0
        func start() {
            let client = idle.removeFirst()
            inFlight.append((now - log(max(clock.unit(), 1e-12)), client, version, algorithm.broadcast()))
        }
        for _ in 0..<concurrency { start() }
        var buffered: [ParticipantID: [Double]] = [:]
        var reports: [RoundReport] = []
        var started = ContinuousClock.now
        while reports.count < c.rounds {
            inFlight.sort { $0.finish < $1.finish }
            let job = inFlight.removeFirst()
            now = job.finish
            var context = ClientContext(
                id: ParticipantID(UInt32(job.client + 1)), data: data.clients[job.client], model: model,
                epochs: c.localEpochs,
                batchSize: c.batchSize,
                optimizer: SGD(learningRate: c.learningRate, momentum: c.momentum, weightDecay: c.weightDecay),
                weightScale: weightScale,
                generator: Xoshiro256(
                    seed: c.seed, purpose: .asyncTraining, round: job.version, participant: job.client + 1),
                state: states[job.client])
            let payload = algorithm.clientUpdate(job.broadcast, &context)
            states[job.client] = context.state
            let staleness = Double(version - job.version)
            let s = 1 / (1 + staleness).squareRoot()
            buffered[context.id] = payload.map { $0 * s }
            if buffered.count == buffer {
                let (sum, count, _) = try aggregate(
                    buffered, round: reports.count + 1, bits: try BitWidth(c.payloadBits), secureSum: &secureSum,
                    algorithm: &algorithm)
                if let sum { algorithm.serverUpdate(sum: sum, contributors: count) }
                version += 1
                // In participant order: a dictionary's order changes from one process to the next
                // (Swift seeds its hashing per process), and with it who trains next.
                idle += buffered.keys.sorted().map { Int($0.rawValue) - 1 }
                buffered = [:]
                let report = evaluate(
                    algorithm, round: reports.count + 1, selected: buffer, survivors: count, pooled: pooled,
                    personal: [],
                    states: states, started: started)
                reports.append(report)
                progress(report)
                started = ContinuousClock.now
            }
            // A participant whose update waits in the buffer does not start again until it is summed.
            if !idle.isEmpty { start() }
        }
        return SimulationOutcome(reports: reports, parameters: algorithm.parameters)
    }
}
