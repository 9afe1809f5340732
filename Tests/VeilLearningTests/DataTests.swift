import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilTestSupport

@Suite struct DataTests {
    @Test func digitsShipWithThePackage() throws {
        let digits = try Digits.load()
        #expect(digits.count == 1797)
        #expect(digits.featureCount == 64 && digits.classCount == 10)
        #expect(digits.features.allSatisfy { (0...1).contains($0) })
        #expect(digits.features.max() == 1)
        let perClass = digits.rowsByClass.map(\.count)
        #expect(perClass.min()! >= 174 && perClass.max()! <= 183)
        var g = Xoshiro256(seed: 1)
        let (train, test) = digits.stratifiedSplit(testFraction: 0.2, using: &g)
        #expect(train.count + test.count == 1797)
        #expect(test.rowsByClass.allSatisfy { abs($0.count - 36) <= 1 })
    }

    @Test func csvLoaderNamesWhatIsWrong() throws {
        let good = try CSVLoader.parse("1,2,0\n3,4,1\n\n5,6,2\n", classCount: nil, source: "t")
        #expect(good.count == 3 && good.featureCount == 2 && good.classCount == 3)
        #expect(throws: DataError.raggedRow(row: 2, expected: 3, actual: 2)) {
            try CSVLoader.parse("1,2,0\n3,1\n", classCount: nil, source: "t")
        }
        #expect(throws: DataError.notNumeric(row: 1, column: 2, cell: "x")) {
            try CSVLoader.parse("1,x,0\n", classCount: nil, source: "t")
        }
        #expect(throws: DataError.unknownLabel(row: 2, label: "7", classCount: 3)) {
            try CSVLoader.parse("1,2,0\n1,2,7\n", classCount: 3, source: "t")
        }
        #expect(throws: DataError.unknownLabel(row: 1, label: "cat", classCount: 3)) {
            try CSVLoader.parse("1,2,cat\n", classCount: 3, source: "t")
        }
        #expect(throws: DataError.empty("t")) { try CSVLoader.parse("\n\n", classCount: nil, source: "t") }
        #expect(throws: DataError.notNumeric(row: 1, column: 1, cell: "nan")) {
            try CSVLoader.parse("nan,2,1\n", classCount: nil, source: "t")
        }
        #expect(
            DataError.unknownLabel(row: 2, label: "7", classCount: 3).description
                == "row 2: label 7 is not a class (labels are integers 0...2)")
    }

    @Test func partitionsDealEveryRowOnce() throws {
        let digits = try Digits.load()
        var g = Xoshiro256(seed: 2)
        for partition in [Partition.iid, .dirichlet(alpha: 0.5), .shards(perClient: 2)] {
            let parts = try partition.split(digits, clients: 10, using: &g)
            #expect(parts.count == 10)
            #expect(parts.reduce(0) { $0 + $1.count } == digits.count)
            #expect(parts.allSatisfy { $0.count >= Partition.minimumRows })
            switch partition {
            case .iid: #expect(parts.allSatisfy { abs($0.count - 180) <= 1 })
            // Two label-sorted shards span few labels.
            case .shards: #expect(parts.allSatisfy { Set($0.labels).count <= 4 })
            case .dirichlet:
                // Label skew: some participant's most common label is far above its share.
                let skew = parts.map { part in Double(part.rowsByClass.map(\.count).max()!) / Double(part.count) }
                #expect(skew.max()! > 0.3)
            }
        }
        #expect(throws: DataError.self) { try Partition(parsing: "dirichlet:-1") }
        #expect(throws: DataError.self) { try Partition(parsing: "nonsense") }
        #expect(try Partition(parsing: "shards:3") == .shards(perClient: 3))
    }

    @Test func syntheticDataFollowsTheFedProxRecipe() throws {
        let data = try SyntheticData.generate(alpha: 1, beta: 1, seed: 7)
        #expect(data.clients.count == 30 && data.clientTests.count == 30)
        for (train, test) in zip(data.clients, data.clientTests) {
            let total = train.count + test.count
            #expect(total >= 50)
            #expect(train.count == Int((0.9 * Double(total)).rounded()))
            #expect(train.featureCount == 60 && train.classCount == 10)
        }
        let again = try SyntheticData.generate(alpha: 1, beta: 1, seed: 7)
        #expect(again.clients[3].features == data.clients[3].features)
        let other = try SyntheticData.generate(alpha: 1, beta: 1, seed: 8)
        #expect(other.clients[3].features != data.clients[3].features)
        // Heavy-tailed sizes: LogNormal(4, 2) + 50 makes some devices far larger than the median.
        let sizes = data.clients.map(\.count).sorted()
        #expect(sizes.last! > 4 * sizes[sizes.count / 2])
    }
}

