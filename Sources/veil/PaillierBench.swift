import ArgumentParser
import CGMP
import Dispatch
import Foundation
import VeilCore
import VeilPaillier

extension BenchCommand {
    struct Paillier: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "paillier",
            abstract: "Paillier operations per second, each beside the raw GMP operation it rests on.",
            discussion: """
                Raw figures call GMP directly on the same numbers: r^n mod n² (mpz_powm_sec) for encryption, \
                h_s^α mod n² (mpz_powm_sec) for DJN, a fixed-base windowed product (mpz_mul, mpz_mod) for DJN with \
                a table, c^(p−1) mod p² and c^(q−1) mod q² (mpz_powm_sec) for CRT decryption, a product mod n² for \
                addition. Operations alternate with their baselines, best of three blocks. Packed throughput \
                encrypts 32-bit values with headroom for --addends K (DJN with table), on every core. The table \
                baseline selects entries with mpn_sec_tabselect, as Veil does, since the exponent is secret; the \
                variable-time lookup is printed beside it for reference. With --damgard-jurik S, the same \
                primes are also measured under Damgård–Jurik's s = S beside s = 1: ciphertext bytes per packed \
                value, packed values encrypted per second (DJN with a table) on one core and on all, and packed \
                values decrypted per second on one core.
                """
        )

        @Option(help: "Modulus size in bits: 2048 or 3072.")
        var bits = 2048

        @Option(help: "Seconds per measurement block.")
        var seconds = 0.3

        @Option(
            name: .customLong("damgard-jurik"),
            help: ArgumentHelp("Also measure Damgård–Jurik with this s (2 to 4) beside s = 1.", valueName: "S"))
        var damgardJurik: Int?

        @Option(help: "K, the addends the packed figures leave headroom for.")
        var addends = 100

        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard bits == 2048 || bits == 3072 else { throw ValidationError("--bits must be 2048 or 3072") }
            guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
            if let s = damgardJurik, !(2...4).contains(s) { throw ValidationError("--damgard-jurik must be 2 to 4") }
            guard (1...(1 << 20)).contains(addends) else { throw ValidationError("--addends must be 1 to 2^20") }
        }

        func run() throws {
            FileHandle.standardError.write(Data("generating a \(bits)-bit key and the fixed-base table…\n".utf8))
            let key = try PaillierPrivateKey.generate(bits: bits)
            let pk = key.publicKey
            let plainDJN = DJNEncryptor(publicKey: pk, precomputeTable: false)
            let tableDJN = DJNEncryptor(publicKey: pk, base: plainDJN.base, precomputeTable: true)
            let m = BigInt.random(below: pk.n, secret: false)
            let c1 = try pk.encrypt(residue: m)
            let c2 = try pk.encrypt(residue: m)
            let (p, q) = key.primes

            let raw = RawGMP(n: pk.n, base: plainDJN.base, exponentBits: plainDJN.exponentBits, p: p, q: q, c: c1.value)
            defer { raw.release() }
            var results: [(String, Double, Double)] = []
            func measure(_ name: String, ours: () throws -> Void, raw baseline: () -> Void) rethrows {
                var best = (0.0, 0.0)
                for _ in 0..<3 {
                    best.0 = max(best.0, try rate(seconds, ours))
                    best.1 = max(best.1, rate(seconds, baseline))
                }
                results.append((name, best.0, best.1))
                FileHandle.standardError.write(
                    Data(String(format: "%@: %.1f/s (raw %.1f/s)\n", name, best.0, best.1).utf8))
            }
            try measure("encrypt", ours: { _ = try pk.encrypt(residue: m) }, raw: raw.encrypt)
            try measure("encrypt_djn", ours: { _ = try plainDJN.encrypt(residue: m) }, raw: raw.djn)
            try measure("encrypt_djn_table", ours: { _ = try tableDJN.encrypt(residue: m) }, raw: raw.djnTable)
            let variableTime = rate(seconds, raw.djnTableVariableTime)
            // The table's time must not depend on the exponent's digits: an all-zero exponent
            // (every window selects digit 0) against a random one, alternately.
            let alpha = BigInt.random(bits: tableDJN.exponentBits)
            var digitTiming = (zero: 0.0, random: 0.0)
            for _ in 0..<3 {
                digitTiming.zero = max(
                    digitTiming.zero, try rate(seconds) { _ = try tableDJN.encrypt(residue: m, exponent: BigInt(0)) })
                digitTiming.random = max(
                    digitTiming.random, try rate(seconds) { _ = try tableDJN.encrypt(residue: m, exponent: alpha) })
            }
            let zeroDigitRatio = digitTiming.zero / digitTiming.random
            try measure("decrypt_crt", ours: { _ = try key.decrypt(c1) }, raw: raw.decrypt)
            try measure("add", ours: { _ = try pk.add(c1, c2) }, raw: raw.add)

            let packing = try PaillierPacking(bitWidth: BitWidth(32), maxAddends: addends, keyBits: bits)
            let workers = ProcessInfo.processInfo.activeProcessorCount
            let packed = try packedThroughput(tableDJN, packing, workers: workers)
            let perCore = try packedThroughput(tableDJN, packing, workers: 1)
            let degrees = try damgardJurik.map { s in try degreeFigures([key, key.withDegree(s)], workers: workers) }

            if output.json {
                var object: [String: Any] = [
                    "bits": bits, "workers": workers, "packed_values_per_second": packed,
                    "packed_values_per_second_one_core": perCore,
                    "ciphertext_bytes_per_value": packing.ciphertextBytesPerValue,
                    "slots_per_ciphertext": packing.slotsPerPlaintext,
                    "slot_bits": packing.slotBits,
                ]
                for (name, ours, rawRate) in results {
                    object[name] = ["per_second": ours, "raw_gmp_per_second": rawRate, "ratio": ours / rawRate]
                }
                // results above always holds encrypt_djn_table, as a dictionary.
                var table = object["encrypt_djn_table"] as! [String: Any]
                table["raw_gmp_variable_time_per_second"] = variableTime
                table["zero_exponent_speed_ratio"] = zeroDigitRatio
                object["encrypt_djn_table"] = table
                if let degrees {
                    object["damgard_jurik"] = [
                        "s": degrees[1].s, "addends": addends, "damgard_jurik": degrees[1].json,
                        "paillier": degrees[0].json,
                        "encrypted_values_per_second_ratio": degrees[1].encryptOneCore / degrees[0].encryptOneCore,
                        "decrypted_values_per_second_ratio": degrees[1].decryptOneCore / degrees[0].decryptOneCore,
                    ]
                }
                print(try jsonString(object))
            } else {
                print("Paillier, \(bits)-bit n, best of three \(seconds) s blocks")
                for (name, ours, rawRate) in results {
                    print(
                        String(
                            format: "  %-18@ %10.1f/s   raw GMP %10.1f/s   ratio %.3f", name as NSString, ours, rawRate,
                            ours / rawRate))
                }
                print(
                    String(
                        format: "  (a variable-time table lookup, unsafe for a secret exponent, would give %.1f/s)",
                        variableTime))
                print(
                    String(
                        format:
                            "  table encryptions with an all-zero exponent vs a random one: speed ratio %.3f (1: no digit is faster)",
                        zeroDigitRatio))
                print(
                    String(
                        format: "  packed 32-bit values (K = %d): %.0f/s on %d cores, %.0f/s on one core", addends,
                        packed,
                        workers, perCore))
                print(
                    String(
                        format: "  ciphertext bytes per value: %.2f (%d slots of %d bits)",
                        packing.ciphertextBytesPerValue,
                        packing.slotsPerPlaintext, packing.slotBits))
                if let degrees {
                    print("Damgård–Jurik beside Paillier, the same primes, 32-bit values packed for K = \(addends)")
                    for figures in degrees {
                        print(
                            String(
                                format:
                                    "  s = %d: %5.2f ciphertext bytes per value (%3d slots of %d bits); encrypt %8.0f values/s on one core, %8.0f on %d; decrypt %8.0f values/s on one core",
                                figures.s, figures.bytesPerValue, figures.slots, figures.slotBits,
                                figures.encryptOneCore, figures.encryptAllCores, workers, figures.decryptOneCore))
                    }
                    print(
                        String(
                            format:
                                "  s = %d against s = 1, values per second on one core: encrypt %.2f×, decrypt %.2f×",
                            degrees[1].s, degrees[1].encryptOneCore / degrees[0].encryptOneCore,
                            degrees[1].decryptOneCore / degrees[0].decryptOneCore))
                }
            }
        }

        /// One s's figures: its packing, and packed values per second through DJN with a table
        /// and through CRT decryption.
        struct DegreeFigures {
            let s: Int
            let bytesPerValue: Double
            let slots: Int
            let slotBits: Int
            let encryptOneCore: Double
            let encryptAllCores: Double
            let decryptOneCore: Double

            var json: [String: Any] {
                [
                    "s": s, "ciphertext_bytes_per_value": bytesPerValue, "slots_per_ciphertext": slots,
                    "slot_bits": slotBits, "encrypted_values_per_second_one_core": encryptOneCore,
                    "encrypted_values_per_second_all_cores": encryptAllCores,
                    "decrypted_values_per_second_one_core": decryptOneCore,
                ]
            }
        }

        /// The figures of each key, measured alternately (key after key, three times, best of
        /// each) so that the machine's load weighs on all of them alike.
        private func degreeFigures(_ keys: [PaillierPrivateKey], workers: Int) throws -> [DegreeFigures] {
            let setups = try keys.map { key in
                let packing = try PaillierPacking(bitWidth: BitWidth(32), maxAddends: addends, key: key.publicKey)
                let encryptor = DJNEncryptor(publicKey: key.publicKey, precomputeTable: true)
                let c = try encryptor.encrypt(
                    residue: BigInt.random(below: key.publicKey.plaintextModulus, secret: false))
                return (key: key, packing: packing, encryptor: encryptor, c: c)
            }
            var best = Array(repeating: (one: 0.0, all: 0.0, decrypt: 0.0), count: keys.count)
            for _ in 0..<3 {
                for (i, setup) in setups.enumerated() {
                    best[i].one = max(best[i].one, try packedThroughput(setup.encryptor, setup.packing, workers: 1))
                    best[i].all = max(
                        best[i].all, try packedThroughput(setup.encryptor, setup.packing, workers: workers))
                    best[i].decrypt = max(best[i].decrypt, try rate(seconds) { _ = try setup.key.decrypt(setup.c) })
                }
            }
            return zip(setups, best).map { setup, best in
                DegreeFigures(
                    s: setup.key.publicKey.s, bytesPerValue: setup.packing.ciphertextBytesPerValue,
                    slots: setup.packing.slotsPerPlaintext, slotBits: setup.packing.slotBits,
                    encryptOneCore: best.one, encryptAllCores: best.all,
                    decryptOneCore: best.decrypt * Double(setup.packing.slotsPerPlaintext))
            }
        }

        /// Values per second: packing and encrypting a 32-bit vector, split over `workers` threads.
        private func packedThroughput(_ encryptor: DJNEncryptor, _ packing: PaillierPacking, workers: Int) throws
            -> Double
        {
            let perWorker = packing.slotsPerPlaintext * 8
            let vector = ModularVector(
                reducing: (0..<perWorker).map { UInt64($0) &* 2_654_435_761 }, bitWidth: try BitWidth(32))
            let contributor = PaillierContributor(encryptor: encryptor, packing: packing)
            let elapsed = veil.seconds {
                DispatchQueue.concurrentPerform(iterations: workers) { _ in _ = try? contributor.encrypt(vector) }
            }
            return Double(perWorker * workers) / elapsed
        }

        private func rate(_ budget: Double, _ body: () throws -> Void) rethrows -> Double {
            var count = 0
            let start = ContinuousClock.now
            var elapsed = 0.0
            repeat {
                try body()
                count += 1
                let d = ContinuousClock.now - start
                elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            } while elapsed < budget
            return Double(count) / elapsed
        }
    }
}

