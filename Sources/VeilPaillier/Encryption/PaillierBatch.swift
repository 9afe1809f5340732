import VeilCore

/// Many ciphertexts at once, on every core: what `veil paillier` does with whole files.
public enum PaillierBatch {
    /// Below this many, building the fixed-base table (about 0.1 s at 2048 bits) costs more
    /// than it saves.
    static let tableThreshold = 32

    /// Encrypts residues m ∈ 0..<n^s with DJN (§3), with the fixed-base table for a batch.
    public static func encrypt(residues: [BigInt], key: PaillierPublicKey) throws(PaillierError) -> [PaillierCiphertext]
    {
        for m in residues where m.signum < 0 || !(m < key.plaintextModulus) { throw .plaintextOutOfRange }
        let encryptor = DJNEncryptor(publicKey: key, precomputeTable: residues.count >= tableThreshold)
        return try residues.parallelMapTyped { m throws(PaillierError) in try encryptor.encrypt(residue: m) }
    }

    /// The element-wise homomorphic sum of equally long columns: row i is Π_j c_j[i] mod n^(s+1).
    public static func sum(_ columns: [[PaillierCiphertext]], key: PaillierPublicKey) throws(PaillierError)
        -> [PaillierCiphertext]
    {
        guard let first = columns.first else { return [] }
        guard columns.allSatisfy({ $0.count == first.count }) else {
            throw .malformed("columns of different lengths: \(columns.map(\.count))")
        }
        return try Array(0..<first.count).parallelMapTyped { row throws(PaillierError) in
            var total = first[row]
            for column in columns.dropFirst() { total = try key.add(total, column[row]) }
            return total
        }
    }

    /// CRT-decrypts every ciphertext (§4) to its residue; they must belong to `key`.
    public static func decrypt(_ ciphertexts: [PaillierCiphertext], key: PaillierPrivateKey) throws(PaillierError)
        -> [BigInt]
    {
        try ciphertexts.parallelMapTyped { c throws(PaillierError) in try key.decrypt(c) }
    }
}