@Suite struct ModelTests {
    /// Compares the analytic gradient with central finite differences.
    func gradientCheck(_ model: any Model, _ data: Dataset) {
        var g = Xoshiro256(seed: 3)
        var parameters = model.initialParameters(using: &g).map { $0 + 0.1 * g.standardNormal() }
        let rows = Array(0..<8)[...]
        let workspace = model.makeWorkspace()
        var gradient = [Double](repeating: 0, count: model.parameterCount)
        _ = parameters.withUnsafeBufferPointer { p in
            gradient.withUnsafeMutableBufferPointer {
                model.lossAndGradient(p, data: data, rows: rows, gradient: $0, workspace: workspace)
            }
        }
        for index in stride(from: 0, to: model.parameterCount, by: max(1, model.parameterCount / 40)) {
            let h = 1e-6
            func loss() -> Double {
                var scratch = [Double](repeating: 0, count: model.parameterCount)
                return parameters.withUnsafeBufferPointer { p in
                    scratch.withUnsafeMutableBufferPointer {
                        model.lossAndGradient(p, data: data, rows: rows, gradient: $0, workspace: workspace)
                    }
                }
            }
            let original = parameters[index]
            parameters[index] = original + h
            let up = loss()
            parameters[index] = original - h
            let down = loss()
            parameters[index] = original
            let numeric = (up - down) / (2 * h)
            #expect(
                abs(numeric - gradient[index]) < 1e-5 * max(1, abs(numeric)),
                "parameter \(index): \(numeric) vs \(gradient[index])")
        }
    }

    @Test func analyticGradientsMatchFiniteDifferences() throws {
        let digits = try Digits.load()
        gradientCheck(SoftmaxRegression(featureCount: 64, classCount: 10), digits)
        gradientCheck(MultilayerPerceptron(layerSizes: [64, 12, 7, 10]), digits)
    }

    @Test func centralisedTrainingLearnsDigitsDeterministically() throws {
        var split = Xoshiro256(seed: 4)
        let (train, test) = try Digits.load().stratifiedSplit(testFraction: 0.2, using: &split)
        for model in [
            SoftmaxRegression(featureCount: 64, classCount: 10) as any Model,
            MultilayerPerceptron(layerSizes: [64, 32, 10]),
        ] {
            var g1 = Xoshiro256(seed: 5)
            var g2 = Xoshiro256(seed: 5)
            let start = model.initialParameters(using: &g1)
            _ = model.initialParameters(using: &g2)
            let a = trainLocally(
                model: model, start: start, data: train, epochs: 10, batchSize: 32,
                optimizer: SGD(learningRate: 0.1, momentum: 0.5), using: &g1)
            let b = trainLocally(
                model: model, start: start, data: train, epochs: 10, batchSize: 32,
                optimizer: SGD(learningRate: 0.1, momentum: 0.5), using: &g2)
            #expect(a.parameters == b.parameters)
            #expect(a.steps == 10 * 45)
            #expect(model.evaluate(a.parameters, on: test).accuracy > 0.93, "\(model.name)")
        }
        #expect(throws: DataError.self) { try makeModel("mlp:0", featureCount: 4, classCount: 2) }
        #expect(try makeModel("mlp:8,4", featureCount: 4, classCount: 2).parameterCount == 8 * 5 + 4 * 9 + 2 * 5)
    }
}
