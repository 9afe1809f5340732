#!/usr/bin/env python3
"""Recomputes every project-generated vector in Vectors/ with the independent implementation
(veil_reference.py), and checks the published ones (RFC 7748, RFC 8032, the XChaCha draft,
RFC 5869, and the project cases in those files) with PyNaCl and hashlib.

Exits 1 on any difference, naming the file and tcId. Usage: check_vectors.py [VECTORS_DIR]
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import nacl.bindings as sodium
import nacl.exceptions

import paillier_reference
import privacy_reference
import secagg_parameters_reference
import secagg_reference
import veil_reference as ref

Refused = ref.Refused


class Skipped(Exception):
    """A case the reference does not recompute (it says which kind, and why, where raised)."""


def outcome(test: dict, compute) -> str | None:
    """Applies the Wycheproof rules of Specs/primitives.md section 11; None means agreement."""
    try:
        compute()
    except Skipped:
        return "skipped"
    except Refused as refusal:
        if test["result"] == "valid":
            return f"refused a valid case ({refusal.code})"
        expected = test.get("error")
        if test["result"] == "invalid" and expected and expected != refusal.code:
            return f"refused with {refusal.code}, expected {expected}"
        return None
    except AssertionError as mismatch:
        # An invalid case that names its error must be refused for that reason, not merely differ.
        if test["result"] == "invalid" and not test.get("error"):
            return None
        return f"differs: {mismatch}"
    return "accepted an invalid case" if test["result"] == "invalid" else None


def expect(actual, expected, what: str) -> None:
    if actual != expected:
        raise AssertionError(what)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --- project families -----------------------------------------------------------------

def check_kdf(group, test):
    okm = ref.veil_kdf(h(test["ikm"]), test["label"], h(test["salt"]), h(test["context"]), test["size"])
    expect(okm.hex(), test["okm"], "okm")


def check_drbg(group, test):
    generator = ref.Generator(h(test["seed"]))
    expect([str(generator.next()) for _ in test["outputs"]], test["outputs"], "outputs")


def check_mask(group, test):
    mask = ref.mask_expansion(h(test["seed"]), h(test["label"]), group["bits"], test["count"])
    expect([str(v) for v in mask], test["elements"], "elements")


def check_shamir(group, test):
    t, n = group["threshold"], group["shareCount"]
    secret = h(test["secret"])
    if test["operation"] == "split":
        generator = ref.Generator(h(test.get("generatorSeed") or ""))
        shares = ref.shamir_split(secret, t, n, generator, test.get("indices"))
        expect([s.hex() for s in shares], test["shares"], "shares")
        expect(ref.shamir_reconstruct(shares[-t:], t, n), secret, "reconstruction")
    elif test["operation"] == "decode":
        decoded, wrong = ref.shamir_decode_wrong([h(s) for s in test["shares"]], t, n)
        expect(decoded, secret, "secret")
        expect(wrong, test.get("wrongIndices") or [], "wrongIndices")
    else:
        expect(ref.shamir_reconstruct([h(s) for s in test["shares"]], t, n), secret, "secret")


def check_codec(group, test):
    codec = ref.Codec(group["clip"], group["fractionalBits"], group["bits"], group["maxAddends"])
    if test["operation"] == "encode":
        generator = ref.Generator(h(test["generatorSeed"]))
        expect([str(v) for v in codec.encode(test["values"], generator)], test["encoded"], "encoded")
    else:
        modulus = 1 << group["bits"]
        total = [sum(int(v[i]) for v in test["addends"]) % modulus for i in range(len(test["addends"][0]))]
        expect([str(v) for v in total], test["sum"], "sum")
        expect([codec.decode(v) for v in total], [float(x) for x in test["decoded"]], "decoded")


# --- published families (and their project cases), through PyNaCl and hashlib ----------------

def check_xdh(group, test):
    expect(group["curve"], "curve25519", "curve")
    k, u = h(test["private"]), h(test["public"])
    for _ in range(test.get("iterations", 1)):
        try:
            k, u = sodium.crypto_scalarmult(k, u), k
        except (nacl.exceptions.RuntimeError, nacl.exceptions.CryptoError):
            raise Refused("weakPublicKey")
    expect(k.hex(), test["shared"], "shared")


def check_eddsa(group, test):
    pk, msg, sig = h(group["publicKey"]["pk"]), h(test["msg"]), h(test["sig"])
    if "privateKey" in group:
        derived, secret = sodium.crypto_sign_seed_keypair(h(group["privateKey"]["sk"]))
        expect(derived, pk, "derived public key")
        if test["result"] == "valid":
            expect(sodium.crypto_sign(msg, secret)[:64], sig, "signature")
    if len(sig) != 64:
        raise Refused("invalidSignature")
    try:
        sodium.crypto_sign_open(sig + msg, pk)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise Refused("invalidSignature")


def check_aead(group, test):
    key, nonce, aad, msg = h(test["key"]), h(test["iv"]), h(test["aad"]), h(test["msg"])
    sealed = h(test["ct"]) + h(test["tag"])
    if test["result"] == "valid":
        expect(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, aad, nonce, key), sealed, "ciphertext")
    try:
        opened = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, aad, nonce, key)
    except nacl.exceptions.CryptoError:
        raise Refused("authenticationFailure")
    expect(opened, msg, "plaintext")


def check_hkdf(group, test):
    expect(ref.hkdf_sha256(h(test["ikm"]), h(test["salt"]), h(test["info"]), test["size"]).hex(), test["okm"], "okm")


def check_sha256(group, test):
    expect(hashlib.sha256(h(test["msg"])).hexdigest(), test["digest"], "digest")


def check_secagg(group, test):
    # Substitution tests exercise the state machines' refusals; the reference checks the
    # arithmetic of every run, which the substitutions share with the base run's transcript.
    if test["kind"] != "transcript":
        raise Skipped()
    secagg_reference.check_transcript(group, test)


def check_paillier_session(group, test):
    paillier_reference.check_session(group, test, expect)


def check_secagg_parameters(group, test):
    secagg_parameters_reference.check(group, test, expect)


def check_paillier(group, test):
    paillier_reference.check(group, test, expect)


def close(actual: float, expected: float, relative: float, what: str) -> None:
    if abs(actual - expected) > relative * abs(expected):
        raise AssertionError(f"{what}: {actual} vs {expected}")


def check_dp_accounting(group, test):
    """The published table: recomputed with dp_accounting itself, so a stale or edited file fails."""
    import generate_dp_accounting_table as table
    q, steps, delta = test["samplingRate"], test["steps"], group["delta"]
    if test["operation"] == "epsilon":
        eps, order = table.epsilon(q, test["noiseMultiplier"], steps, delta)
        close(eps, test["epsilon"], 1e-12, "epsilon")
        expect(order, test["order"], "order")
    else:
        close(table.calibrate(test["epsilon"], delta, q, steps), test["noiseMultiplier"], 1e-12, "noise multiplier")


def check_dp(group, test):
    op = test["operation"]
    if op == "discreteGaussian":
        if not 0 < test["variance"] <= 2 ** 52:
            raise Refused("invalidVariance")
        bits = privacy_reference.Bits(ref.Generator(h(test["seed"])))
        n, k = privacy_reference.discrete_gaussian_variance(test["variance"])
        expect([privacy_reference.discrete_gaussian(bits, n, k) for _ in test["samples"]], test["samples"], "samples")
    elif op == "skellam":
        if not 0 < test["variance"] <= 2 ** 52:
            raise Refused("invalidVariance")
        g = ref.Generator(h(test["seed"]))
        expect([privacy_reference.skellam(g, test["variance"]) for _ in test["samples"]], test["samples"], "samples")
    elif op == "rotation":
        signs = privacy_reference.rotation_signs(ref.Generator(h(test["seed"])), len(test["x"]))
        rotated = privacy_reference.rotate(signs, test["x"])
        expect(rotated, test["rotated"], "rotated")
        back = privacy_reference.unrotate(signs, rotated, len(test["x"]))
        if max(abs(a - b) for a, b in zip(back, test["x"])) > 1e-12:
            raise AssertionError("the inverse rotation does not return the input")
    elif op == "encodeShare":
        privacy_reference.check_mechanism(test)
        signs = privacy_reference.rotation_signs(ref.Generator(h(test["seed"])), len(test["x"]))
        share = privacy_reference.encode_share(
            test["x"], test["bound"], test["unitScale"], test["unitLocalStandardDeviation"], test["noise"],
            test["bits"], test["minimumParticipants"], test["beta"], signs, ref.Generator(h(test["roundingSeed"])),
            ref.Generator(h(test["noiseSeed"])))
        expect([str(v) for v in share], test["share"], "share")
    elif op == "distributedEpsilon":
        privacy_reference.check_accounting(test)
        eps, order = privacy_reference.distributed_epsilon(
            test["noise"], test["localVariance"], test["participants"], test["dimension"], test["l2Sensitivity"],
            test["l1Sensitivity"], test["samplingRate"], test["steps"], test["delta"],
            test.get("orders", privacy_reference.DEFAULT_ORDERS))
        close(eps, test["epsilon"], 1e-9, "epsilon")
        expect(float(order), test["order"], "order")
    elif op == "scale":
        close(privacy_reference.scale(test), test["unitScale"], 1e-12, "unitScale")
    elif op == "calibrate":
        privacy_reference.check_target(test)
        if test.get("noise") is not None:
            raise AssertionError("a valid distributed calibration is not recomputed by the reference")
        # Section 5.4 against dp_accounting's calibrate_dp_mechanism, to the spec's 2e-6.
        import generate_dp_accounting_table as table
        sigma = table.calibrate(test["epsilon"], test["delta"], test["samplingRate"], test["steps"])
        if abs(sigma - test["noiseMultiplier"]) > 2e-6:
            raise AssertionError(f"noise multiplier: {sigma} vs {test['noiseMultiplier']}")
    else:
        raise AssertionError(f"unknown operation {op}")


CHECKS = {
    "VEIL-KDF": check_kdf,
    "VEIL-CHACHA20-DRBG": check_drbg,
    "VEIL-MASK-EXPANSION": check_mask,
    "VEIL-SHAMIR": check_shamir,
    "VEIL-FIXED-POINT": check_codec,
    "XDH": check_xdh,
    "EDDSA": check_eddsa,
    "XCHACHA20-POLY1305": check_aead,
    "HKDF-SHA-256": check_hkdf,
    "SHA-256": check_sha256,
    "VEIL-SECAGG": check_secagg,
    "VEIL-SECAGG-PARAMETERS": check_secagg_parameters,
    "PAILLIER": check_paillier,
    "VEIL-PAILLIER-SESSION": check_paillier_session,
    "DP-ACCOUNTING-RDP": check_dp_accounting,
    "VEIL-DP": check_dp,
}

# Every project family must be present: a missing file must not pass silently.
REQUIRED = {"VEIL-KDF", "VEIL-CHACHA20-DRBG", "VEIL-MASK-EXPANSION", "VEIL-SHAMIR", "VEIL-FIXED-POINT", "VEIL-SECAGG",
            "VEIL-SECAGG-PARAMETERS", "VEIL-PAILLIER-SESSION", "VEIL-DP", "DP-ACCOUNTING-RDP", "PAILLIER"}

# Every file the reference checks (Vectors/README.md), by path: one family can have several
# files (PAILLIER: the IPCL values and the project's), so a family being present is not enough.
EXPECTED_FILES = {
    "codec/veil_fixed_point.json", "dp/dp_accounting_rdp.json", "dp/veil_privacy.json",
    "drbg/veil_chacha20_generator.json", "ed25519/rfc8032.json", "kdf/hkdf_sha256_rfc5869.json", "kdf/veil_kdf.json",
    "mask/veil_mask_expansion.json", "paillier/iso18033_6_ipcl.json", "paillier/veil_paillier.json",
    "paillier/veil_paillier_session.json", "secagg/veil_secagg.json", "secagg/veil_secagg_parameters.json",
    "sha256/sha256_fips180.json", "shamir/veil_shamir.json", "x25519/rfc7748.json",
    "xchacha20poly1305/draft_irtf_cfrg_xchacha.json",
}

# Wycheproof's suites are checked by the Swift runners; the reference covers what this project wrote.
PUBLISHED_UNCHANGED = {"x25519_test.json", "ed25519_test.json"}


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2] / "Vectors")
    failures, checked, skipped, seen = [], 0, 0, set()
    for missing in sorted(EXPECTED_FILES):
        if not (root / missing).is_file():
            failures.append(f"{missing}: expected vector file is missing")
    for path in sorted(root.rglob("*.json")):
        if path.name in PUBLISHED_UNCHANGED:
            continue
        data = json.loads(path.read_text())
        check = CHECKS.get(data["algorithm"])
        name = path.relative_to(root)
        if check is None:
            failures.append(f"{name}: no reference check for algorithm {data['algorithm']}")
            continue
        seen.add(data["algorithm"])
        count = 0
        for group in data["testGroups"]:
            for test in group["tests"]:
                count += 1
                problem = outcome(test, lambda: check(group, test))
                if problem == "skipped":
                    skipped += 1
                elif problem:
                    failures.append(f"{name} tcId {test['tcId']}: {problem}")
        if count != data["numberOfTests"]:
            failures.append(f"{name}: numberOfTests {data['numberOfTests']} but {count} tests")
        checked += count
        print(f"{str(name):45} {count:4} tests")
    for missing in sorted(REQUIRED - seen):
        failures.append(f"no vector file for {missing}")
    for failure in failures:
        print("FAIL", failure)
    agreed = checked - skipped - len(failures)
    print(f"reference: {agreed} agree, {len(failures)} differ, {skipped} left to the Swift runners "
          "(secagg substitutions: state-machine refusals, not arithmetic)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
