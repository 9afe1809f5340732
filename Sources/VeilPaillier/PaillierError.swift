/// Why a Paillier key, ciphertext or operation was refused. No message carries key material.
public enum PaillierError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidModulus(String)
    case invalidPrivateKey(String)
    case unsupportedKeySize(Int)
    case unsupportedDegree(Int)
    case ciphertextOutOfRange
    case plaintextOutOfRange
    case keyMismatch
    case malformed(String)
    case invalidPacking(String)
    case tooManyAddends(have: Int, max: Int)
    case notEnoughPartialDecryptions(have: Int, need: Int)
    case invalidPartialDecryption(String)
    case incorrectPartialDecryptions(holders: [Int])
    case invalidThresholdParameters(String)

    public var description: String {
        switch self {
        case .invalidModulus(let why): "invalid Paillier modulus: \(why)"
        case .invalidPrivateKey(let why): "invalid Paillier private key: \(why)"
        case .unsupportedKeySize(let bits): "unsupported key size \(bits) bits"
        case .unsupportedDegree(let s): "unsupported Damgård–Jurik s = \(s): s must be 1 (Paillier) to 4"
        case .ciphertextOutOfRange:
            "ciphertext is not in Z*_(n²) (Z*_(n^(s+1)) under Damgård–Jurik): it must be positive, below that modulus and coprime to n"
        case .plaintextOutOfRange: "plaintext is outside the key's plaintext range"
        case .keyMismatch: "the ciphertext belongs to another key"
        case .malformed(let why): "malformed Paillier data: \(why)"
        case .invalidPacking(let why): "invalid packing: \(why)"
        case .tooManyAddends(let have, let max): "\(have) addends exceed the \(max) the packing has headroom for"
        case .notEnoughPartialDecryptions(let have, let need): "\(have) partial decryptions, \(need) needed"
        case .invalidPartialDecryption(let why): "invalid partial decryption: \(why)"
        case .incorrectPartialDecryptions(let holders):
            "too few correct partial decryptions: the proofs of holder(s) \(holders.map(String.init).joined(separator: ", ")) fail"
        case .invalidThresholdParameters(let why): "invalid threshold parameters: \(why)"
        }
    }
}
