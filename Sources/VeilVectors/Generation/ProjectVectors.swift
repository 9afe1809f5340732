import Foundation
import VeilCore
import VeilCrypto

/// Generates the project's own known-answer files — the ones no outside document publishes —
/// deterministically, so that `veil vectors generate` reproduces the committed files byte
/// for byte. The Python implementation in `Specs/reference/` recomputes every value in them
/// independently; only that agreement makes them worth anything.
public enum ProjectVectors {
    /// Where each generated file goes, relative to `Vectors/`, and its bytes.
    public static func all() throws -> [(path: String, data: Data)] {
        [
            ("kdf/veil_kdf.json", try kdf().encoded()),
            ("ristretto255/veil_ristretto255.json", try ristretto255().encoded()),
            ("drbg/veil_chacha20_generator.json", try generator().encoded()),
            ("mask/veil_mask_expansion.json", try maskExpansion().encoded()),
            ("shamir/veil_shamir.json", try shamir().encoded()),
            ("codec/veil_fixed_point.json", try fixedPoint().encoded()),
            ("subset/veil_coordinate_subset.json", try coordinateSubset().encoded()),
            ("secagg/veil_secagg.json", try secAgg().encoded()),
            ("secagg/veil_secagg_parameters.json", try secAggParameters().encoded()),
            ("paillier/veil_paillier.json", try paillier().encoded()),
            ("paillier/veil_paillier_session.json", try paillierSession().encoded()),
            ("dp/veil_privacy.json", try privacy().encoded()),
            ("model/veil_onnx_export.json", try onnxExport().encoded()),
            ("model/veil_tflite_export.json", try tfliteExport().encoded()),
            ("trainer/veil_local_training.json", try localTraining().encoded()),
        ]
    }

    /// Writes every generated file under `directory`, creating folders as needed.
    /// - Returns: the paths written, relative to `directory`.
    @discardableResult
    public static func write(to directory: URL) throws -> [String] {
        try all().map { path, data in
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
            return path
        }
    }

    static let version = "veil-vectors-1"

    /// Public, arbitrary-looking inputs: the deterministic generator under a fixed seed.
    struct Inputs {
        var generator: ChaCha20Generator

        init(generator: ChaCha20Generator) { self.generator = generator }

        init(_ name: String) {
            var seed = [UInt8](repeating: 0, count: ChaCha20Generator.seedByteCount)
            for (i, byte) in name.utf8.prefix(ChaCha20Generator.seedByteCount).enumerated() { seed[i] = byte }
            generator = try! ChaCha20Generator(publicSeed: seed)  // the seed size by construction
        }

        mutating func bytes(_ count: Int) -> [UInt8] { generator.bytes(count: count).unsafeExposedBytes() }
        mutating func hex(_ count: Int) -> String { Hex.encode(bytes(count)) }
    }
}
