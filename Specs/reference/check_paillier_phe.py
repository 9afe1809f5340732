#!/usr/bin/env python3
"""Interoperability of Veil's Paillier with python-paillier (`phe`), through the `veil` CLI.

For 2048- and 3072-bit keys made by `veil paillier keygen`:
- ciphertexts made by `veil paillier encrypt` decrypt correctly in phe;
- ciphertexts made by phe decrypt correctly with `veil paillier decrypt`;
- `veil paillier add` of a Veil file and a phe file decrypts, in phe, to the element-wise sums;
- a batch of 40 (encrypted with the fixed-base table) decrypts correctly in phe;
- packed files in the veil format (Specs/paillier.md §8.1), summed by Veil, have the header the
  spec gives and decrypt in phe, unpacked and sign-decoded here from the spec's text, to the
  exact signed sums (and `veil paillier decrypt` agrees);
- with --damgard-jurik 3 (Specs/paillier.md §9), which phe does not implement: packed files
  summed by Veil decrypt here, by c^λ and the base-n logarithm of paillier_reference.py, to the
  exact signed sums, with the header and line width §8.1 and §9 give; and a veil file written
  here, (1 + n)^m·r^(n³) mod n⁴, decrypts with `veil paillier decrypt --damgard-jurik 3`;
- threshold decryption (§6.2, §8.2): a 2-of-3 key dealt by `veil paillier deal`, ciphertexts
  made by phe, each holder's `partial-decrypt` output checked here — every proof by
  paillier_reference.proof_holds, every share against its verification key, and two holders'
  partials combined here to the plaintexts; a partial forged here (times 1 + n, its proof kept)
  makes `veil paillier combine` name that holder and still decrypt from the other two.
Both use g = n + 1. Exits 1 on any difference. Usage: check_paillier_phe.py [PATH_TO_VEIL]
"""

from __future__ import annotations

import base64
import json
import pathlib
import random
import subprocess
import sys
import tempfile

from phe import paillier

import paillier_reference

ROOT = pathlib.Path(__file__).resolve().parents[2]


def veil(binary: str, *args: str) -> str:
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout


def signed(value: int, n: int) -> int:
    return value - n if value > (n - 1) // 2 else value


