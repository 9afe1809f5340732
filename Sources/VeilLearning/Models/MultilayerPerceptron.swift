import Foundation

/// A multilayer perceptron: ReLU hidden layers, a softmax output. Layer l maps
/// layerSizes[l] inputs to layerSizes[l + 1] outputs; its parameters are W_l (out × in, row
/// by row) then b_l, layer after layer.
public struct MultilayerPerceptron: Model {
    /// Input width, hidden widths, classes.
    public let layerSizes: [Int]

    public init(layerSizes: [Int]) {
        precondition(
            layerSizes.count >= 2 && layerSizes.allSatisfy { $0 > 0 },
            "an MLP needs at least an input and an output layer")
        self.layerSizes = layerSizes
    }

    public var featureCount: Int { layerSizes[0] }
    // The initializer requires input and output layers.
    public var classCount: Int { layerSizes.last! }
    public var name: String { "mlp:" + layerSizes.dropFirst().dropLast().map(String.init).joined(separator: ",") }
    public var parameterCount: Int {
        (0..<(layerSizes.count - 1)).reduce(0) { $0 + layerSizes[$1 + 1] * (layerSizes[$1] + 1) }
    }

    /// Where layer l's weights start.
    private func offset(_ l: Int) -> Int { (0..<l).reduce(0) { $0 + layerSizes[$1 + 1] * (layerSizes[$1] + 1) } }

    /// He initialisation: N(0, 2/fan-in) weights, zero biases.
    public func initialParameters(using generator: inout some RandomNumberGenerator) -> [Double] {
        var p = [Double](repeating: 0, count: parameterCount)
        for l in 0..<(layerSizes.count - 1) {
            let (inputs, outputs, start) = (layerSizes[l], layerSizes[l + 1], offset(l))
            let scale = (2.0 / Double(inputs)).squareRoot()
            for i in 0..<(inputs * outputs) { p[start + i] = scale * generator.standardNormal() }
        }
        return p
    }

    /// Forward pass; activations of layer l land in workspace.buffers[l] (the input is copied into buffer 0).
    private func forward(
        _ p: UnsafeBufferPointer<Double>, _ x: UnsafeBufferPointer<Double>, _ workspace: ModelWorkspace
    ) {
        for j in 0..<featureCount { workspace.buffers[0][j] = x[j] }
        for l in 0..<(layerSizes.count - 1) {
            let (inputs, outputs, start) = (layerSizes[l], layerSizes[l + 1], offset(l))
            let isLast = l == layerSizes.count - 2
            workspace.buffers[l].withUnsafeBufferPointer { a in
                workspace.buffers[l + 1].withUnsafeMutableBufferPointer { out in
                    for o in 0..<outputs {
                        var s = p[start + outputs * inputs + o]
                        let row = start + o * inputs
                        for i in 0..<inputs { s += p[row + i] * a[i] }
                        out[o] = isLast ? s : max(0, s)
                    }
                }
            }
        }
    }

    public func logits(
        _ p: UnsafeBufferPointer<Double>, features x: UnsafeBufferPointer<Double>,
        into z: UnsafeMutableBufferPointer<Double>,
        workspace: ModelWorkspace
    ) {
        forward(p, x, workspace)
        let last = layerSizes.count - 1
        for c in 0..<classCount { z[c] = workspace.buffers[last][c] }
    }

    public func lossAndGradient(
        _ p: UnsafeBufferPointer<Double>, data: Dataset, rows: ArraySlice<Int>,
        gradient g: UnsafeMutableBufferPointer<Double>,
        workspace: ModelWorkspace
    ) -> Double {
        g.update(repeating: 0)
        let layers = layerSizes.count
        var loss = 0.0
        data.features.withUnsafeBufferPointer { f in
            for row in rows {
                forward(
                    p, UnsafeBufferPointer(rebasing: f[(row * featureCount)..<((row + 1) * featureCount)]), workspace)
                // Output error: softmax − one-hot, into the delta buffer of the last layer.
                let label = data.labels[row]
                workspace.buffers[layers - 1].withUnsafeMutableBufferPointer { z in
                    softmaxInPlace(z)
                    loss -= log(max(z[label], .leastNormalMagnitude))
                    z[label] -= 1
                }
                for c in 0..<classCount { workspace.buffers[layers + layers - 1][c] = workspace.buffers[layers - 1][c] }
                // Back through the layers: deltas of layer l + 1 live in buffers[layers + l + 1].
                for l in stride(from: layers - 2, through: 0, by: -1) {
                    let (inputs, outputs, start) = (layerSizes[l], layerSizes[l + 1], offset(l))
                    for o in 0..<outputs {
                        let delta = workspace.buffers[layers + l + 1][o]
                        if delta == 0 { continue }
                        let row = start + o * inputs
                        workspace.buffers[l].withUnsafeBufferPointer { a in
                            for i in 0..<inputs { g[row + i] += delta * a[i] }
                        }
                        g[start + outputs * inputs + o] += delta
                    }
                    if l > 0 {
                        for i in 0..<inputs {
                            var s = 0.0
                            if workspace.buffers[l][i] > 0 {  // ReLU derivative
                                for o in 0..<outputs {
                                    s += p[start + o * inputs + i] * workspace.buffers[layers + l + 1][o]
                                }
                            }
                            workspace.buffers[layers + l][i] = s
                        }
                    }
                }
            }
        }
        let scale = 1 / Double(rows.count)
        for i in 0..<g.count { g[i] *= scale }
        return loss * scale
    }
}
