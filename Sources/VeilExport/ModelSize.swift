import CZlib
import Foundation

/// How many bytes a model file takes, stored and compressed: pruning zeroes weights without
/// shrinking a dense file, and what it saves shows once the file is compressed, as it is for
/// download to a device (Specs/export.md §4).
public enum ModelSize {
    /// The size of `data` compressed by zlib at level 9 (DEFLATE, as gzip and zip use).
    public static func compressed(_ data: Data) -> Int {
        var bound = compressBound(uLong(data.count))
        var output = [UInt8](repeating: 0, count: Int(bound))
        let status = data.withUnsafeBytes { input in
            compress2(&output, &bound, input.bindMemory(to: Bytef.self).baseAddress, uLong(data.count), 9)
        }
        // compressBound is always enough, and level 9 is valid: Z_OK is the only outcome.
        precondition(status == Z_OK, "zlib compress2 failed (\(status))")
        return Int(bound)
    }
}
