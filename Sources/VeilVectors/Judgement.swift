import VeilCore
import VeilCrypto
import VeilExport
import VeilLearning
import VeilPaillier
import VeilPrivacy
import VeilSecAgg

/// The outcome of one test case.
public struct CaseOutcome: Hashable, Sendable {
    public let tcId: Int
    public let passed: Bool
    /// Why it failed; never contains secret inputs, only what differed.
    public let reason: String?
}

/// Thrown by a runner when the implementation produced an output that differs from the
/// file's: distinct from a rejection (any other error).
struct Mismatch: Error, CustomStringConvertible {
    let description: String
    init(_ what: String) { description = what }
}

/// Compares two values, throwing ``Mismatch`` naming the field when they differ.
func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ field: String) throws(Mismatch) {
    guard actual == expected else { throw Mismatch("\(field) differs from the expected value") }
}

/// Judges one case by Wycheproof's rules:
/// - valid: the body must complete (compute and match);
/// - acceptable: complete, or reject — but never compute a different value;
/// - invalid: reject or differ; when the case names an `error` code, the rejection must carry it.
///
/// A case whose own fields cannot be read (``VectorError``) fails whatever its expected
/// result: the file is broken, and no implementation rightly rejected anything.
func judge(_ test: some VectorCase, _ body: () throws -> Void) -> CaseOutcome {
    let outcome: Result<Void, any Error> = Result { try body() }
    func fail(_ why: String) -> CaseOutcome { CaseOutcome(tcId: test.tcId, passed: false, reason: why) }
    let pass = CaseOutcome(tcId: test.tcId, passed: true, reason: nil)
    switch (test.result, outcome) {
    case (_, .failure(VectorError.malformedField(_, let field, let detail))):
        return fail("\(VectorError.malformedField(tcId: test.tcId, field: field, detail: detail))")
    case (_, .failure(let error as VectorError)):
        return fail("test case \(test.tcId): \(error)")
    case (.valid, .success), (.acceptable, .success):
        return pass
    case (.valid, .failure(let error)):
        return fail(error is Mismatch ? "\(error)" : "rejected a valid case: \(errorCode(error))")
    case (.acceptable, .failure(let error)):
        return error is Mismatch ? fail("\(error)") : pass
    case (.invalid, .success):
        return fail("accepted an invalid case")
    case (.invalid, .failure(let error)):
        guard let expected = test.error else { return pass }
        let actual = errorCode(error)
        return actual == expected ? pass : fail("rejected with \(actual), expected \(expected)")
    }
}

/// A stable name for each error an implementation can raise, matched against the `error`
/// field of project invalid cases.
func errorCode(_ error: any Error) -> String {
    switch error {
    case let e as ShamirError:
        switch e {
        case .invalidThreshold: "invalidThreshold"
        case .invalidSecretLength: "invalidSecretLength"
        case .notEnoughShares: "notEnoughShares"
        case .tooManyIndices: "tooManyIndices"
        case .indexOutOfRange: "indexOutOfRange"
        case .duplicateIndex: "duplicateIndex"
        case .inconsistentShareLengths: "inconsistentShareLengths"
        case .coefficientsMismatch: "coefficientsMismatch"
        case .inconsistentShares: "inconsistentShares"
        case .malformedShare: "malformedShare"
        case .tooManyWrongShares: "tooManyWrongShares"
        }
    case let e as FixedPointError:
        switch e {
        case .invalidClip: "invalidClip"
        case .fractionalBitsOutOfRange: "fractionalBitsOutOfRange"
        case .invalidAddendCount: "invalidAddendCount"
        case .sumCouldWrap: "sumCouldWrap"
        case .nonFiniteValue: "nonFiniteValue"
        case .bitWidthMismatch: "bitWidthMismatch"
        }
    case let e as RingError:
        switch e {
        case .bitWidthOutOfRange: "bitWidthOutOfRange"
        case .lengthMismatch: "lengthMismatch"
        case .bitWidthMismatch: "bitWidthMismatch"
        case .elementOutOfRange: "elementOutOfRange"
        }
    case let e as KDFError:
        switch e {
        case .invalidLabel: "invalidLabel"
        case .outputLengthOutOfRange: "outputLengthOutOfRange"
        }
    case let e as CryptoError:
        switch e {
        case .invalidLength: "invalidLength"
        case .authenticationFailure: "authenticationFailure"
        case .weakPublicKey: "weakPublicKey"
        case .invalidPoint: "invalidPoint"
        case .invalidScalar: "invalidScalar"
        case .libsodiumFailure: "libsodiumFailure"
        }
    case let e as MaskExpansionError:
        switch e {
        case .bitWidthMismatch: "bitWidthMismatch"
        case .tooLong: "tooLong"
        }
    case let e as DiscreteGaussian.SamplerError:
        switch e {
        case .invalidVariance: "invalidVariance"
        }
    case let e as Skellam.SamplerError:
        switch e {
        case .invalidVariance: "invalidVariance"
        }
    case let e as DistributedDP.DistributedDPError:
        switch e {
        case .invalidParameters: "invalidParameters"
        case .calibration(let calibration): code(calibration)
        case .roundingFailed: "roundingFailed"
        case .wrongLength: "wrongLength"
        }
    case let e as NoiseCalibration.CalibrationError: code(e)
    case let e as AccountingError:
        switch e {
        case .invalidParameters: "invalidParameters"
        }
    case let e as SecAggParameterError: e.code
    case let e as PaillierSessionError: e.code
    case let e as PaillierError: PaillierRunner.code(e)
    case is Ristretto255Runner.ProofRefused: "invalidProof"
    case let e as SecAggRunner.Refusal: e.code
    case let e as PaillierRunner.Refusal: e.code
    case let e as ModelFileError:
        switch e {
        case .malformed: "malformed"
        case .unsupported: "unsupported"
        case .unrepresentable: "unrepresentable"
        }
    case is ModelExportCases.CheckpointRefused: "invalidCheckpoint"
    case let e as LocalTrainingRunner.Refusal: e.code
    case let e as DataError:
        switch e {
        case .invalidSpecification: "invalidSpecification"
        default: "dataError"
        }
    case is HexError: "malformedHex"
    case is Mismatch: "mismatch"
    default: String(describing: type(of: error))
    }
}

/// A calibration's refusal, the same whether raised alone or inside a distributed-DP one.
private func code(_ error: NoiseCalibration.CalibrationError) -> String {
    switch error {
    case .invalidTarget: "invalidTarget"
    case .unreachable: "unreachable"
    }
}

/// Decodes a hex field, naming it on failure.
func hex(_ text: String, _ field: String) throws -> [UInt8] {
    do { return try Hex.decode(text) } catch {
        throw VectorError.malformedField(tcId: nil, field: field, detail: "\(error)")
    }
}

/// Parses a decimal `UInt64` field (JSON numbers cannot carry 64 bits exactly).
func decimal(_ text: String, _ field: String) throws -> UInt64 {
    guard let value = UInt64(text) else {
        throw VectorError.malformedField(tcId: nil, field: field, detail: "\"\(text)\" is not a decimal UInt64")
    }
    return value
}