def check_packed_files(binary, d, bits, n, private_key, rng) -> int:
    count, addends, value_bits = 120, 3, 32
    parties = [[rng.randrange(-(2**31), 2**31) for _ in range(count)] for _ in range(addends)]
    parties[0][:2] = [-(2**31), 2**31 - 1]
    parties[1][:2] = [-(2**31), 2**31 - 1]
    parties[2][:2] = [-(2**31), 2**31 - 1]
    files = []
    for i, values in enumerate(parties):
        (d / f"values{i}.txt").write_text("".join(f"{v}\n" for v in values))
        text = veil(binary, "paillier", "encrypt", "--public", str(d / "public.json"), "--input", str(d / f"values{i}.txt"),
                    "--format", "veil", "--pack", "--addends", str(addends))
        (d / f"packed{i}.txt").write_text(text)
        files.append(str(d / f"packed{i}.txt"))
    summed = veil(binary, "paillier", "add", "--public", str(d / "public.json"), *files)
    header, *lines = [line for line in summed.split("\n") if line]
    headroom = (addends - 1).bit_length()  # ⌈log₂ K⌉
    w = value_bits + headroom
    s = w + headroom
    slots = (bits - 1) // s
    fingerprint = veil(binary, "paillier", "fingerprint", "--public", str(d / "public.json")).strip()
    expected_header = ('{"format":"veil-paillier-ciphertexts/1","key":"' + fingerprint + '","count":'
                       + str(-(-count // slots)) + ',"summed":3,"packing":{"value_bits":32,"addends":3,"values":120}}')
    failures = 0
    if header != expected_header:
        print(f"FAIL {bits}: the summed file's header is {header}, §8.1 gives {expected_header}")
        failures += 1
    values = []
    for line in lines:
        raw = base64.b64decode(line, validate=True)
        if len(raw) != (2 * bits + 7) // 8 or base64.b64encode(raw).decode() != line:
            print(f"FAIL {bits}: a ciphertext line is not the canonical base64 of {(2 * bits + 7) // 8} bytes")
            return failures + 1
        m = private_key.raw_decrypt(int.from_bytes(raw, "big"))
        for slot in range(slots):
            y = (m >> (s * slot)) % 2**w
            values.append(y - 2**w if y >= 2 ** (w - 1) else y)
    expected = [sum(column) for column in zip(*parties)]
    if values[:count] != expected or any(values[count:]):
        print(f"FAIL {bits}: the packed sum unpacks to {values[:3]}… instead of {expected[:3]}…")
        failures += 1
    (d / "packed-sum.txt").write_text(summed)
    from_veil = [int(x) for x in veil(binary, "paillier", "decrypt", "--secret", str(d / "secret.json"), str(d / "packed-sum.txt")).split()]
    if from_veil != expected:
        print(f"FAIL {bits}: veil paillier decrypt gives {from_veil[:3]}… for the packed sum, not {expected[:3]}…")
        failures += 1
    return failures


def check_damgard_jurik(binary, d, bits, n, p, q, rng, s=3) -> int:
    """§9 through the CLI: Veil's packed files decrypted here, and a file written here decrypted by Veil."""
    count, addends, value_bits = 200, 3, 32
    parties = [[rng.randrange(-(2**31), 2**31) for _ in range(count)] for _ in range(addends)]
    files = []
    for i, values in enumerate(parties):
        (d / f"dj{i}.txt").write_text("".join(f"{v}\n" for v in values))
        (d / f"dj-packed{i}.txt").write_text(veil(
            binary, "paillier", "encrypt", "--public", str(d / "public.json"), "--damgard-jurik", str(s),
            "--input", str(d / f"dj{i}.txt"), "--format", "veil", "--pack", "--addends", str(addends)))
        files.append(str(d / f"dj-packed{i}.txt"))
    summed = veil(binary, "paillier", "add", "--public", str(d / "public.json"), "--damgard-jurik", str(s), *files)
    header, *lines = [line for line in summed.split("\n") if line]
    headroom = (addends - 1).bit_length()
    w = value_bits + headroom
    slot = w + headroom
    slots = s * (bits - 1) // slot  # plaintexts below 2^(s(|n|-1)) <= n^s
    width = ((s + 1) * bits + 7) // 8
    fingerprint = veil(binary, "paillier", "fingerprint", "--public", str(d / "public.json")).strip()
    expected_header = ('{"format":"veil-paillier-ciphertexts/1","key":"' + fingerprint + '","damgard_jurik":' + str(s)
                       + ',"count":' + str(-(-count // slots)) + ',"summed":3,"packing":{"value_bits":32,"addends":3,"values":'
                       + str(count) + '}}')
    failures = 0
    if header != expected_header:
        print(f"FAIL {bits}, s = {s}: the summed file's header is {header}, §8.1 and §9 give {expected_header}")
        failures += 1
    values = []
    for line in lines:
        raw = base64.b64decode(line, validate=True)
        if len(raw) != width:
            print(f"FAIL {bits}, s = {s}: a ciphertext line holds {len(raw)} bytes, not {width}")
            return failures + 1
        m = paillier_reference.dj_decrypt(p, q, s, int.from_bytes(raw, "big"))
        for i in range(slots):
            y = (m >> (slot * i)) % 2**w
            values.append(y - 2**w if y >= 2 ** (w - 1) else y)
    expected = [sum(column) for column in zip(*parties)]
    if values[:count] != expected or any(values[count:]):
        print(f"FAIL {bits}, s = {s}: the packed sum unpacks to {values[:3]}… instead of {expected[:3]}…")
        failures += 1
    # Written here, decrypted by Veil: signed values up to ±(n^s - 1)/2, unpacked.
    plain, modulus = n ** s, n ** (s + 1)
    mine = [0, -1, 2**200, -(plain - 1) // 2, (plain - 1) // 2] + [rng.randrange(-(plain // 2), plain // 2) for _ in range(5)]
    ciphertexts = []
    for v in mine:
        r = rng.randrange(2, n)
        ciphertexts.append(pow(1 + n, v % plain, modulus) * pow(r, plain, modulus) % modulus)
    (d / "dj-mine.txt").write_text(
        '{"format":"veil-paillier-ciphertexts/1","key":"' + fingerprint + '","damgard_jurik":' + str(s) + ',"count":'
        + str(len(mine)) + ',"summed":1}\n' + "".join(base64.b64encode(c.to_bytes(width, "big")).decode() + "\n" for c in ciphertexts))
    from_veil = [int(x) for x in veil(binary, "paillier", "decrypt", "--secret", str(d / "secret.json"),
                                      "--damgard-jurik", str(s), str(d / "dj-mine.txt")).split()]
    if from_veil != mine:
        print(f"FAIL {bits}, s = {s}: veil decrypted this script's ciphertexts to {from_veil[:3]}… instead of {mine[:3]}…")
        failures += 1
    return failures


def check_threshold(binary, rng) -> int:
    from math import factorial
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        d = pathlib.Path(tmp)
        veil(binary, "paillier", "deal", "--threshold", "2", "--holders", "3", "--out", str(d / "dealt"))
        key = json.loads((d / "dealt" / "threshold.json").read_text())
        n, s, t, holders = int(key["n"]), key["damgard_jurik"], key["threshold"], key["holders"]
        v, keys = int(key["v"]), [int(x) for x in key["verification_keys"]]
        n2, delta = n * n, factorial(holders)
        public_key = paillier.PaillierPublicKey(n)
        values = [0, -5, 2**40 + 3, -(2**62)]
        ciphertexts = [public_key.raw_encrypt(x % n) for x in values]
        (d / "c.txt").write_text("".join(f"{c}\n" for c in ciphertexts))
        partials = {}
        for i in range(1, holders + 1):
            share = int(json.loads((d / "dealt" / f"share-{i}.json").read_text())["share"])
            if pow(v, delta * share, n2) != keys[i - 1]:
                print(f"FAIL threshold: holder {i}'s share does not match v_{i}")
                failures += 1
            text = veil(binary, "paillier", "partial-decrypt", "--key", str(d / "dealt" / "threshold.json"),
                        "--share", str(d / "dealt" / f"share-{i}.json"), str(d / "c.txt"))
            (d / f"p{i}.json").write_text(text)
            file = json.loads(text)
            partials[i] = [int(p["value"]) for p in file["partials"]]
            for c, p in zip(ciphertexts, file["partials"]):
                value = int(p["value"])
                if value != pow(c, 2 * delta * share, n2) or not paillier_reference.proof_holds(
                        n, s, holders, i, c, value, v, keys[i - 1], int(p["challenge"]), int(p["response"])):
                    print(f"FAIL threshold: holder {i}'s partial or its proof is wrong")
                    failures += 1
        # Holders 1 and 3 combined here (section 6): mu_i = delta * prod j / (j - i).
        decrypted = []
        for j, c in enumerate(ciphertexts):
            combined = 1
            for i, other in ((1, 3), (3, 1)):
                mu = delta * other // (other - i)
                combined = combined * pow(partials[i][j], 2 * mu, n2) % n2
            m = (combined - 1) // n * pow(4 * delta * delta, -1, n) % n
            decrypted.append(signed(m, n))
        if decrypted != values:
            print(f"FAIL threshold: the partials combine here to {decrypted}, not {values}")
            failures += 1
        forged = json.loads((d / "p2.json").read_text())
        forged["partials"][1]["value"] = str(int(forged["partials"][1]["value"]) * (1 + n) % n2)
        (d / "forged.json").write_text(json.dumps(forged))
        done = subprocess.run([binary, "paillier", "combine", "--key", str(d / "dealt" / "threshold.json"), str(d / "c.txt"),
                               str(d / "forged.json"), str(d / "p3.json"), str(d / "p1.json")],
                              capture_output=True, text=True)
        if done.returncode != 0 or [int(x) for x in done.stdout.split()] != values \
                or "holder 2: the proof of correct decryption fails for ciphertext(s) 2; left out" not in done.stderr:
            print(f"FAIL threshold: combine with a forged partial of holder 2 gave {done.returncode}, "
                  f"{done.stdout.split()}, {done.stderr.strip()}")
            failures += 1
    print("threshold decryption, 2 of 3, 2048-bit key: shares, partials and proofs checked here, the forger named: "
          + ("agree" if failures == 0 else "DIFFER"))
    return failures


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build" / "debug" / "veil")
    rng = random.Random(20261129)
    failures = 0
    for bits in (2048, 3072):
        with tempfile.TemporaryDirectory() as tmp:
            d = pathlib.Path(tmp)
            veil(binary, "paillier", "keygen", "--bits", str(bits), "--out", str(d))
            n = int(json.loads((d / "public.json").read_text())["n"])
            secret = json.loads((d / "secret.json").read_text())
            public_key = paillier.PaillierPublicKey(n)
            private_key = paillier.PaillierPrivateKey(public_key, int(secret["p"]), int(secret["q"]))
            assert public_key.g == n + 1

            values = [0, 1, -1, 2**31 - 1, -(2**31), 123456789, (n - 1) // 2, -((n - 1) // 2)]
            values += [rng.randrange(-(n // 2), n // 2) for _ in range(8)]
            arguments = ",".join(str(v) for v in values)

            # Veil → phe
            veil_ciphertexts = veil(binary, "paillier", "encrypt", "--public", str(d / "public.json"), "--values", arguments).split()
            decrypted = [signed(private_key.raw_decrypt(int(c)), n) for c in veil_ciphertexts]
            if decrypted != values:
                failures += 1
                print(f"FAIL {bits}: phe decrypted Veil's ciphertexts to {decrypted[:3]}… instead of {values[:3]}…")

            # phe → Veil
            others = [rng.randrange(-(2**40), 2**40) for _ in values]
            (d / "phe.txt").write_text("".join(f"{public_key.raw_encrypt(v % n)}\n" for v in others))
            from_veil = [int(x) for x in veil(binary, "paillier", "decrypt", "--secret", str(d / "secret.json"), str(d / "phe.txt")).split()]
            if from_veil != others:
                failures += 1
                print(f"FAIL {bits}: Veil decrypted phe's ciphertexts to {from_veil[:3]}… instead of {others[:3]}…")

            # Veil + phe, added by Veil, decrypted by phe
            (d / "veil.txt").write_text("\n".join(veil_ciphertexts) + "\n")
            sums = veil(binary, "paillier", "add", "--public", str(d / "public.json"), str(d / "veil.txt"), str(d / "phe.txt")).split()
            decrypted_sums = [signed(private_key.raw_decrypt(int(c)), n) for c in sums]
            expected = [signed((a + b) % n, n) for a, b in zip(values, others)]
            if decrypted_sums != expected:
                failures += 1
                print(f"FAIL {bits}: the homomorphic sums decrypt to {decrypted_sums[:3]}… instead of {expected[:3]}…")
            # A batch large enough for the fixed-base table (Specs/paillier.md §8), decrypted by phe.
            batch = [rng.randrange(-(2**63), 2**63) for _ in range(40)]
            (d / "batch.txt").write_text("".join(f"{v}\n" for v in batch))
            table_ciphertexts = veil(binary, "paillier", "encrypt", "--public", str(d / "public.json"), "--input", str(d / "batch.txt")).split()
            if [signed(private_key.raw_decrypt(int(c)), n) for c in table_ciphertexts] != batch:
                failures += 1
                print(f"FAIL {bits}: phe does not decrypt Veil's table-encrypted batch")

            # The veil format, packed, read from Specs/paillier.md §8.1 alone: three files of
            # signed 32-bit values (the extremes included) summed by Veil, the header checked, each
            # base64 line decoded and decrypted by phe, the slots unpacked and sign-decoded here.
            failures += check_packed_files(binary, d, bits, n, private_key, rng)
            failures += check_damgard_jurik(binary, d, bits, n, int(secret["p"]), int(secret["q"]), rng)
            print(f"phe interoperability, {bits}-bit key: {len(values)} values each way, {len(values)} sums, "
                  + "a table batch, packed veil files, Damgård–Jurik s = 3 files both ways: "
                  + ("agree" if failures == 0 else "DIFFER"))
    failures += check_threshold(binary, rng)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
