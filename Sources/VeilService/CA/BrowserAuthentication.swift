import Foundation
import VeilCrypto
import VeilWire
import X509

/// The WebSocket binding's proof of identity (`Specs/wire.md` §1.1): a participant without a
/// TLS client certificate signs the coordinator's fresh challenge, and the id of the
/// coordinator it means to reach, with the Ed25519 key its CA-issued certificate binds.
public enum BrowserAuthentication {
    /// The challenge's length in bytes.
    public static let nonceLength = 32

    /// "veil/v1/browser/authenticate" ‖ 0x00 ‖ nonce ‖ LE_4(|id|) ‖ id.
    public static func statement(nonce: [UInt8], coordinator id: String) -> [UInt8] {
        let name = Array(id.utf8)
        let length = UInt32(name.count)
        return Array("veil/v1/browser/authenticate".utf8) + [0] + nonce
            + (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + name
    }

    /// The participant `answer` proves to be: its certificate issued by `ca`, valid now, of a
    /// participant (a key holder authenticates by TLS only), and the signature its key's over
    /// this connection's nonce and this coordinator's id.
    public static func verify(
        _ answer: Veil_V1_BrowserAuthentication, nonce: [UInt8], coordinator id: String, ca: Certificate,
        now: Date = Date()
    ) throws -> FederationIdentity {
        let identity = try FederationIdentity(der: Array(answer.certificate), ca: ca, now: now).requiring(.participant)
        guard
            identity.signingKey.isValidSignature(
                Array(answer.signature), for: statement(nonce: nonce, coordinator: id))
        else {
            throw CredentialError.unauthenticated(
                "the challenge's signature does not verify under the key \(identity.id)'s certificate binds")
        }
        return identity
    }
}
