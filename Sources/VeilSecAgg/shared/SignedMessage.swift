import VeilCore
import VeilCrypto

/// The protocol rounds, named after the literature (Bonawitz et al. 2017; fcp's states).
public enum SecAggRound: UInt8, Hashable, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case advertiseKeys = 0
    case shareKeys = 1
    case maskedInputCollection = 2
    case consistencyCheck = 3
    case unmasking = 4

    public static func < (lhs: SecAggRound, rhs: SecAggRound) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .advertiseKeys: "R0AdvertiseKeys"
        case .shareKeys: "R1ShareKeys"
        case .maskedInputCollection: "R2MaskedInputCollection"
        case .consistencyCheck: "R3ConsistencyCheck"
        case .unmasking: "R4Unmasking"
        }
    }
}

/// Every protocol message: who sends what to whom in which round of which session, signed
/// by the sender's Ed25519 identity key.
///
///     encoded = 0x01 ‖ session id (32) ‖ round (1) ‖ LE_4(sender) ‖ LE_4(recipient) ‖ LE_4(|body|) ‖ body ‖ signature (64)
///     signed  = "veil/v1/secagg/message" ‖ 0x00 ‖ encoded without the signature
///
/// Party 0 is the server; participants are 1…n. A participant's messages in round r carry r;
/// the server's messages carry the round they open.
public struct SignedMessage: Hashable, Sendable {
    /// The server's party number.
    public static let server: UInt32 = 0
    /// The encoding version.
    public static let version: UInt8 = 1
    static let domain = Array("veil/v1/secagg/message".utf8) + [0]
    /// The largest body accepted when decoding (a masked vector of 2^24 64-bit elements).
    public static let maxBodyBytes = 1 << 27

    public let sessionID: [UInt8]
    public let round: SecAggRound
    public let sender: UInt32
    public let recipient: UInt32
    public let body: [UInt8]
    public let signature: [UInt8]

    /// Signs a new message.
    init(
        body: [UInt8], sessionID: [UInt8], round: SecAggRound, sender: UInt32, recipient: UInt32,
        signedWith key: Ed25519.PrivateKey
    ) {
        self.sessionID = sessionID
        self.round = round
        self.sender = sender
        self.recipient = recipient
        self.body = body
        self.signature = key.signature(
            for: Self.domain + Self.unsignedEncoding(sessionID, round, sender, recipient, body))
    }

    /// Wraps fields received elsewhere (a forwarded signature over a known body).
    init(sessionID: [UInt8], round: SecAggRound, sender: UInt32, recipient: UInt32, body: [UInt8], signature: [UInt8]) {
        self.sessionID = sessionID
        self.round = round
        self.sender = sender
        self.recipient = recipient
        self.body = body
        self.signature = signature
    }

    /// Whether the signature is valid under `key`.
    public func isSigned(by key: Ed25519.PublicKey) -> Bool {
        key.isValidSignature(
            signature, for: Self.domain + Self.unsignedEncoding(sessionID, round, sender, recipient, body))
    }

    /// The canonical encoding.
    public var encoded: [UInt8] {
        Self.unsignedEncoding(sessionID, round, sender, recipient, body) + signature
    }

    /// Decodes a message; the signature is checked separately, by whoever knows the key.
    /// - Throws: ``SecAggWireError`` for a wrong version, round, length or trailing bytes.
    public init(encoded: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(encoded)
        guard try reader.u8("version") == Self.version else { throw .malformed("unknown message version") }
        sessionID = try reader.raw(SHA256.digestByteCount, "session id")
        guard let round = SecAggRound(rawValue: try reader.u8("round")) else { throw .malformed("unknown round") }
        self.round = round
        sender = try reader.u32("sender")
        recipient = try reader.u32("recipient")
        body = try reader.blob("body", max: Self.maxBodyBytes)
        signature = try reader.raw(64, "signature")
        try reader.finish("message")
    }

    static func unsignedEncoding(
        _ sessionID: [UInt8], _ round: SecAggRound, _ sender: UInt32, _ recipient: UInt32, _ body: [UInt8]
    ) -> [UInt8] {
        var writer = ByteWriter(capacity: 46 + body.count + 64)
        writer.u8(version)
        writer.raw(sessionID)
        writer.u8(round.rawValue)
        writer.u32(sender)
        writer.u32(recipient)
        writer.blob(body)
        return writer.bytes
    }
}
