#!/usr/bin/env python3
"""`veil paillier` against python-paillier (phe) on the same key and the same values.

    Scripts/bench-paillier-cli.py [--parties P] [--values N] [--veil PATH] [--without-phe]
    Scripts/bench-paillier-cli.py --add-only [--repeat K] [--parties P] [--values N] [--veil PATH]

P parties (default 10) each encrypt N signed 32-bit values (default 10,000), the files are
summed element-wise, and the sum is decrypted; every result is checked against the plain sum.
Timed: phe (with gmpy2 when installed, as phe itself chooses), `veil paillier` in the decimal
format, `veil paillier` with `--pack --addends P` in the veil format, and the same with
`--damgard-jurik 3` (Specs/paillier.md §9). Prints each step's seconds and the ratio phe/veil,
end to end and per step (`--without-phe`: Veil's modes only, each against the packed one). Build veil optimised for the figures
the README quotes (`swift build -c release`). phe is slow: 10,000 values take it about two
minutes per party here.

`--add-only` times the add step alone in the decimal format, where phe's own encryption would
take most of an hour: the P files are encrypted by `veil paillier encrypt` (the same format phe
writes and reads), then phe's add and `veil paillier add` sum them alternately K times
(default 3); both sums are checked by decrypting with phe. Prints each run and the range of
the ratios.
"""

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import phe

ROOT = Path(__file__).resolve().parents[1]


def timed(action):
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def veil(binary, *args, out=None):
    if out:
        with open(out, "wb") as sink:
            done = subprocess.run([binary, *map(str, args)], stdout=sink, check=False)
    else:
        done = subprocess.run([binary, *map(str, args)], stdout=subprocess.PIPE, check=False)
    if done.returncode != 0:
        sys.exit(f"veil {' '.join(map(str, args))} failed with {done.returncode}")
    return done.stdout


