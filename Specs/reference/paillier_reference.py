"""An independent check of Veil's Paillier vectors, written from Specs/paillier.md.

Encryption with given randomness, decryption and homomorphic addition go through
python-paillier (`phe`); DJN encryption, packing and threshold combination, which phe does
not offer, are plain Python integers here. Key generation (section 1) and dealing (section 6)
are redone from the stated seed with the reference ChaCha20 generator and SymPy's primality
test (Baillie–PSW), and the modulus and private-key rules are applied as section 1 states them.

Damgård–Jurik (section 9; groups and cases with "s"), which phe does not offer either, is plain
Python too, and by other routes than Veil's: (1 + n)^m by pow rather than its binomial terms,
decryption by c^λ rather than CRT, and the logarithm base 1 + n one base-n digit at a time by
dividing out what is known (rather than Damgård and Jurik's binomial correction).
"""

from __future__ import annotations

from math import factorial, gcd

from phe import paillier
from sympy import isprime

import veil_reference as ref


# --- Section 1: keys -----------------------------------------------------------------------

MIN_BITS, MAX_BITS = 256, 8192


def check_modulus(n: int) -> int:
    """The public-key rules, in their order: positive and odd, at least 256 bits, at most 8192
    bits (a bounded cost for the primality test on a hostile n), not prime."""
    if n <= 0 or n % 2 == 0:
        raise ref.Refused("invalidModulus")
    if n.bit_length() < MIN_BITS:
        raise ref.Refused("invalidModulus")
    if n.bit_length() > MAX_BITS:
        raise ref.Refused("invalidModulus")
    if isprime(n):
        raise ref.Refused("invalidModulus")
    return n


def check_factors(p: int, q: int) -> int:
    """The private-key rules, in their order; then n = pq must pass the modulus rules."""
    if p == q:
        raise ref.Refused("invalidPrivateKey")
    if p.bit_length() != q.bit_length():
        raise ref.Refused("invalidPrivateKey")
    if not (isprime(p) and isprime(q)):
        raise ref.Refused("invalidPrivateKey")
    if gcd(p * q, (p - 1) * (q - 1)) != 1:
        raise ref.Refused("invalidPrivateKey")
    return check_modulus(p * q)