/// The baselines: the same numbers as raw `mpz_t`s, operated on by GMP directly.
private final class RawGMP {
    let n, n2, base, alpha, r, p1, q1, p2, q2, c, c2, out, tmp, entry: UnsafeMutablePointer<__mpz_struct>
    let table: [UnsafeMutablePointer<__mpz_struct>]
    let window = 6
    let windows: Int
    let limbs: Int
    let limbTable: UnsafeMutablePointer<mp_limb_t>

    init(n nValue: BigInt, base baseValue: BigInt, exponentBits: Int, p: BigInt, q: BigInt, c cValue: BigInt) {
        func make(_ value: BigInt) -> UnsafeMutablePointer<__mpz_struct> {
            let x = UnsafeMutablePointer<__mpz_struct>.allocate(capacity: 1)
            veil_mpz_init(x)
            // mpz_set_str fails only on a string that is not a number; BigInt.decimal always is one.
            let code = veil_mpz_set_str(x, value.decimal, 10)
            precondition(code == 0, "mpz_set_str refused BigInt.decimal of \(value.bitWidth)-bit value")
            return x
        }
        n = make(nValue)
        n2 = make(nValue * nValue)
        base = make(baseValue)
        alpha = make(BigInt.random(bits: exponentBits, secret: false))
        r = make(BigInt.random(below: nValue, secret: false))
        p1 = make(p - 1)
        q1 = make(q - 1)
        p2 = make(p * p)
        q2 = make(q * q)
        c = make(cValue)
        c2 = make(cValue)
        out = make(0)
        tmp = make(0)
        entry = make(0)
        windows = (exponentBits + window - 1) / window
        // T[i][j] = base^(j·2^(w·i)) mod n², a plain array of mpz_t.
        var entries: [UnsafeMutablePointer<__mpz_struct>] = []
        var step = baseValue
        let modulus = nValue * nValue
        for _ in 0..<windows {
            var entry = BigInt(1)
            for _ in 0..<(1 << window) {
                entries.append(make(entry))
                entry = (entry * step).modulo(modulus)
            }
            step = entry
        }
        table = entries
        limbs = veil_mpz_size(n2)
        limbTable = .allocate(capacity: entries.count * limbs)
        limbTable.initialize(repeating: 0, count: entries.count * limbs)
        for (i, entry) in entries.enumerated() {
            // mpz_limbs_read returns the limb array of an initialised mpz, never NULL.
            let source = veil_mpz_limbs_read(entry)!
            for k in 0..<veil_mpz_size(entry) { limbTable[i * limbs + k] = source[k] }
        }
    }

