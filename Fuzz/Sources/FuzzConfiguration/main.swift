import Foundation
import FuzzSupport
import VeilLearning

@testable import VeilService

// The files an operator hands to `veil`: serve.json, join.json (its policy and privacy budget
// included), keyholder.json, read through the same `load(path:)` as `veil serve`, `join` and
// `keyholder` (the strict key scanner, the snake-case decoder, every `validate()`); the
// signing-key file (hex Ed25519 seed) of `veil ca`; and a `csv:PATH` data set of
// `veil simulate`.
//
// Input: one selector byte, then the file.
//   0 serve.json   1 join.json   2 keyholder.json   3 a signing key   4 a CSV data set
//   5 the key scanner alone

/// One file on tmpfs, rewritten for each input: the loaders take a path, as the commands do.
let path: String = {
    let directory =
        FileManager.default.temporaryDirectory.path == "/tmp"
            && FileManager.default.fileExists(
                atPath: "/dev/shm")
        ? "/dev/shm" : FileManager.default.temporaryDirectory.path
    return "\(directory)/veil-fuzz-configuration-\(getpid())"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let (selector, file) = split(bytes(data, size)) else { return 0 }
    let mode = selector % 6
    if mode == 5 {
        _ = try? ConfigurationKeys.check(file)
        return 0
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(file)) else {
        violated("cannot write \(path)")
    }
    defer { try? FileManager.default.removeItem(atPath: path) }
    do {
        switch mode {
        case 0: _ = try ServeConfiguration.load(path: path)
        case 1: _ = try JoinConfiguration.load(path: path)
        case 2: _ = try KeyHolderConfiguration.load(path: path)
        case 3: _ = try loadSigningKey(path)
        default: _ = try CSVLoader.load(path: path)
        }
    } catch let error as DecodingError {
        // Every decoder error is translated into a message naming the key (`describe`): one
        // escaping means the operator sees the decoder's internals instead.
        violated("mode \(mode): an untranslated DecodingError: \(error)")
    } catch {
        // Refused with a Swift error: what a bad file must get.
    }
    return 0
}
