/// Veil's key-derivation function: HKDF-SHA-256 with an explicit domain-separation label.
///
///     VeilKDF(ikm, label, salt, context, L) =
///         HKDF-SHA-256(IKM = ikm, salt = salt, info = "veil/v1/" ‖ label ‖ 0x00 ‖ context, L)
///
/// Labels are short ASCII strings without NUL, so the info string parses uniquely: no key
/// derived for one purpose can equal a key derived for another. `Specs/primitives.md`
/// ("Key derivation") lists every label in use.
public enum VeilKDF {
    /// The prefix of every info string; the version changes if the construction ever does.
    public static let infoPrefix = Array("veil/v1/".utf8)

    /// A domain-separation label.
    public struct Label: Hashable, Sendable, CustomStringConvertible {
        /// The label's ASCII text.
        public let rawValue: String

        /// The largest label, in bytes.
        public static let maxByteCount = 64

        /// Creates a label.
        /// - Throws: ``KDFError/invalidLabel(_:)`` unless it is 1...64 characters from
        ///   `a–z 0–9 . - /`.
        public init(_ rawValue: String) throws(KDFError) {
            let bytes = Array(rawValue.utf8)
            let allowed = { (c: UInt8) in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
                    || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "/")
            }
            guard (1...Self.maxByteCount).contains(bytes.count), bytes.allSatisfy(allowed) else {
                throw .invalidLabel(rawValue)
            }
            self.rawValue = rawValue
        }

        private init(known: String) { rawValue = known }

        /// The key of ``ChaCha20Generator``.
        public static let deterministicGenerator = Label(known: "drbg")
        /// The per-vector key of ``MaskExpander``.
        public static let maskExpansion = Label(known: "mask-expansion")
        /// Secure aggregation: the seed of the neighbour-graph shuffle.
        public static let secAggGraph = Label(known: "secagg/graph")
        /// Secure aggregation: the AEAD key for shares sent from one participant to another.
        public static let secAggShareKey = Label(known: "secagg/share-key")
        /// Secure aggregation: the seed of the pairwise mask between two participants.
        public static let secAggPairwiseSeed = Label(known: "secagg/pairwise-seed")
        /// Secure-aggregation simulations and vectors: per-participant generator seeds.
        public static let secAggSimulation = Label(known: "secagg/simulation")
        /// Differential privacy: the key of a party's noise generator for one round.
        public static let privacyNoise = Label(known: "privacy/noise")
        /// Paillier sessions: the seed of the pairwise mask between two cohort members.
        public static let paillierPairwiseSeed = Label(known: "paillier/pairwise-seed")
        /// A participant's randomness for one session (minibatch order, rounding), from its
        /// signing key: secret to everyone else, the same if the same session is replayed.
        public static let participantRound = Label(known: "participant/round")

        public var description: String { rawValue }
    }

    /// Derives `outputByteCount` bytes for the purpose named by `label`.
    /// - Parameters:
    ///   - label: the purpose.
    ///   - ikm: the input keying material (a shared secret, a seed).
    ///   - salt: public randomness or a session identifier; may be empty.
    ///   - context: bytes that bind the key to its use (peer ids, a vector's name); may be empty.
    ///   - outputByteCount: 1...8160.
    /// - Throws: ``KDFError/outputLengthOutOfRange(_:)``.
    public static func derive(
        _ label: Label, from ikm: SecureBytes, salt: [UInt8] = [], context: [UInt8] = [],
        outputByteCount: Int = keyByteCount
    ) throws(KDFError) -> SecureBytes {
        try HKDFSHA256.deriveKey(
            ikm: ikm, salt: salt, info: info(label: label, context: context), outputByteCount: outputByteCount)
    }

    /// The HKDF info string for a label and context.
    public static func info(label: Label, context: [UInt8]) -> [UInt8] {
        infoPrefix + Array(label.rawValue.utf8) + [0] + context
    }
}

/// Why a key derivation was refused.
public enum KDFError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The label is empty, too long, or has a character outside `a–z 0–9 . - /`.
    case invalidLabel(String)
    /// The output length is outside 1...8160.
    case outputLengthOutOfRange(Int)

    public var description: String {
        switch self {
        case .invalidLabel(let label):
            "KDF label \"\(label)\" must be 1...\(VeilKDF.Label.maxByteCount) characters from a-z 0-9 . - /"
        case .outputLengthOutOfRange(let n):
            "KDF output length \(n) is outside 1...\(HKDFSHA256.maxOutputByteCount)"
        }
    }
}

extension VeilKDF {
    /// The size of the keys and seeds Veil derives: a ChaCha20 or XChaCha20-Poly1305 key, a
    /// mask or generator seed.
    public static let keyByteCount = 32

    /// A 32-byte key with a built-in label: the derivation whose inputs are all valid, so it
    /// cannot fail.
    public static func derive32(_ label: Label, from ikm: SecureBytes, salt: [UInt8] = [], context: [UInt8] = [])
        -> SecureBytes
    {
        Sodium.ensureInitialized()
        return HKDFSHA256.expand(
            prk: HKDFSHA256.extract(salt: salt, ikm: ikm), info: info(label: label, context: context),
            outputByteCount: keyByteCount)
    }
}
