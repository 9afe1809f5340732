import ArgumentParser
import Foundation
import VeilCore
import VeilCrypto
import VeilPrivacy

extension BenchCommand {
    struct DP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dp",
            abstract: "Noise samplers and a participant's distributed-DP share, beside the generator words they use.",
            discussion: """
                For d coordinates: the exact discrete Gaussian and the Skellam sampler at the given local \
                variance, and the whole share of Specs/privacy.md §4 (rotation, scaling, conditional rounding, \
                discrete Gaussian noise, reduction). Each is measured beside the raw ChaCha20 generator producing \
                exactly as many 64-bit words as the sampler consumed, interleaved, best of the repetitions; the \
                ratio is sampler time over raw word time. The masking of the same vector (mask expansion of d \
                elements of Z_2^20) is shown for scale.
                """
        )

        @Option(name: .customLong("dim"), help: "Coordinates d.")
        var dimension = 1000

        @Option(help: "Each participant's noise variance in the integer domain.")
        var variance = 1e8

        @Option(help: "Repetitions of each measurement; the best is reported.")
        var repetitions = 11

        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard dimension >= 1 else { throw ValidationError("--dim must be at least 1") }
            guard variance > 0, variance <= DiscreteGaussian.maxVariance else {
                throw ValidationError("--variance must be in (0, 2^52]")
            }
            guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        }

        /// Counts the words a sampler takes.
        struct Counting: RandomNumberGenerator {
            var inner: ChaCha20Generator
            var words = 0
            mutating func next() -> UInt64 {
                words += 1
                return inner.next()
            }
        }

        func run() throws {
            let seed = Array(SHA256.hash(Array("bench dp".utf8)))
            let dg = try DiscreteGaussian(variance: variance)
            let skellam = try Skellam(variance: variance)
            let mechanism = try DistributedDP(
                noise: .discreteGaussian, dimension: dimension, bitWidth: BitWidth(20), minimumParticipants: 100,
                beta: exp(-0.5), unitScale: 1000, unitLocalStandardDeviation: variance.squareRoot() / 1000)
            var rotationGenerator = try ChaCha20Generator(publicSeed: seed)
            let rotation = RandomizedHadamard(dimension: dimension, using: &rotationGenerator)
            let x = L2Clipping.clip((0..<dimension).map { _ in rotationGenerator.standardNormal() }, to: 0.99).clipped
            let expander = try MaskExpander(seed: SecureBytes(copying: seed), label: [1], bitWidth: try BitWidth(20))
            var masked = ModularVector(zeros: mechanism.paddedDimension, bitWidth: expander.bitWidth)

            func raw(_ words: Int) -> Double {
                var g = try! ChaCha20Generator(publicSeed: seed)  // 32 bytes
                var sink: UInt64 = 0
                let t = seconds { for _ in 0..<words { sink &+= g.next() } }
                if sink == 42 { print("") }  // keeps the loop
                return t
            }
            var best: [String: (time: Double, raw: Double, words: Int)] = [:]
            func record(_ name: String, _ body: (inout Counting) throws -> Void) throws {
                var g = Counting(inner: try! ChaCha20Generator(publicSeed: seed))  // 32 bytes
                var failure: (any Error)?
                let t = seconds {
                    do { try body(&g) } catch { failure = error }
                }
                if let failure { throw failure }
                let r = raw(g.words)
                let old = best[name] ?? (.infinity, .infinity, g.words)
                best[name] = (min(old.time, t), min(old.raw, r), g.words)
            }
            for _ in 0..<repetitions {
                try record("discrete_gaussian") { g in _ = dg.samples(dimension, using: &g) }
                try record("skellam") { g in _ = skellam.samples(dimension, using: &g) }
                try record("share") { g in
                    var rounding = Xoshiro256(seed: 1, purpose: .rounding, round: 1, participant: 1)
                    _ = try mechanism.encode(x, bound: 1, rotation: rotation, rounding: &rounding, noiseGenerator: &g)
                }
            }
            var maskTime = Double.infinity
            for _ in 0..<repetitions { maskTime = min(maskTime, seconds { try? expander.apply(.add, to: &masked) }) }

            let names = ["discrete_gaussian", "skellam", "share"]
            if output.json {
                var result: [String: Any] = [
                    "dim": dimension, "variance": variance, "repetitions": repetitions, "masking_seconds": maskTime,
                ]
                for name in names {
                    // record() stored every name at least once: repetitions ≥ 1 (validate()).
                    let b = best[name]!
                    result[name] = [
                        "seconds": b.time, "raw_seconds": b.raw, "words": b.words, "ratio": b.time / b.raw,
                    ]
                }
                print(try jsonString(result))
            } else {
                print("d = \(dimension), local variance \(variance) (integer domain), best of \(repetitions)")
                print("                      time       words   raw words   ratio")
                for name in names {
                    // record() stored every name at least once: repetitions ≥ 1 (validate()).
                    let b = best[name]!
                    print(
                        String(
                            format: "%@ %8.3f ms  %8d  %8.3f ms  %6.2f",
                            name.padding(toLength: 18, withPad: " ", startingAt: 0), b.time * 1e3, b.words,
                            b.raw * 1e3, b.time / b.raw))
                }
                print(
                    String(
                        format: "masking the %d-element share (mask expansion, b = 20): %.3f ms",
                        mechanism.paddedDimension, maskTime * 1e3))
            }
        }
    }
}
