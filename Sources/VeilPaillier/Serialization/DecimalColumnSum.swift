import CGMP
import Glibc
import VeilCore

/// `veil paillier add` over decimal files (python-paillier's format, `Specs/paillier.md` §8.1)
/// in one pass on every core: each worker takes a run of rows and, for each row, parses that
/// line of every file straight into reused GMP integers (19 digits per limb step), multiplies them modulo n², and writes
/// the product's decimal line — no `BigInt` per value, no intermediate arrays of ciphertexts.
/// The products' coprimality with n is tested once, as a product (a prime of n divides a product
/// only if it divides a factor). Anything it cannot take — a line that is not digits, a value
/// outside 0 < c < n², files of different lengths, a product that is not a unit — it reports
/// without a line number, for the caller to name it with the careful reader.
public enum DecimalColumnSum {
    /// Rows per task: enough to amortise a task, few enough to balance two cores.
    static let rowsPerTask = 64

    /// The sum's lines, each ending in a newline, in pieces to be written out in order (joining
    /// 12 MB and copying it again cost a tenth of the run); nil when a file does not take this
    /// path.
    /// - Parameter files: each file's bytes (a mapped file, not copied; they must stay valid
    ///   for the call); `lines` their non-empty lines (``PaillierCiphertextFile/lineRanges(_:)``),
    ///   all of one count.
    public static func sum(_ files: [UnsafeBufferPointer<UInt8>], lines: [[Range<Int>]], key: PaillierPublicKey)
        -> [[UInt8]]?
    {
        guard key.s == 1, let rows = lines.first?.count, rows > 0, lines.allSatisfy({ $0.count == rows }) else {
            return nil
        }
        let n2 = key.ciphertextModulus
        let n = key.n
        // A line longer than n²'s digits and a margin of leading zeros goes to the careful reader,
        // so that every parse writes at most a value's limbs (review, helper-23: one line of
        // 30 MB of zeros made every task allocate 30 MB).
        let longest = lines.lazy.flatMap { $0 }.map(\.count).max() ?? 0
        guard longest <= veil_mpz_sizeinbase(n2.pointer, 10) + 64 else { return nil }
        let starts = Array(stride(from: 0, to: rows, by: rowsPerTask))
        // Read only, and the caller keeps them alive until the call returns.
        nonisolated(unsafe) let files = files
        let pieces = try! starts.parallelMap { start -> (bytes: [UInt8], unitProduct: BigInt)? in  // cannot throw
            let end = min(start + rowsPerTask, rows)
            let accumulator = BigInt.Storage(secret: false)
            let factor = BigInt.Storage(secret: false)
            let product = BigInt.Storage(secret: false)
            let units = BigInt.Storage(secret: false)
            let residue = BigInt.Storage(secret: false)
            veil_mpz_set_ui(units.pointer, 1)
            var out: [UInt8] = []
            out.reserveCapacity((end - start) * (key.ciphertextByteCount * 5 / 2 + 2))
            var digits = [UInt8](repeating: 0, count: veil_mpz_sizeinbase(n2.pointer, 10) + 2)
            let parsed = digits.withUnsafeMutableBufferPointer { scratch -> Bool in
                for row in start..<end {
                    for (index, file) in files.enumerated() {
                        let range = lines[index][row]
                        let target = index == 0 ? accumulator.pointer : factor.pointer
                        let status = veil_mpz_set_decimal(target, file.baseAddress! + range.lowerBound, range.count)
                        guard status == 0, veil_mpz_sgn(target) > 0, veil_mpz_cmp(target, n2.pointer) < 0 else {
                            return false
                        }
                        if index > 0 {
                            veil_mpz_mul(product.pointer, accumulator.pointer, factor.pointer)
                            veil_mpz_mod(accumulator.pointer, product.pointer, n2.pointer)
                        }
                    }
                    veil_mpz_mod(residue.pointer, accumulator.pointer, n.pointer)
                    veil_mpz_mul(product.pointer, units.pointer, residue.pointer)
                    veil_mpz_mod(units.pointer, product.pointer, n.pointer)
                    // mpz_get_str writes at most sizeinbase + 2 bytes (a sign and the NUL).
                    let length = veil_mpz_sizeinbase(accumulator.pointer, 10) + 2
                    guard length <= scratch.count else { return false }
                    scratch.withMemoryRebound(to: CChar.self) { buffer in
                        _ = veil_mpz_get_str(buffer.baseAddress!, 10, accumulator.pointer)
                        let written = strlen(buffer.baseAddress!)
                        out.append(contentsOf: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: written))
                    }
                    out.append(0x0A)
                }
                return true
            }
            guard parsed else { return nil }
            return (out, BigInt(secret: false) { veil_mpz_set($0, units.pointer) })
        }
        var units = BigInt(1)
        for piece in pieces {
            guard let piece else { return nil }
            units = (units * piece.unitProduct).modulo(n)
        }
        guard BigInt.gcd(units, n) == 1 else { return nil }
        return pieces.map { $0!.bytes }
    }
}
