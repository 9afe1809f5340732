import ArgumentParser
import Foundation
import VeilVectors

struct VectorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectors",
        abstract: "Check or regenerate the known-answer vector files.",
        subcommands: [Verify.self, Generate.self]
    )

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every vector file under a directory against this implementation.",
            discussion: """
                Prints one line per family, names every failing test case (file and tcId), and ends with \
                "vectors: P passed, F failed". Exits 1 on any failure, including a file it cannot parse \
                or whose algorithm it does not know.
                """
        )

        @Argument(help: "The directory to check.")
        var directory = "Vectors"

        @OptionGroup var output: OutputOptions

        func run() throws {
            let report = try VectorSuite.verify(directory: URL(fileURLWithPath: directory))
            let failures = report.files.flatMap { file in
                (file.error.map { [(file.path, nil as Int?, $0.description)] } ?? [])
                    + file.outcomes.filter { !$0.passed }.map { (file.path, $0.tcId as Int?, $0.reason ?? "failed") }
            }
            if output.json {
                let object: [String: Any] = [
                    "passed": report.passed, "failed": report.failed,
                    "families": report.families.map {
                        ["family": $0.family, "passed": $0.passed, "failed": $0.failed, "files": $0.files]
                    },
                    "failures": failures.map { path, tcId, reason in
                        ["file": path, "tcId": tcId.map { $0 as Any } ?? NSNull(), "reason": reason] as [String: Any]
                    },
                ]
                print(try jsonString(object))
            } else {
                let width = max(8, report.families.map(\.family.count).max() ?? 0)
                for family in report.families {
                    let name = family.family.padding(toLength: width, withPad: " ", startingAt: 0)
                    print(
                        "\(name)  \(family.passed) passed, \(family.failed) failed (\(family.files) file\(family.files == 1 ? "" : "s"))"
                    )
                }
                for (path, tcId, reason) in failures {
                    print("FAIL \(path)\(tcId.map { " tcId \($0)" } ?? ""): \(reason)")
                }
                print("vectors: \(report.passed) passed, \(report.failed) failed")
            }
            if report.failed > 0 { throw ExitCode.failure }
        }
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrite the project's own vector files (KDF, generator, mask expansion, Shamir, codec).",
            discussion: """
                Generation is deterministic: on an unchanged implementation it reproduces the committed files \
                byte for byte. Published vectors (RFCs, Wycheproof) are never touched. Run \
                `python3 Specs/reference/check_vectors.py` afterwards: the independent implementation must agree.
                """
        )

        @Argument(help: "The vectors directory to write into.")
        var directory = "Vectors"

        func run() throws {
            for path in try ProjectVectors.write(to: URL(fileURLWithPath: directory)) {
                print("wrote \(directory)/\(path)")
            }
        }
    }
}

/// Pretty, key-sorted JSON text for `--json` output.
func jsonString(_ object: Any) throws -> String {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