def keys(binary, d):
    """A 2048-bit key made by `veil paillier keygen` in d/key, as phe's public and private key."""
    veil(binary, "paillier", "keygen", "--bits", 2048, "--out", d / "key")
    n = int(json.loads((d / "key" / "public.json").read_text())["n"])
    secret = json.loads((d / "key" / "secret.json").read_text())
    public_key = phe.PaillierPublicKey(n)
    return public_key, phe.PaillierPrivateKey(public_key, int(secret["p"]), int(secret["q"]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parties", type=int, default=10)
    parser.add_argument("--values", type=int, default=10_000)
    parser.add_argument("--veil", default=str(ROOT / ".build" / "release" / "veil"))
    parser.add_argument("--without-phe", action="store_true", help="time Veil's modes only")
    parser.add_argument("--add-only", action="store_true", help="time the decimal add step alone, phe against veil")
    parser.add_argument("--repeat", type=int, default=3, help="--add-only: alternate runs of each")
    args = parser.parse_args()
    if args.add_only:
        return add_only(args)
    modes = {
        "decimal": ([], []),
        "packed": (["--format", "veil", "--pack", "--addends", args.parties], []),
        "dj3": (["--format", "veil", "--pack", "--addends", args.parties], ["--damgard-jurik", 3]),
    }
    rng = random.Random(2026)
    parties = [[rng.randint(-(2**31), 2**31 - 1) for _ in range(args.values)] for _ in range(args.parties)]
    expected = [sum(column) for column in zip(*parties)]

    with tempfile.TemporaryDirectory() as folder:
        d = Path(folder)
        public_key, private_key = keys(args.veil, d)
        for i, values in enumerate(parties):
            (d / f"values{i}.txt").write_text("\n".join(map(str, values)) + "\n")

        times = {}

        # phe as its users drive it with files: each party encrypts and writes its ciphertexts
        # (decimal lines); the files are read and summed; the sum is read and decrypted. The sum
        # is written without phe's re-obfuscation (`be_secure=False`): its addends are random
        # already, and `veil paillier add` does not re-randomise either.
        def phe_encrypt():
            for i, values in enumerate(parties):
                lines = [str(public_key.encrypt(v).ciphertext()) for v in values]
                (d / f"phe{i}.txt").write_text("\n".join(lines) + "\n")

        if not args.without_phe:
            _, times["phe encrypt"] = timed(phe_encrypt)

        def phe_add():
            total = None
            for i in range(args.parties):
                column = [phe.EncryptedNumber(public_key, int(line)) for line in (d / f"phe{i}.txt").read_text().split()]
                total = column if total is None else [a + b for a, b in zip(total, column)]
            (d / "phe-sum.txt").write_text("\n".join(str(c.ciphertext(be_secure=False)) for c in total) + "\n")

        if not args.without_phe:
            _, times["phe add"] = timed(phe_add)

        def phe_decrypt():
            text = (d / "phe-sum.txt").read_text().split()
            return [private_key.decrypt(phe.EncryptedNumber(public_key, int(line))) for line in text]

        if not args.without_phe:
            sums, times["phe decrypt"] = timed(phe_decrypt)
            assert sums == expected, "phe's sum is wrong"

        for mode, (extra, key) in modes.items():
            pub, sec = d / "key" / "public.json", d / "key" / "secret.json"

            def encrypt_all():
                for i in range(args.parties):
                    veil(args.veil, "paillier", "encrypt", "--public", pub, *key, "--input", d / f"values{i}.txt",
                         *extra, out=d / f"{mode}{i}.txt")

            _, times[f"veil {mode} encrypt"] = timed(encrypt_all)
            files = [d / f"{mode}{i}.txt" for i in range(args.parties)]
            _, times[f"veil {mode} add"] = timed(
                lambda: veil(args.veil, "paillier", "add", "--public", pub, *key, *files, out=d / f"{mode}-sum.txt"))
            out, times[f"veil {mode} decrypt"] = timed(
                lambda: veil(args.veil, "paillier", "decrypt", "--secret", sec, *key, d / f"{mode}-sum.txt"))
            assert list(map(int, out.split())) == expected, f"veil's {mode} sum is wrong"
            times[f"veil {mode} bytes per value"] = (d / f"{mode}0.txt").stat().st_size / args.values

    baseline = "packed" if args.without_phe else "phe"
    print(f"{args.parties} parties x {args.values} signed 32-bit values, 2048-bit key; phe {phe.__version__}"
          + ("" if not args.without_phe else " (not run: ratios are against veil packed)"))
    reference = (lambda step: times[f"veil packed {step}"]) if args.without_phe else (lambda step: times[f"phe {step}"])
    for step in ("encrypt", "add", "decrypt"):
        p = reference(step)
        print(f"  {step:8} {baseline} {p:9.2f} s", end="")
        for mode in modes:
            v = times[f"veil {mode} {step}"]
            print(f" | veil {mode} {v:8.2f} s ({p / v:7.2f}x)", end="")
        print()
    base_total = sum(reference(s) for s in ("encrypt", "add", "decrypt"))
    for mode in modes:
        total = sum(times[f"veil {mode} {s}"] for s in ("encrypt", "add", "decrypt"))
        print(f"  end to end: {baseline} {base_total:.2f} s, veil {mode} {total:.2f} s ({base_total / total:.2f}x); "
              f"{times[f'veil {mode} bytes per value']:.2f} file bytes per value")


def add_only(args):
    rng = random.Random(2026)
    parties = [[rng.randint(-(2**31), 2**31 - 1) for _ in range(args.values)] for _ in range(args.parties)]
    expected = [sum(column) for column in zip(*parties)]
    with tempfile.TemporaryDirectory() as folder:
        d = Path(folder)
        public_key, private_key = keys(args.veil, d)
        pub = d / "key" / "public.json"
        for i, values in enumerate(parties):
            (d / f"values{i}.txt").write_text("\n".join(map(str, values)) + "\n")
            veil(args.veil, "paillier", "encrypt", "--public", pub, "--input", d / f"values{i}.txt", out=d / f"c{i}.txt")
        files = [d / f"c{i}.txt" for i in range(args.parties)]

        def phe_add():
            total = None
            for path in files:
                column = [phe.EncryptedNumber(public_key, int(line)) for line in path.read_text().split()]
                total = column if total is None else [a + b for a, b in zip(total, column)]
            (d / "phe-sum.txt").write_text("\n".join(str(c.ciphertext(be_secure=False)) for c in total) + "\n")

        ratios = []
        for run in range(args.repeat):
            _, p = timed(phe_add)
            _, v = timed(lambda: veil(args.veil, "paillier", "add", "--public", pub, *files, out=d / "veil-sum.txt"))
            ratios.append(p / v)
            print(f"  run {run + 1}: phe add {p:.2f} s, veil add {v:.2f} s ({p / v:.2f}x)")
        for name in ("phe-sum.txt", "veil-sum.txt"):
            sums = [private_key.decrypt(phe.EncryptedNumber(public_key, int(line)))
                    for line in (d / name).read_text().split()]
            assert sums == expected, f"{name} does not decrypt to the sum"
        print(f"{args.parties} parties x {args.values} values, decimal add: veil {min(ratios):.2f}-{max(ratios):.2f}x "
              f"phe {phe.__version__}; both sums decrypt to the plain sum")


if __name__ == "__main__":
    main()