    func encrypt() {
        veil_mpz_powm_sec(out, r, n, n2)
        veil_mpz_mul(tmp, out, c)
        veil_mpz_mod(out, tmp, n2)
    }

    func djn() {
        veil_mpz_powm_sec(out, base, alpha, n2)
        veil_mpz_mul(tmp, out, c)
        veil_mpz_mod(out, tmp, n2)
    }

    /// The windowed product with constant-time selection, as Veil computes it.
    func djnTable() {
        veil_mpz_set_ui(out, 1)
        for i in 0..<windows {
            var digit = 0
            for b in 0..<window { digit |= Int(veil_mpz_tstbit(alpha, mp_bitcnt_t(i * window + b))) << b }
            // mpz_limbs_write reallocates (GMP aborts when it cannot) and never returns NULL.
            let target = veil_mpz_limbs_write(entry, limbs)!
            veil_mpn_sec_tabselect(target, limbTable + (i << window) * limbs, limbs, 1 << window, digit)
            veil_mpz_limbs_finish(entry, limbs)
            veil_mpz_mul(tmp, out, entry)
            veil_mpz_mod(out, tmp, n2)
        }
    }

    /// The same with a direct, variable-time index: faster, but it leaks the exponent's digits.
    func djnTableVariableTime() {
        veil_mpz_set_ui(out, 1)
        for i in 0..<windows {
            var digit = 0
            for b in 0..<window { digit |= Int(veil_mpz_tstbit(alpha, mp_bitcnt_t(i * window + b))) << b }
            veil_mpz_mul(tmp, out, table[i << window | digit])
            veil_mpz_mod(out, tmp, n2)
        }
    }

    func decrypt() {
        veil_mpz_powm_sec(out, c, p1, p2)
        veil_mpz_powm_sec(tmp, c, q1, q2)
    }

    func add() {
        veil_mpz_mul(tmp, c, c2)
        veil_mpz_mod(out, tmp, n2)
    }

    func release() {
        for x in [n, n2, base, alpha, r, p1, q1, p2, q2, c, c2, out, tmp, entry] + table {
            veil_mpz_clear(x)
            x.deallocate()
        }
        limbTable.deallocate()
    }
}
