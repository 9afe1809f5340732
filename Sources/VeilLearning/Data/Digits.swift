import CZlib
import Foundation

/// The handwritten-digits set: 1,797 images of 8×8 pixels (intensities 0–16), ten classes —
/// the test part of the UCI "Optical Recognition of Handwritten Digits" data set (E. Alpaydin
/// and C. Kaynak, 1998; CC BY 4.0), as scikit-learn distributes it. Shipped as the package
/// resource `digits.csv.gz`: 64 pixel values then the label per row, no header.
public enum Digits {
    /// The 1,797 examples, pixels scaled to [0, 1] (divided by 16).
    public static func load() throws -> Dataset {
        guard let url = Bundle.module.url(forResource: "digits.csv", withExtension: "gz") else {
            throw DataError.unreadable("the digits resource is missing from the VeilLearning bundle")
        }
        let text = try gunzip(Data(contentsOf: url))
        let table = try CSVLoader.parse(String(decoding: text, as: UTF8.self), classCount: 10, source: "digits.csv")
        return table.scaled(by: 1.0 / 16)
    }
}

/// Inflates gzip data with zlib.
func gunzip(_ data: Data) throws(DataError) -> Data {
    var out: UnsafeMutablePointer<UInt8>?
    var length = 0
    let code = data.withUnsafeBytes { raw in
        veil_gunzip(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count, &out, &length)
    }
    guard code == Z_OK, let out else { throw .unreadable("gzip data is corrupt (zlib error \(code))") }
    defer { free(out) }
    return Data(bytes: out, count: length)
}
