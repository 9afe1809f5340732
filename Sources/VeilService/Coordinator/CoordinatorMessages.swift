import Foundation
import VeilCore
import VeilCrypto
import VeilWire

extension Veil_V1_CoordinatorMessage {
    package static func failure(_ code: Veil_V1_FailureCode, _ message: String) -> Self {
        .with {
            $0.failure = .with {
                $0.code = code
                $0.message = message
            }
        }
    }
}

/// Text another party wrote, made safe to log: at most `limit` characters, on one line
/// (control characters shown as escapes, so that a peer cannot forge log lines or fill a disk).
package func loggable(_ text: String, limit: Int = 200) -> String {
    var out = ""
    for scalar in text.unicodeScalars.prefix(limit) {
        if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format {
            out += scalar.escaped(asASCII: true)
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return text.unicodeScalars.count > limit ? out + "… (\(text.utf8.count) bytes)" : out
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// Reads an Ed25519 signing key file (the hex seed `veil ca issue` writes).
func loadSigningKey(_ path: String) throws -> Ed25519.PrivateKey {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CredentialError.unreadable(path: path, why: "cannot read the file")
    }
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard let bytes = try? Hex.decode(text), bytes.count == Ed25519.seedByteCount,
        let key = try? Ed25519.PrivateKey(seed: SecureBytes(copying: bytes))
    else {
        throw CredentialError.unreadable(path: path, why: "not a \(Ed25519.seedByteCount)-byte hex Ed25519 seed")
    }
    return key
}
