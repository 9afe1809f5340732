#!/usr/bin/env python3
"""Interoperability of Veil's Paillier with python-paillier (`phe`), through the `veil` CLI.

For 2048- and 3072-bit keys made by `veil paillier keygen`:
- ciphertexts made by `veil paillier encrypt` decrypt correctly in phe;
- ciphertexts made by phe decrypt correctly with `veil paillier decrypt`;
- `veil paillier add` of a Veil file and a phe file decrypts, in phe, to the element-wise sums.
Both use g = n + 1. Exits 1 on any difference. Usage: check_paillier_phe.py [PATH_TO_VEIL]
"""

from __future__ import annotations

import json
import pathlib
import random
import subprocess
import sys
import tempfile

from phe import paillier

ROOT = pathlib.Path(__file__).resolve().parents[2]


def veil(binary: str, *args: str) -> str:
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout


def signed(value: int, n: int) -> int:
    return value - n if value > (n - 1) // 2 else value


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
            print(f"phe interoperability, {bits}-bit key: {len(values)} values each way, {len(values)} sums: "
                  + ("agree" if failures == 0 else "DIFFER"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
