import VeilCore

/// Packs a vector over Z_(2^b) into as few Paillier plaintexts as possible.
///
/// Each element takes a slot of s = b + ⌈log₂ K⌉ bits, so that the sum of K elements (each
/// below 2^b) stays below 2^s and never carries into the next slot; a plaintext holds
/// ⌊(|n| − 1) / s⌋ slots, which keeps it below 2^(|n|−1) < n — under Damgård–Jurik with degree
/// σ, ⌊σ·(|n| − 1) / s⌋ slots, below 2^(σ·(|n|−1)) ≤ n^σ. Slot i of plaintext j holds
/// element j·slots + i at bits s·i…s·i + s − 1. After a homomorphic sum of at most K packed
/// vectors, unpacking reads each slot and reduces it modulo 2^b: the sum in Z_(2^b).
/// `Specs/paillier.md` ("Packing") is normative.
public struct PaillierPacking: Hashable, Sendable {
    /// b.
    public let bitWidth: BitWidth
    /// K: the most packed vectors that may be summed.
    public let maxAddends: Int
    /// s = b + ⌈log₂ K⌉.
    public let slotBits: Int
    /// ⌊σ·(|n| − 1) / s⌋.
    public let slotsPerPlaintext: Int
    /// |n|.
    public let keyBits: Int
    /// σ, the key's Damgård–Jurik degree (its `s`; 1 for Paillier): plaintexts are below n^σ.
    public let degree: Int

    /// Chooses the slot layout for plaintexts mod n^degree.
    /// - Throws: ``PaillierError/invalidPacking(_:)`` when K < 1 or not even one slot fits in a
    ///   plaintext; ``PaillierError/unsupportedDegree(_:)`` for a degree outside 1…4.
    public init(bitWidth: BitWidth, maxAddends: Int, keyBits: Int, degree: Int = 1) throws(PaillierError) {
        guard PaillierPublicKey.degrees.contains(degree) else { throw .unsupportedDegree(degree) }
        guard maxAddends >= 1 else { throw .invalidPacking("at least one addend is needed, got \(maxAddends)") }
        // ⌈log₂ K⌉, without a loop that a K near Int.max (from a hostile file) would never end.
        let headroom = Int.bitWidth - (maxAddends - 1).leadingZeroBitCount
        let slotBits = bitWidth.bits + headroom
        // n ≥ 2^(|n|−1), so n^σ ≥ 2^(σ·(|n|−1)): the bound holds for every n of |n| bits.
        let slots = degree * (keyBits - 1) / slotBits
        guard slots >= 1 else {
            throw .invalidPacking(
                "a \(slotBits)-bit slot for \(maxAddends) addends of \(bitWidth.bits) bits does not fit in a \(keyBits)-bit key"
            )
        }
        self.bitWidth = bitWidth
        self.maxAddends = maxAddends
        self.slotBits = slotBits
        self.slotsPerPlaintext = slots
        self.keyBits = keyBits
        self.degree = degree
    }

    /// The layout for a key: its |n| and its s.
    public init(bitWidth: BitWidth, maxAddends: Int, key: PaillierPublicKey) throws(PaillierError) {
        try self.init(bitWidth: bitWidth, maxAddends: maxAddends, keyBits: key.bits, degree: key.s)
    }

    /// The number of plaintexts for d elements.
    public func plaintextCount(dimension d: Int) -> Int { (d + slotsPerPlaintext - 1) / slotsPerPlaintext }

    /// Ciphertext bytes per element: ⌈(σ + 1)·|n|/8⌉ / slots (⌈|n²|/8⌉ / slots for Paillier).
    public var ciphertextBytesPerValue: Double {
        Double(((degree + 1) * keyBits + 7) / 8) / Double(slotsPerPlaintext)
    }

    /// The plaintexts of a vector.
    public func pack(_ vector: ModularVector) throws(PaillierError) -> [BigInt] {
        guard vector.bitWidth == bitWidth else {
            throw .invalidPacking("vector over Z_2^\(vector.bitWidth.bits), packing for Z_2^\(bitWidth.bits)")
        }
        let elements = vector.elements
        return stride(from: 0, to: vector.count, by: slotsPerPlaintext).map { start in
            let end = min(start + slotsPerPlaintext, vector.count)
            var bytes = [UInt8](repeating: 0, count: (slotBits * (end - start) + 7) / 8 + 8)
            // Little-endian bit packing, then one import: cheaper than shifting a big integer per slot.
            for (slot, element) in elements[start..<end].enumerated() {
                var bit = slot * slotBits
                var value = element
                var remaining = bitWidth.bits
                while remaining > 0 {
                    bytes[bit / 8] |= UInt8(truncatingIfNeeded: value << UInt64(bit % 8))
                    let taken = min(8 - bit % 8, remaining)
                    value >>= UInt64(taken)
                    remaining -= taken
                    bit += taken
                }
            }
            return BigInt(bigEndian: bytes.reversed())
        }
    }

    /// The sum in Z_(2^b) of `addends` packed vectors, from the decrypted plaintexts.
    /// - Throws: ``PaillierError/tooManyAddends(have:max:)`` when more than K vectors were summed.
    public func unpack(_ plaintexts: [BigInt], dimension: Int, addends: Int) throws(PaillierError) -> ModularVector {
        guard addends <= maxAddends else { throw .tooManyAddends(have: addends, max: maxAddends) }
        guard plaintexts.count == plaintextCount(dimension: dimension) else {
            throw .invalidPacking(
                "\(plaintexts.count) plaintexts for \(dimension) elements, expected \(plaintextCount(dimension: dimension))"
            )
        }
        var elements: [UInt64] = []
        elements.reserveCapacity(dimension)
        let width = (slotBits * slotsPerPlaintext + 7) / 8 + 8
        for plaintext in plaintexts {
            // A plaintext longer than S·slot bits (noise, or a dishonest party's) is not refused
            // here: the key holder of a masked session must answer what passed its checks and
            // record it, or a refusal that depends on the plaintext's length would be an oracle
            // on sums it never releases (review, helper-20's finding 5, declined).
            guard let bigEndian = try? plaintext.bigEndianBytes(width: width) else {
                throw .invalidPacking("a plaintext exceeds its slots")
            }
            let bytes = Array(bigEndian.reversed())
            for slot in 0..<slotsPerPlaintext where elements.count < dimension {
                var value: UInt64 = 0
                let first = slot * slotBits
                for k in 0..<bitWidth.bits {
                    let bit = first + k
                    value |= UInt64((bytes[bit / 8] >> UInt8(bit % 8)) & 1) << UInt64(k)
                }
                elements.append(value)
            }
        }
        return ModularVector(reducing: elements, bitWidth: bitWidth)
    }
}
