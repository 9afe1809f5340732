import Foundation
import FuzzSupport

@testable import VeilVectors

// The known-answer files under `Vectors/` as `veil vectors verify` reads them
// (`VectorSuite.verify(file:relativePath:)` without the file system): the header picks the
// runner, the runner decodes its family's groups and checks every case. A vector file is
// input from a file like any other: a malformed or hostile one must be refused with a
// ``VectorError`` or judged case by case, never crash or hang the verifier.
//
// Input: the file. The generic shape (`VectorFile` with test groups of the common fields) is
// also decoded and must round-trip through the canonical encoder.

/// The fields every case has, for the shape check.
struct AnyCase: VectorCase, Equatable {
    var tcId: Int
    var comment: String
    var flags: [String]
    var result: ExpectedResult
}

struct AnyGroup: Codable, Sendable, Equatable {
    var tests: [AnyCase]
}

extension VectorFile: @retroactive Equatable where Group: Equatable {
    public static func == (a: VectorFile, b: VectorFile) -> Bool {
        a.algorithm == b.algorithm && a.schema == b.schema && a.generatorVersion == b.generatorVersion
            && a.numberOfTests == b.numberOfTests && a.header == b.header && a.notes == b.notes
            && a.testGroups == b.testGroups
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let file = Data(bytes(data, size))
    if let shape = try? VectorFile<AnyGroup>.decode(file) {
        checkRoundTrip("vector file shape", shape) {
            try $0.encoded()
        } decode: {
            try VectorFile<AnyGroup>.decode($0)
        }
    }
    guard let header = try? JSONDecoder().decode(VectorFileHeader.self, from: file),
        let runner = runners[header.algorithm]
    else { return 0 }
    do { _ = try runner.run(file) } catch {
        // A VectorError: what a bad file must get.
    }
    return 0
}