def random_bits(g: ref.Generator, bits: int) -> int:
    """A uniform integer below 2^bits: ceil(bits/8) generator bytes read big-endian, mod 2^bits."""
    return int.from_bytes(g.bytes((bits + 7) // 8), "big") % (1 << bits)


def random_prime(g: ref.Generator, bits: int) -> int:
    top = 3 << (bits - 2)
    while True:
        candidate = random_bits(g, bits - 2) + top
        candidate |= 1
        if isprime(candidate):
            return candidate


DEGREES = range(1, 5)


def check_degree(s: int) -> int:
    if s not in DEGREES:
        raise ref.Refused("unsupportedDegree")
    return s


def generate(seed: bytes, bits: int, s: int = 1) -> tuple[int, int]:
    if bits % 2 or not MIN_BITS <= bits <= MAX_BITS:
        raise ref.Refused("unsupportedKeySize")
    check_degree(s)
    g = ref.Generator(seed)
    while True:
        p = random_prime(g, bits // 2)
        q = random_prime(g, bits // 2)
        try:
            n = check_factors(p, q)
        except ref.Refused:
            continue
        if n.bit_length() == bits:
            return p, q


def safe_prime(g: ref.Generator, bits: int) -> int:
    while True:
        half = random_prime(g, bits - 1)
        candidate = 2 * half + 1
        if candidate.bit_length() == bits and isprime(candidate):
            return candidate


def random_below(g: ref.Generator, bound: int) -> int:
    while True:
        candidate = random_bits(g, bound.bit_length())
        if candidate < bound:
            return candidate


def deal(seed: bytes, bits: int, t: int, holders: int, s: int = 1) -> tuple[int, list[int]]:
    if not (1 <= holders <= 64 and 1 <= t <= holders):
        raise ref.Refused("invalidThresholdParameters")
    if bits % 2 or not MIN_BITS <= bits <= MAX_BITS:
        raise ref.Refused("unsupportedKeySize")
    check_degree(s)
    g = ref.Generator(seed)
    p, q = safe_prime(g, bits // 2), safe_prime(g, bits // 2)
    while p == q or (p * q).bit_length() != bits:
        p, q = safe_prime(g, bits // 2), safe_prime(g, bits // 2)
    n = check_modulus(p * q)
    m = (p - 1) // 2 * ((q - 1) // 2)
    d = m * pow(m, -1, n ** s)
    order = n ** s * m
    coefficients = [d] + [random_below(g, order) for _ in range(1, t)]
    shares = []
    for i in range(1, holders + 1):
        value = 0
        for coefficient in reversed(coefficients):
            value = (value * i + coefficient) % order
        shares.append(value)
    return n, shares


def signed(residue: int, n: int) -> int:
    return residue - n if residue > (n - 1) // 2 else residue


def to_residue(m: int, n: int) -> int:
    if abs(m) > (n - 1) // 2:
        raise ref.Refused("plaintextOutOfRange")
    return m % n


def check_ciphertext(c: int, n: int, s: int = 1) -> int:
    if not (0 < c < n ** (s + 1)) or gcd(c, n) != 1:
        raise ref.Refused("ciphertextOutOfRange")
    return c


def dj_log(a: int, n: int, s: int) -> int:
    """i mod n^s with (1 + n)^i = a (mod n^(s+1)), one base-n digit at a time: with i_j = i mod
    n^j known, a·(1 + n)^(−i_j) = (1 + n)^(n^j·k) = 1 + k·n^(j+1) (mod n^(j+2)), and k mod n
    is the next digit."""
    i = 0
    for j in range(s):
        rest = a * pow(1 + n, -i, n ** (j + 2)) % n ** (j + 2)
        assert (rest - 1) % n ** (j + 1) == 0, "not in the subgroup of 1 + n"
        i += ((rest - 1) // n ** (j + 1) % n) * n ** j
    return i


def dj_decrypt(p: int, q: int, s: int, c: int) -> int:
    """m = log(c^λ)·λ^(−1) mod n^s, without CRT."""
    n = p * q
    lam = (p - 1) * (q - 1) // gcd(p - 1, q - 1)
    return dj_log(pow(c, lam, n ** (s + 1)), n, s) * pow(lam, -1, n ** s) % n ** s


def pack(values: list[int], bits: int, max_addends: int, key_bits: int, s: int = 1) -> tuple[int, list[int]]:
    check_degree(s)
    if max_addends < 1:
        raise ref.Refused("invalidPacking")
    slot = bits + (max_addends - 1).bit_length()
    slots = s * (key_bits - 1) // slot
    if slots < 1:
        raise ref.Refused("invalidPacking")
    plaintexts = []
    for start in range(0, len(values), slots):
        plaintexts.append(sum(v << (slot * i) for i, v in enumerate(values[start:start + slots])))
    return slot, plaintexts


def check(group: dict, test: dict, expect) -> None:
    op = test["operation"]
    if op == "generate":
        p, q = generate(bytes.fromhex(test["seed"]), test["keyBits"], test.get("s", 1))
        expect((str(p), str(q), str(p * q)), (test["p"], test["q"], test["n"]), "generated key")
        return
    if op == "deal":
        n, shares = deal(bytes.fromhex(test["seed"]), test["keyBits"], test["threshold"], test["holders"],
                         test.get("s", 1))
        expect(str(n), test["n"], "n")
        expect([(i + 1, str(v)) for i, v in enumerate(shares)], [(s["holder"], s["value"]) for s in test["shares"]], "shares")
        return
    if op == "publicKey":
        check_degree(test.get("s", 1))
        expect(str(check_modulus(int(test["n"]))), test["n"], "n")
        return
    if op == "privateKey":
        expect(str(check_factors(int(test["p"]), int(test["q"]))), test["n"], "n")
        return
    if op in ("pack", "unpack"):
        bits, k, key_bits, s = test["bits"], test["maxAddends"], test["keyBits"], test.get("s", 1)
        values = [int(v) for v in test["vector"]]
        if op == "pack":
            _, plaintexts = pack(values, bits, k, key_bits, s)
            expect([str(p) for p in plaintexts], test["plaintexts"], "plaintexts")
        else:
            if test["addends"] > k:
                raise ref.Refused("tooManyAddends")
            slot, _ = pack([0], bits, k, key_bits, s)
            slots = s * (key_bits - 1) // slot
            out = []
            for p in (int(x) for x in test["plaintexts"]):
                for i in range(slots):
                    if len(out) < len(values):
                        out.append((p >> (slot * i)) % (1 << bits))
            expect(out, values, "unpacked sum")
        return
    if op == "partialDecrypt":
        n, t, holders, s = int(group["n"]), group["threshold"], group["holders"], group.get("s", 1)
        n2, delta = n ** (s + 1), factorial(holders)
        shares = {share["holder"]: int(share["value"]) for share in group["shares"]}
        c = check_ciphertext(int(test["c"]), n, s)
        # Section 6's refusals, in the order given, before the count: strangers, duplicates,
        # partials of another ciphertext, values outside Z*_(n^2).
        if "v" in group:
            check_verified(group, test, expect, n, s, t, holders, shares, c)
            return
        partials = {}
        for given in test["partials"]:
            holder, value = given["holder"], int(given["value"])
            if not 1 <= holder <= holders or holder in partials:
                raise ref.Refused("invalidPartialDecryption")
            if int(given.get("ciphertext") or test["c"]) != c:
                raise ref.Refused("invalidPartialDecryption")
            if not 0 < value < n2 or gcd(value, n) != 1:
                raise ref.Refused("invalidPartialDecryption")
            partials[holder] = value
        if test["result"] == "valid":
            for holder, value in partials.items():
                expect(pow(c, 2 * delta * shares[holder], n2), value, f"partial decryption of holder {holder}")
        if len(partials) < t:
            raise ref.Refused("notEnoughPartialDecryptions")
        chosen = sorted(partials)[:t]
        combined = 1
        for i in chosen:
            mu_num, mu_den = delta, 1
            for j in chosen:
                if j != i:
                    mu_num *= j
                    mu_den *= j - i
            mu = mu_num // mu_den
            combined = combined * pow(partials[i], 2 * mu, n2) % n2  # Python's pow inverts for negative exponents
        m = dj_log(combined, n, s) * pow(4 * delta * delta, -1, n ** s) % n ** s
        expect(signed(m, n ** s), int(test["m"]), "combined plaintext")
        return
    if "s" in group:
        check_damgard_jurik(group, test, expect)
        return

    p, q = int(group["p"]), int(group["q"])
    n = p * q
    public = paillier.PaillierPublicKey(n)
    private = paillier.PaillierPrivateKey(public, p, q)
    if op == "encrypt":
        r = int(test["r"])
        if not (0 < r < n) or gcd(r, n) != 1:
            raise ref.Refused("ciphertextOutOfRange")
        c = public.raw_encrypt(to_residue(int(test["m"]), n), r_value=r)
        expect(str(c), test["c"], "ciphertext")
        expect(signed(private.raw_decrypt(c), n), int(test["m"]), "decryption")
    elif op == "decrypt":
        c = check_ciphertext(int(test["c"]), n)
        expect(signed(private.raw_decrypt(c), n), int(test["m"]), "plaintext")
    elif op == "add":
        c = check_ciphertext(int(test["c1"]), n) * check_ciphertext(int(test["c2"]), n) % (n * n)
        expect(str(c), test["c"], "product")
        expect(signed(private.raw_decrypt(c), n), int(test["m"]), "sum")
    elif op in ("addPlain", "multiply"):
        c1, k = check_ciphertext(int(test["c1"]), n), int(test["k"]) % n
        c = c1 * (1 + k * n) % (n * n) if op == "addPlain" else pow(c1, k, n * n)
        expect(str(c), test["c"], "ciphertext")
        expect(signed(private.raw_decrypt(c), n), int(test["m"]), "plaintext")
    elif op == "djn":
        m = to_residue(int(test["m"]), n)
        c = (1 + m * n) * pow(int(test["base"]), int(test["alpha"]), n * n) % (n * n)
        expect(str(c), test["c"], "ciphertext")
        expect(private.raw_decrypt(c), m, "decryption")
    else:
        raise AssertionError(f"unknown operation {op}")


def check_verified(group, test, expect, n, s, t, holders, shares, c) -> None:
    """Section 6.2: every partial judged alone — a stranger's number, another ciphertext's, a
    value outside Z*_N, no proof or a failing one: left out and its claimed number named; of
    several claiming one number, the first correct one counts."""
    n2, delta = n ** (s + 1), factorial(holders)
    v, keys = int(group["v"]), [int(x) for x in group["verificationKeys"]]
    for holder in range(1, holders + 1):
        expect(pow(v, delta * shares[holder], n2), keys[holder - 1], f"v_{holder}")
    if len(test["partials"]) < t:
        raise ref.Refused("notEnoughPartialDecryptions")
    accepted, rejected = {}, set()
    for given in test["partials"]:
        holder, value = given["holder"], int(given["value"])
        if "r" in given:
            expect(pow(c, 2 * delta * shares[holder], n2), value, f"partial decryption of holder {holder}")
            e, z = prove(n, s, holders, holder, c, value, v, keys[holder - 1], shares[holder], int(given["r"]))
            expect((str(e), str(z)), (given["challenge"], given["response"]), f"proof of holder {holder}")
        correct = (1 <= holder <= holders and int(given.get("ciphertext") or test["c"]) == c
                   and 0 < value < n2 and gcd(value, n) == 1 and "challenge" in given
                   and proof_holds(n, s, holders, holder, c, value, v, keys[holder - 1],
                                   int(given["challenge"]), int(given["response"])))
        if not correct:
            rejected.add(holder)
        elif holder not in accepted:
            accepted[holder] = value
    expect(sorted(rejected), test.get("rejected", []), "holders whose partials fail")
    if len(accepted) < t:
        raise ref.Refused("incorrectPartialDecryptions" if rejected else "notEnoughPartialDecryptions")
    m = combine_partials(n, s, t, holders, accepted)
    expect(signed(m, n ** s), int(test["m"]), "combined plaintext")


def combine_partials(n: int, s: int, t: int, holders: int, accepted: dict) -> int:
    """Section 6.2: the t lowest-numbered of `accepted` (number -> c_i), combined with the
    Lagrange exponents 2 mu_i, mu_i = Delta prod_{j != i} j / (j - i); the plaintext residue."""
    n2, delta = n ** (s + 1), factorial(holders)
    chosen = sorted(accepted)[:t]
    combined = 1
    for i in chosen:
        mu = delta
        for j in chosen:
            if j != i:
                mu = mu * j
        den = 1
        for j in chosen:
            if j != i:
                den *= j - i
        combined = combined * pow(accepted[i], 2 * (mu // den), n2) % n2
    return dj_log(combined, n, s) * pow(4 * delta * delta, -1, n ** s) % n ** s


def proof_challenge(n: int, s: int, holder: int, values: list[int]) -> int:
    """e = SHA-256("veil/v1/paillier/partial-decryption" || 0x00 || LE_4(i) || LE_4(W) || c^4 || c_i^2
    || v || v_i || a || b), big-endian, W = ceil((s + 1)|n| / 8) bytes per value."""
    import hashlib
    width = ((s + 1) * n.bit_length() + 7) // 8
    data = b"veil/v1/paillier/partial-decryption\x00" + holder.to_bytes(4, "little") + width.to_bytes(4, "little")
    return int.from_bytes(hashlib.sha256(data + b"".join(x.to_bytes(width, "big") for x in values)).digest(), "big")


def prove(n, s, holders, holder, c, value, v, vi, share, r) -> tuple[int, int]:
    modulus, delta = n ** (s + 1), factorial(holders)
    c4, ci2 = pow(c, 4, modulus), pow(value, 2, modulus)
    e = proof_challenge(n, s, holder, [c4, ci2, v, vi, pow(c4, r, modulus), pow(v, r, modulus)])
    return e, r + e * delta * share


def proof_holds(n, s, holders, holder, c, value, v, vi, e, z) -> bool:
    """a = c^(4z) c_i^(-2e), b = v^z v_i^(-e); the proof holds when e is their challenge. A
    response outside 0..2^((s+2)|n| + 512 + 257) is refused unread."""
    if not (0 <= e < 2**256 and 0 <= z < 2 ** ((s + 2) * n.bit_length() + 512 + 257)):
        return False
    modulus = n ** (s + 1)
    c4, ci2 = pow(c, 4, modulus), pow(value, 2, modulus)
    a = pow(c4, z, modulus) * pow(ci2, -e, modulus) % modulus
    b = pow(v, z, modulus) * pow(vi, -e, modulus) % modulus
    return proof_challenge(n, s, holder, [c4, ci2, v, vi, a, b]) == e


def check_damgard_jurik(group: dict, test: dict, expect) -> None:
    """Section 9's operations on a key with s > 1, by pow and c^λ (see the module's comment)."""
    op, s = test["operation"], group["s"]
    p, q = int(group["p"]), int(group["q"])
    n = check_factors(p, q)
    plain, modulus = n ** s, n ** (s + 1)
    decrypt = lambda c: signed(dj_decrypt(p, q, s, c), plain)
    if op == "encrypt":
        m, r = to_residue(int(test["m"]), plain), int(test["r"])
        if not (0 < r < n) or gcd(r, n) != 1:
            raise ref.Refused("ciphertextOutOfRange")
        c = pow(1 + n, m, modulus) * pow(r, plain, modulus) % modulus
        expect(str(c), test["c"], "ciphertext")
        expect(decrypt(c), int(test["m"]), "decryption")
    elif op == "decrypt":
        expect(decrypt(check_ciphertext(int(test["c"]), n, s)), int(test["m"]), "plaintext")
    elif op == "add":
        c = check_ciphertext(int(test["c1"]), n, s) * check_ciphertext(int(test["c2"]), n, s) % modulus
        expect(str(c), test["c"], "product")
        expect(decrypt(c), int(test["m"]), "sum")
    elif op in ("addPlain", "multiply"):
        c1, k = check_ciphertext(int(test["c1"]), n, s), int(test["k"]) % plain
        c = c1 * pow(1 + n, k, modulus) % modulus if op == "addPlain" else pow(c1, k, modulus)
        expect(str(c), test["c"], "ciphertext")
        expect(decrypt(c), int(test["m"]), "plaintext")
    elif op == "djn":
        m = to_residue(int(test["m"]), plain)
        c = pow(1 + n, m, modulus) * pow(int(test["base"]), int(test["alpha"]), modulus) % modulus
        expect(str(c), test["c"], "ciphertext")
        expect(decrypt(c), int(test["m"]), "decryption")
    else:
        raise AssertionError(f"unknown operation {op}")


# --- Masked sessions (Specs/paillier.md §6.1) ------------------------------------------

def _le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


class Session:
    """A session recomputed from its inputs: PyNaCl for Ed25519 and the X25519 form of its keys,
    veil_reference for VeilKDF and the ChaCha20 generator, phe for decryption, plain integers
    for DJN, masks and packing."""

    def __init__(self, group: dict):
        import hashlib
        import nacl.bindings as sodium
        self.sodium, self.hashlib = sodium, hashlib
        self.p, self.q = int(group["p"]), int(group["q"])
        self.n = self.p * self.q
        self.n2 = self.n * self.n
        self.key_bits = self.n.bit_length()
        self.n_bytes = (self.key_bits + 7) // 8
        self.bits, self.k, self.d = group["bits"], group["maxAddends"], group["dimension"]
        self.slot = self.bits + (self.k - 1).bit_length()
        self.slots = (self.key_bits - 1) // self.slot
        self.count = -(-self.d // self.slots)
        identity = lambda seed: sodium.crypto_sign_seed_keypair(bytes.fromhex(seed))
        coordinator_pk, self.coordinator_sk = identity(group["coordinatorSeed"])
        self.members = [identity(seed) for seed in group["memberSeeds"]]
        self.base = int(group["djnBase"])
        self.inputs = [[int(v) for v in values] for values in group["inputs"]]
        self.exponents = [[int(a) for a in alphas] for alphas in group["exponents"]]
        prefix = (bytes.fromhex(group["nonce"]) + _le(int(group["round"]), 8) + _le(len(self.members), 4)
                  + bytes([self.bits]) + _le(self.k, 4) + _le(self.d, 4) + _le(self.n_bytes, 4)
                  + self.n.to_bytes(self.n_bytes, "big"))
        suffix = coordinator_pk + b"".join(pk for pk, _ in self.members) + bytes.fromhex(group["context"])
        self.threshold = group.get("threshold")
        if self.threshold is None:
            self.holder_pk, self.holder_sk = identity(group["keyHolderSeed"])
            self.id = hashlib.sha256(b"veil/v1/paillier/session\x00" + prefix + self.holder_pk + suffix).digest()
            return
        # Section 6.3: the threshold key, its holders, and the threshold session id.
        th = self.threshold
        self.t, self.l = th["t"], th["holders"]
        if 2 * self.t <= self.l:
            raise ref.Refused("malformed")  # §6.3: sessions need any two quorums to share a holder
        self.v, self.vkeys = int(th["v"]), [int(x) for x in th["verificationKeys"]]
        self.shares = [int(x) for x in th["shares"]]
        self.delta = factorial(self.l)
        for i, share in enumerate(self.shares):
            if pow(self.v, self.delta * share, self.n2) != self.vkeys[i]:
                raise AssertionError(f"share {i + 1} does not match v_{i + 1}")
        self.holders = [identity(seed) for seed in th["holderSeeds"]]
        self.named = sorted(th["named"])
        self.r = [[int(x) for x in row] for row in th["proofRandomness"]]
        width = (2 * self.key_bits + 7) // 8
        self.encoding = (b"veil/v1/paillier/threshold-key\x00" + _le(1, 4) + _le(self.t, 4) + _le(self.l, 4)
                         + _le(self.n_bytes, 4) + self.n.to_bytes(self.n_bytes, "big") + _le(width, 4)
                         + b"".join(x.to_bytes(width, "big") for x in [self.v] + self.vkeys))
        holders = _le(len(self.named), 4) + b"".join(_le(i, 4) + self.holders[i - 1][0] for i in self.named)
        self.id = hashlib.sha256(b"veil/v1/paillier/threshold-session\x00" + prefix
                                 + hashlib.sha256(self.encoding).digest() + holders + suffix).digest()

    def statement(self) -> bytes:
        return b"veil/v1/paillier/public-key\x00" + _le(self.n_bytes, 4) + self.n.to_bytes(self.n_bytes, "big")

    def sign(self, secret_key: bytes, message: bytes) -> bytes:
        return self.sodium.crypto_sign(message, secret_key)[:64]

    def mask(self, a: int) -> list[int]:
        own = self.sodium.crypto_sign_ed25519_sk_to_curve25519(self.members[a - 1][1])
        width = (self.key_bits + 128 + 7) // 8
        total = [0] * self.count
        for b in range(1, len(self.members) + 1):
            if b == a:
                continue
            peer = self.sodium.crypto_sign_ed25519_pk_to_curve25519(self.members[b - 1][0])
            shared = self.sodium.crypto_scalarmult(own, peer)
            seed = ref.veil_kdf(shared, "paillier/pairwise-seed", salt=self.id, context=_le(min(a, b), 4) + _le(max(a, b), 4))
            stream = ref.Generator(seed)
            for j in range(self.count):
                m = int.from_bytes(stream.bytes(width), "big") % self.n
                total[j] = (total[j] + m if a < b else total[j] - m) % self.n
        return total

    def contribution(self, a: int) -> tuple[list[int], bytes, bytes]:
        _, plaintexts = pack(self.inputs[a - 1], self.bits, self.k, self.key_bits)
        masks = self.mask(a)
        ciphertexts = []
        for j, plaintext in enumerate(plaintexts):
            masked = (plaintext + masks[j]) % self.n
            ciphertexts.append((1 + masked * self.n) * pow(self.base, self.exponents[a - 1][j], self.n2) % self.n2)
        width = (2 * self.key_bits + 7) // 8
        digest = self.hashlib.sha256(b"".join(c.to_bytes(width, "big") for c in ciphertexts)).digest()
        receipt = b"veil/v1/paillier/receipt\x00" + self.id + _le(a, 4) + digest
        return ciphertexts, digest, self.sign(self.members[a - 1][1], receipt)

    def decrypt(self, test: dict) -> tuple[list[int], bytes]:
        aggregate = self.checked_aggregate(test)
        private = paillier.PaillierPrivateKey(paillier.PaillierPublicKey(self.n), self.p, self.q)
        out = self.unpack([private.raw_decrypt(c) for c in aggregate])
        # paillier.md §6.1: the key holder signs the sum it released for this aggregate.
        released = (b"veil/v1/paillier/decrypted\x00" + self.id + self.aggregate_digest(aggregate)
                    + b"".join(_le(v, 8) for v in out))
        return out, self.sign(self.holder_sk, released)

    def unpack(self, plaintexts: list[int]) -> list[int]:
        out = []
        for m in plaintexts:
            for slot in range(self.slots):
                if len(out) < self.d:
                    out.append((m >> (slot * self.slot)) & ((1 << self.bits) - 1))
        return out

    def aggregate_digest(self, aggregate: list[int]) -> bytes:
        width = (2 * self.key_bits + 7) // 8
        return self.hashlib.sha256(b"".join(c.to_bytes(width, "big") for c in aggregate)).digest()

    def partials(self, holder: int, aggregate: list[int]) -> list[bytes]:
        """Section 6.3: holder i's partial c^(2 Delta s_i) mod N^2 of each ciphertext with its
        proof from the given r, as value (W bytes) || e (32) || z (ceil((3|N| + 512 + 257)/8))."""
        width = (2 * self.key_bits + 7) // 8
        z_width = (3 * self.key_bits + 512 + 257 + 7) // 8
        out = []
        for j, c in enumerate(aggregate):
            value = pow(c, 2 * self.delta * self.shares[holder - 1], self.n2)
            e, z = prove(self.n, 1, self.l, holder, c, value, self.v, self.vkeys[holder - 1],
                         self.shares[holder - 1], self.r[holder - 1][j])
            out.append(value.to_bytes(width, "big") + e.to_bytes(32, "big") + z.to_bytes(z_width, "big"))
        return out

    def partial(self, test: dict) -> tuple[list[bytes], bytes]:
        holder = test["holder"]
        if holder not in self.named:
            raise ref.Refused("notThisKeyHolder")
        aggregate = self.checked_aggregate(test)
        wire = self.partials(holder, aggregate)
        answer = (b"veil/v1/paillier/partially-decrypted\x00" + self.id + self.aggregate_digest(aggregate)
                  + _le(holder, 4) + self.hashlib.sha256(b"".join(wire)).digest())
        return wire, self.sign(self.holders[holder - 1][1], answer)

    def combine(self, test: dict) -> tuple[list[int], list[int]]:
        """The coordinator's combination (section 6.3): each holder judged on all its partials,
        the t lowest-numbered correct ones combined; checked against phe's decryption too."""
        everyone = list(range(1, len(self.members) + 1))
        aggregate = self.checked_aggregate({"minimumContributors": len(everyone), "receiptsOf": everyone,
                                            "aggregateOf": everyone})
        width = (2 * self.key_bits + 7) // 8
        values, rejected = {}, []
        for holder in test["answers"]:
            wire = self.partials(holder, aggregate)
            if holder == test.get("cheat"):
                wrong = int.from_bytes(wire[0][:width], "big") * (1 + self.n) % self.n2
                wire[0] = wrong.to_bytes(width, "big") + wire[0][width:]
            parsed = [(int.from_bytes(w[:width], "big"), int.from_bytes(w[width:width + 32], "big"),
                       int.from_bytes(w[width + 32:], "big")) for w in wire]
            if holder in self.named and all(
                    proof_holds(self.n, 1, self.l, holder, c, value, self.v, self.vkeys[holder - 1], e, z)
                    for c, (value, e, z) in zip(aggregate, parsed)):
                values[holder] = [value for value, _, _ in parsed]
            else:
                rejected.append(holder)
        if len(values) < self.t:
            raise ref.Refused("incorrectPartialDecryptions" if rejected else "notEnoughPartialDecryptions")
        plaintexts = [combine_partials(self.n, 1, self.t, self.l, {i: values[i][j] for i in values})
                      for j in range(len(aggregate))]
        private = paillier.PaillierPrivateKey(paillier.PaillierPublicKey(self.n), self.p, self.q)
        if plaintexts != [private.raw_decrypt(c) for c in aggregate]:
            raise AssertionError("the threshold combination is not phe's decryption")
        return self.unpack(plaintexts), sorted(rejected)

    def checked_aggregate(self, test: dict) -> list[int]:
        """Section 6.1: enough members, a valid receipt from each; the product of aggregateOf's
        ciphertexts."""
        members = len(self.members)
        if members < test["minimumContributors"]:
            raise ref.Refused("tooFewMembers")
        parts = {a: self.contribution(a) for a in range(1, members + 1)}
        seen = set()
        for position in test["receiptsOf"]:
            _, digest, signature = parts[position]
            if position == test.get("forged"):
                signature = bytes([signature[0] ^ 1]) + signature[1:]
            message = b"veil/v1/paillier/receipt\x00" + self.id + _le(position, 4) + digest
            try:
                self.sodium.crypto_sign_open(signature + message, self.members[position - 1][0])
            except Exception:
                raise ref.Refused("invalidReceipt") from None
            seen.add(position)
        for position in range(1, members + 1):
            if position not in seen:
                raise ref.Refused("missingReceipt")
        aggregate = [1] * self.count
        for a in test["aggregateOf"]:
            aggregate = [x * y % self.n2 for x, y in zip(aggregate, parts[a][0])]
        return aggregate


def check_session(group: dict, test: dict, expect) -> None:
    s = Session(group)
    kind = test["kind"]
    if kind == "statement":
        expect(s.sign(s.holder_sk, s.statement()).hex(), test["signature"], "signature")
        expect(s.hashlib.sha256(s.statement()).hexdigest(), test["fingerprint"], "fingerprint")
    elif kind == "session":
        expect(s.id.hex(), test["sessionId"], "sessionId")
        expect(s.sign(s.coordinator_sk, b"veil/v1/paillier/assignment\x00" + s.id).hex(), test["signature"], "signature")
    elif kind == "contribution":
        a = test["member"]
        expect([str(m) for m in s.mask(a)], test["masks"], "masks")
        ciphertexts, digest, signature = s.contribution(a)
        expect([str(c) for c in ciphertexts], test["ciphertexts"], "ciphertexts")
        expect(digest.hex(), test["receiptDigest"], "receiptDigest")
        expect(signature.hex(), test["signature"], "signature")
    elif kind == "decrypt":
        total, signature = s.decrypt(test)
        expect([str(v) for v in total], test.get("sum"), "sum")
        expect(signature.hex(), test.get("signature"), "signature")
    elif kind == "thresholdKey":
        expect(s.encoding.hex(), test["encoding"], "encoding")
        expect(s.hashlib.sha256(s.encoding).hexdigest(), test["fingerprint"], "fingerprint")
        statements = [s.sign(sk, b"veil/v1/paillier/threshold-share\x00" + s.hashlib.sha256(s.encoding).digest()
                             + _le(i + 1, 4)).hex() for i, (_, sk) in enumerate(s.holders)]
        expect(statements, test["statements"], "statements")
    elif kind == "partial":
        wire, signature = s.partial(test)
        expect([w.hex() for w in wire], test.get("partials"), "partials")
        expect(signature.hex(), test.get("signature"), "signature")
    elif kind == "combine":
        total, rejected = s.combine(test)
        expect([str(v) for v in total], test.get("sum"), "sum")
        expect(rejected, test.get("rejected", []), "rejected")
    else:
        raise AssertionError(f"unknown kind {kind}")
