"""An independent check of Veil's Paillier vectors, written from Specs/paillier.md.

Encryption with given randomness, decryption and homomorphic addition go through
python-paillier (`phe`); DJN encryption, packing and threshold combination, which phe does
not offer, are plain Python integers here.
"""

from __future__ import annotations

from math import factorial

from phe import paillier

import veil_reference as ref


def signed(residue: int, n: int) -> int:
    return residue - n if residue > (n - 1) // 2 else residue


def to_residue(m: int, n: int) -> int:
    if abs(m) > (n - 1) // 2:
        raise ref.Refused("plaintextOutOfRange")
    return m % n


def check_ciphertext(c: int, n: int) -> int:
    from math import gcd
    if not (0 < c < n * n) or gcd(c, n) != 1:
        raise ref.Refused("ciphertextOutOfRange")
    return c


def pack(values: list[int], bits: int, max_addends: int, key_bits: int) -> tuple[int, list[int]]:
    if max_addends < 1:
        raise ref.Refused("invalidPacking")
    slot = bits + (max_addends - 1).bit_length()
    slots = (key_bits - 1) // slot
    if slots < 1:
        raise ref.Refused("invalidPacking")
    plaintexts = []
    for start in range(0, len(values), slots):
        plaintexts.append(sum(v << (slot * i) for i, v in enumerate(values[start:start + slots])))
    return slot, plaintexts


def check(group: dict, test: dict, expect) -> None:
    op = test["operation"]
    if op in ("pack", "unpack"):
        bits, k, key_bits = test["bits"], test["maxAddends"], test["keyBits"]
        values = [int(v) for v in test["vector"]]
        if op == "pack":
            _, plaintexts = pack(values, bits, k, key_bits)
            expect([str(p) for p in plaintexts], test["plaintexts"], "plaintexts")
        else:
            if test["addends"] > k:
                raise ref.Refused("tooManyAddends")
            slot, _ = pack([0], bits, k, key_bits)
            slots = (key_bits - 1) // slot
            out = []
            for p in (int(x) for x in test["plaintexts"]):
                for i in range(slots):
                    if len(out) < len(values):
                        out.append((p >> (slot * i)) % (1 << bits))
            expect(out, values, "unpacked sum")
        return
    if op == "partialDecrypt":
        n, t, holders = int(group["n"]), group["threshold"], group["holders"]
        n2, delta = n * n, factorial(holders)
        shares = {s["holder"]: int(s["value"]) for s in group["shares"]}
        c = check_ciphertext(int(test["c"]), n)
        partials = {p["holder"]: int(p["value"]) for p in test["partials"]}
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
        m = (combined - 1) // n * pow(4 * delta * delta, -1, n) % n
        expect(signed(m, n), int(test["m"]), "combined plaintext")
        return

    p, q = int(group["p"]), int(group["q"])
    n = p * q
    public = paillier.PaillierPublicKey(n)
    private = paillier.PaillierPrivateKey(public, p, q)
    if op == "encrypt":
        r = int(test["r"])
        from math import gcd
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
