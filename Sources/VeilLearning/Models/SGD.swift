import VeilCore

/// Minibatch stochastic gradient descent with optional momentum and L2 weight decay.
public struct SGD: Hashable, Sendable {
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double

    public init(learningRate: Double, momentum: Double = 0, weightDecay: Double = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }
}

extension SGD {
    /// One step on `w` with gradient g: w ← w − η(g + λw), or with momentum β,
    /// v ← βv + g + λw, w ← w − ηv (`velocity` is empty without momentum).
    @inline(__always)
    func step(
        _ w: UnsafeMutableBufferPointer<Double>, gradient g: UnsafeBufferPointer<Double>, velocity: inout [Double]
    ) {
        let (lr, mu, wd) = (learningRate, momentum, weightDecay)
        if mu > 0 {
            velocity.withUnsafeMutableBufferPointer { v in
                for i in 0..<w.count {
                    v[i] = mu * v[i] + g[i] + wd * w[i]
                    w[i] -= lr * v[i]
                }
            }
        } else {
            for i in 0..<w.count { w[i] -= lr * (g[i] + wd * w[i]) }
        }
    }
}

/// The result of local training.
public struct LocalTrainingResult: Sendable {
    public let parameters: [Double]
    /// SGD steps taken (τ in FedNova, K in SCAFFOLD).
    public let steps: Int
    /// The mean minibatch loss over the last epoch.
    public let meanLoss: Double
}

/// Runs local training: `epochs` passes over the rows in a fresh random order each, batches of
/// `batchSize` (the last one shorter). `adjust`, when given, alters each minibatch gradient in
/// place before the step — FedProx's proximal term, SCAFFOLD's correction, Ditto's pull.
public func trainLocally(
    model: any Model, start: [Double], data: Dataset, epochs: Int, batchSize: Int, optimizer: SGD,
    using generator: inout some RandomNumberGenerator,
    adjust: ((UnsafeMutableBufferPointer<Double>, UnsafeBufferPointer<Double>) -> Void)? = nil
) -> LocalTrainingResult {
    var parameters = start
    // A batch size of 0 would never advance through the rows.
    guard data.count > 0, epochs > 0, batchSize > 0 else {
        return LocalTrainingResult(parameters: parameters, steps: 0, meanLoss: 0)
    }
    var gradient = [Double](repeating: 0, count: parameters.count)
    var velocity = [Double](repeating: 0, count: optimizer.momentum > 0 ? parameters.count : 0)
    let workspace = model.makeWorkspace()
    var order = Array(0..<data.count)
    var steps = 0
    var epochLoss = 0.0
    for _ in 0..<epochs {
        generator.shuffle(&order)
        epochLoss = 0
        var batches = 0
        var start = 0
        while start < order.count {
            let end = min(start + batchSize, order.count)
            let batch = order[start..<end]
            parameters.withUnsafeMutableBufferPointer { w in
                gradient.withUnsafeMutableBufferPointer { g in
                    epochLoss += model.lossAndGradient(
                        UnsafeBufferPointer(w), data: data, rows: batch, gradient: g, workspace: workspace)
                    adjust?(g, UnsafeBufferPointer(w))
                    optimizer.step(w, gradient: UnsafeBufferPointer(g), velocity: &velocity)
                }
            }
            steps += 1
            batches += 1
            start = end
        }
        epochLoss /= Double(batches)
    }
    return LocalTrainingResult(parameters: parameters, steps: steps, meanLoss: epochLoss)
}
