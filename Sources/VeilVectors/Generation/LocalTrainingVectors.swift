import VeilCore
import VeilLearning

extension ProjectVectors {
    /// One training case: the model, its shape, the plan, the rows and how the starting
    /// parameters are drawn.
    private struct TrainingCase {
        var comment: String
        var model: String
        var features: Int
        var classes: Int
        var rows: Int
        var algorithm: String
        var epochs: Int
        var batch: Int
        var learningRate: Double
        var momentum = 0.0
        var weightDecay = 0.0
        var mu = 0.0
        /// "zero", "uniform" (±0.5) or "he" (the MLP's own He initialisation).
        var start = "uniform"
        /// Features are uniform in ±scale.
        var scale = 1.0
    }

    static func localTraining() throws -> VectorFile<LocalTrainingRunner.Group> {
        typealias Runner = LocalTrainingRunner
        let hex = Runner.hexBits
        var tests: [Runner.Test] = []
        let cases: [TrainingCase] = [
            .init(
                comment: "softmax from zero, FedAvg, 1 epoch, batch 5 divides the 20 rows", model: "softmax",
                features: 4, classes: 3, rows: 20, algorithm: "fedavg", epochs: 1, batch: 5, learningRate: 0.1,
                start: "zero"),
            .init(
                comment: "softmax, FedAvg, momentum 0.9 and weight decay 0.001, 3 epochs, batch 4 of 23 rows (last 3)",
                model: "softmax", features: 5, classes: 4, rows: 23, algorithm: "fedavg", epochs: 3, batch: 4,
                learningRate: 0.1, momentum: 0.9, weightDecay: 0.001),
            .init(
                comment: "softmax, FedProx mu 0.1, batch 32 larger than the 17 rows, 2 epochs", model: "softmax",
                features: 6, classes: 3, rows: 17, algorithm: "fedprox", epochs: 2, batch: 32, learningRate: 0.05,
                mu: 0.1),
            .init(
                comment: "softmax, features of up to 300: exp's arguments reach its subnormal and zero results",
                model: "softmax", features: 3, classes: 4, rows: 12, algorithm: "fedavg", epochs: 2, batch: 3,
                learningRate: 0.001, scale: 300),
            .init(
                comment: "softmax, FedProx mu 1 with momentum 0.5 and weight decay 0.01, 5 epochs, batch 3 of 10 rows",
                model: "softmax", features: 2, classes: 2, rows: 10, algorithm: "fedprox", epochs: 5, batch: 3,
                learningRate: 0.2, momentum: 0.5, weightDecay: 0.01, mu: 1),
            .init(
                comment: "softmax from zero, 10 classes, 20 features, 64 rows, batch 32, FedAvgM's client rule",
                model: "softmax", features: 20, classes: 10, rows: 64, algorithm: "fedavgm", epochs: 1, batch: 32,
                learningRate: 0.1, start: "zero"),
            .init(
                comment: "mlp:8, FedAvg, momentum 0.5, 2 epochs, batch 8 of 30 rows (last 6)", model: "mlp:8",
                features: 4, classes: 3, rows: 30, algorithm: "fedavg", epochs: 2, batch: 8, learningRate: 0.1,
                momentum: 0.5, start: "he"),
            .init(
                comment: "mlp:6,4, FedProx mu 0.01, momentum 0.9, weight decay 0.0001, 3 epochs, batch 6 of 25 rows",
                model: "mlp:6,4", features: 5, classes: 4, rows: 25, algorithm: "fedprox", epochs: 3, batch: 6,
                learningRate: 0.05, momentum: 0.9, weightDecay: 0.0001, mu: 0.01, start: "he"),
            .init(
                comment: "mlp:6,4, FedAdam's client rule (local SGD), batch 1, 1 epoch of 9 rows, 2 classes",
                model: "mlp:6,4", features: 3, classes: 2, rows: 9, algorithm: "fedadam", epochs: 1, batch: 1,
                learningRate: 0.2, start: "he"),
            .init(
                comment:
                    "mlp:8, FedYogi's client rule, weight decay 0.01 without momentum, 4 epochs, batch 7 of 21 rows",
                model: "mlp:8", features: 6, classes: 5, rows: 21, algorithm: "fedyogi", epochs: 4, batch: 7,
                learningRate: 0.1, weightDecay: 0.01, start: "he"),
            .init(
                comment: "mlp:16,8, FedAdagrad's client rule, momentum 0.9, 2 epochs, batch 10 of 45 rows (last 5)",
                model: "mlp:16,8", features: 8, classes: 4, rows: 45, algorithm: "fedadagrad", epochs: 2, batch: 10,
                learningRate: 0.05, momentum: 0.9, start: "he"),
            .init(
                comment: "mlp:5, FedProx mu 0.5, uniform start (dead ReLUs), 2 epochs, batch 4 of 14 rows",
                model: "mlp:5", features: 3, classes: 3, rows: 14, algorithm: "fedprox", epochs: 2, batch: 4,
                learningRate: 0.3, mu: 0.5, scale: 2),
        ]
        for (index, c) in cases.enumerated() {
            var inputs = Xoshiro256(seed: 0x7472_6169_6e65_72, stream: UInt64(index + 1))
            let model = try makeModel(c.model, featureCount: c.features, classCount: c.classes)
            let features = (0..<(c.rows * c.features)).map { _ in (2 * inputs.unit() - 1) * c.scale }
            let labels = (0..<c.rows).map { _ in inputs.below(c.classes) }
            let parameters: [Double] =
                switch c.start {
                case "zero": [Double](repeating: 0, count: model.parameterCount)
                case "he": model.initialParameters(using: &inputs)
                default: (0..<model.parameterCount).map { _ in inputs.unit() - 0.5 }
                }
            let data = try Dataset(features: features, labels: labels, featureCount: c.features, classCount: c.classes)
            let participant = "participant-\(index + 1)@example.org"
            let stream = Runner.streamFor(participant)
            let seed = inputs.next()
            let plan = Runner.Plan(
                algorithm: c.algorithm, localEpochs: c.epochs, batchSize: c.batch, learningRate: hex(c.learningRate),
                momentum: hex(c.momentum), weightDecay: hex(c.weightDecay), proximalMu: hex(c.mu))
            let (delta, examples) = Runner.train(
                model: model, parameters: parameters, data: data, plan: plan,
                optimizer: SGD(learningRate: c.learningRate, momentum: c.momentum, weightDecay: c.weightDecay),
                proximalMu: c.mu, seed: seed, stream: stream)
            tests.append(
                .init(
                    tcId: tests.count + 1, comment: c.comment, flags: [c.model == "softmax" ? "Softmax" : "MLP"],
                    result: .valid, error: nil, operation: "train", model: c.model, features: c.features,
                    classes: c.classes, parameters: parameters.map(hex),
                    rows: (0..<c.rows).map { r in features[(r * c.features)..<((r + 1) * c.features)].map(hex) },
                    labels: labels, plan: plan, seed: String(seed), participantId: participant, stream: String(stream),
                    delta: delta.map(hex), examples: examples))
        }
        let trainCount = tests.count

        func csvCase(_ comment: String, _ csv: String, classCount: Int? = nil, error: String? = nil) throws {
            var test = Runner.Test(
                tcId: tests.count + 1, comment: comment, flags: [error == nil ? "CSV" : "CSVRefused"],
                result: error == nil ? .valid : .invalid, error: error, operation: "parseCsv", csv: csv,
                classCount: classCount)
            if error == nil {
                let data = try CSVLoader.parse(csv, classCount: classCount, source: "csv")
                let width = data.featureCount
                test.rows = (0..<data.count).map { r in data.features[(r * width)..<((r + 1) * width)].map(hex) }
                test.labels = data.labels
                test.features = width
                test.classes = data.classCount
            }
            tests.append(test)
        }
        try csvCase(
            "blank lines skipped, spaces trimmed, classes inferred (one more than the largest label)",
            "0.5,-1.25,0\n\n  3e-2 , 0x1.8p1,2\n1,2,1\n")
        try csvCase(
            "the forms C's strtod reads: signs, .5, 5., exponents, hex floats, an underflow to zero; labels +2 and 03",
            "+1.5,.5,5.,-0,1\n1e-400,0X1P-1074,1E+2,-0x.8p-3,+2\n0.1,0.30000000000000004,123456789012345678901234567890,4.9e-324,03\n",
            classCount: 5)
        try csvCase(
            "Unicode spaces and tabs around cells, a trailing line without its newline",
            "\u{00A0}1.5\t,2, 1 \u{3000}\n7,8,0",
            classCount: 2)
        try csvCase("a row of another width", "1,2,0\n1,0\n", error: "raggedRow")
        try csvCase("one column only", "1\n2\n", error: "raggedRow")
        try csvCase("a word where a number belongs", "1,abc,0\n", error: "notNumeric")
        try csvCase("inf is not finite", "1,inf,0\n", error: "notNumeric")
        try csvCase("1e400 overflows", "1e400,2,1\n", error: "notNumeric")
        try csvCase("a hex float that rounds to infinity", "0x1.fffffffffffff8p1023,0\n", error: "notNumeric")
        try csvCase("an underscore digit separator", "1_000,0\n", error: "notNumeric")
        try csvCase(
            "CRLF line ends: \\r\\n is one character, so the text is one line and 0\\r\\n3 no number",
            "1,2,0\r\n3,4,1\r\n", error: "notNumeric")
        try csvCase("a label equal to the class count", "1,2,3\n", classCount: 3, error: "unknownLabel")
        try csvCase("a negative label", "1,2,-1\n", error: "unknownLabel")
        try csvCase("a label past the widest model (2^24)", "1,2,16777216\n", error: "unknownLabel")
        try csvCase(
            "the largest 64-bit label (its class count would overflow)", "1,2,9223372036854775807\n",
            error: "unknownLabel")
        try csvCase("a label that is not an integer", "1,2,1.0\n", error: "unknownLabel")
        try csvCase("only blank lines", "\n \n\t\n", error: "empty")
        try csvCase("one class", "1,2,0\n3,4,0\n", classCount: 1, error: "shape")

        return VectorFile(
            algorithm: Runner.algorithm, generatorVersion: version,
            header: [
                "Veil's local trainer (Specs/learning.md section 2): the FedAvg family's client rule at weight 1, w - w_global",
                "after E epochs of minibatch SGD (xoshiro256** shuffles from seed XOR stream * 0xd1b54a32d192ed03, the stream",
                "the first 8 bytes of SHA-256(participant id) big-endian), softmax by the deterministic exp of section 2.1;",
                "and the CSV reader of section 4.1 with its refusals. Every double is the 16 hex digits of its bit pattern;",
                "seeds and streams are decimal. Project vectors, generated by `veil vectors generate`, confirmed by",
                "Specs/reference/trainer_reference.py and, in Chromium, by web/participant/trainer.js.",
            ],
            notes: [
                "Softmax": VectorNote(bugType: "BASIC", description: "Softmax regression trained locally."),
                "MLP": VectorNote(bugType: "BASIC", description: "A ReLU multilayer perceptron trained locally."),
                "CSV": VectorNote(bugType: "BASIC", description: "CSV text the reader accepts, and what it reads."),
                "CSVRefused": VectorNote(
                    bugType: "DEFINED", description: "CSV text the reader refuses, with the DataError case named."),
            ],
            testGroups: [.init(tests: Array(tests[..<trainCount])), .init(tests: Array(tests[trainCount...]))],
            numberOfTests: tests.count)
    }
}
