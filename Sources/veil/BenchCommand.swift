import ArgumentParser
import CSodium
import Foundation
import VeilCore
import VeilCrypto

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Veil's kernels against the raw primitive they rest on, in the same run.",
        discussion: """
            The machine may be shared and noisy, so every figure comes with the raw primitive measured \
            alongside it, interleaved, best of several repetitions; compare the ratios. Build with \
            `-c release` for meaningful numbers.
            """,
        subcommands: [PRG.self]
    )

    struct PRG: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prg",
            abstract: "Mask expansion throughput against libsodium's raw ChaCha20 keystream.",
            discussion: """
                Both figures count keystream bytes: ⌈b/8⌉ per element. "keystream" is one \
                crypto_stream_chacha20_ietf call over the whole buffer; "expansion" is MaskExpander writing \
                d elements of Z_2^b into a vector; "masking" adds them to a vector instead (what a client does \
                for each mask). Target: expansion ≥ 0.9 × keystream for b = 32 and b = 64.
                """
        )

        @Option(name: .customLong("dim"), help: "Vector length d (elements).")
        var dimension = 1_000_000

        @Option(help: "Bit width b of Z_2^b, 1...64.")
        var bits = 32

        @Option(help: "Repetitions of each measurement; the best is reported.")
        var repetitions = 21

        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard dimension >= 1 else { throw ValidationError("--dim must be at least 1") }
            guard BitWidth.range.contains(bits) else { throw ValidationError("--bits must be in 1...64") }
            guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        }

        func run() throws {
            let bitWidth = try BitWidth(bits)
            let byteCount = dimension * bitWidth.byteCount
            let seed = SecureBytes.random(count: 32)
            let expander = try MaskExpander(seed: seed, label: Array("bench".utf8), bitWidth: bitWidth)
            let key = SecureBytes.random(count: Int(crypto_stream_chacha20_ietf_keybytes()))
            let nonce = [UInt8](repeating: 0, count: Int(crypto_stream_chacha20_ietf_noncebytes()))
            var raw = [UInt8](repeating: 0, count: byteCount)
            var vector = ModularVector(zeros: dimension, bitWidth: bitWidth)

            var best = (keystream: Double.infinity, expansion: Double.infinity, masking: Double.infinity)
            for _ in 0..<repetitions {
                best.keystream = min(
                    best.keystream,
                    seconds {
                        key.withUnsafeBytes { k in
                            _ = crypto_stream_chacha20_ietf(
                                &raw, UInt64(byteCount), nonce, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                        }
                    })
                best.expansion = min(best.expansion, seconds { try? expander.apply(.overwrite, to: &vector) })
                best.masking = min(best.masking, seconds { try? expander.apply(.add, to: &vector) })
            }
            let gigabytes = Double(byteCount) / 1e9
            let keystream = gigabytes / best.keystream
            let expansion = gigabytes / best.expansion
            let masking = gigabytes / best.masking
            if output.json {
                print(
                    try jsonString([
                        "dim": dimension, "bits": bits, "repetitions": repetitions, "keystream_bytes": byteCount,
                        "keystream_gb_per_s": keystream, "expansion_gb_per_s": expansion,
                        "ratio": expansion / keystream,
                        "masking_gb_per_s": masking, "masking_ratio": masking / keystream,
                    ]))
            } else {
                print(
                    "mask expansion, d = \(dimension), b = \(bits) (\(byteCount) keystream bytes), best of \(repetitions)"
                )
                print(String(format: "  raw ChaCha20 keystream  %6.3f GB/s", keystream))
                print(
                    String(
                        format: "  expansion (overwrite)   %6.3f GB/s   ratio %.3f", expansion, expansion / keystream))
                print(String(format: "  masking (add)           %6.3f GB/s   ratio %.3f", masking, masking / keystream))
            }
        }
    }
}

/// Wall-clock seconds one run of `body` takes.
func seconds(_ body: () -> Void) -> Double {
    let start = ContinuousClock.now
    body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}
