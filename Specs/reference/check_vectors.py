#!/usr/bin/env python3
"""Recomputes every project-generated vector in Vectors/ with the independent implementations
(veil_reference.py, ristretto255.py, trainer_reference.py, secagg_reference.py — which replays every SecAgg transcript
and runs every substitution —, paillier_reference.py, privacy_reference.py,
secagg_parameters_reference.py, export_reference.py), and checks the published ones (RFC 7748, RFC 8032, the XChaCha
draft, RFC 5869, and the project cases in those files) with PyNaCl and hashlib.

Exits 1 on any difference, on any skipped case, and when an expected vector file is missing,
names another algorithm or is not expected (EXPECTED lists them all), naming the file and tcId.
Usage: check_vectors.py [VECTORS_DIR]
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import nacl.bindings as sodium
import nacl.exceptions

import export_reference
import paillier_reference
import ristretto255
import privacy_reference
import secagg_parameters_reference
import secagg_reference
import trainer_reference
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
        # A difference is never agreement, not even on an invalid case: an invalid case must be
        # refused (and for the reason it names, where it names one).
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


def check_subset(group, test):
    indices = ref.coordinate_subset(test["length"], test["size"], h(test["seed"]))
    expect(indices, test["indices"], "indices")
    expect(ref.subset_compress(test["payload"], indices), test["sent"], "sent")


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
    # Transcripts: the whole run replayed from the seed (participants and server as state machines),
    # byte for byte. Substitutions: the stated party's checks decide the case.
    if test["kind"] == "transcript":
        secagg_reference.check_transcript(group, test)
    elif test["kind"] == "substitution":
        secagg_reference.check_substitution(group, test)
    else:
        raise AssertionError(f"unknown kind {test['kind']}")


def check_ristretto255(group, test):
    ristretto255.check(group, test, expect)


def check_paillier_session(group, test):
    paillier_reference.check_session(group, test, expect)


def check_secagg_parameters(group, test):
    secagg_parameters_reference.check(group, test, expect)


def check_onnx_export(group, test):
    export_reference.check(group, test, expect)


def check_tflite_export(group, test):
    export_reference.check_tflite(group, test, expect)


def check_paillier(group, test):
    paillier_reference.check(group, test, expect)


def check_local_training(group, test):
    t = trainer_reference
    if test["operation"] == "parseCsv":
        try:
            features, labels, width, classes = t.parse_csv(test["csv"], test.get("classCount"))
        except t.CsvRefused as refusal:
            raise Refused(refusal.code) from None
        expect([[t.bits(v) for v in features[r * width:(r + 1) * width]] for r in range(len(labels))], test["rows"], "rows")
        expect(labels, test["labels"], "labels")
        expect((width, classes), (test["features"], test["classes"]), "features, classes")
        return
    expect(test["operation"], "train", "operation")
    expect(str(t.stream_for_id(test["participantId"])), test["stream"], "stream")
    plan = dict(test["plan"])
    for name in ("learningRate", "momentum", "weightDecay", "proximalMu"):
        plan[name] = t.from_bits(plan[name])
    width = test["features"]
    rows = test["rows"]
    expect(all(len(row) == width for row in rows) and len(rows) == len(test["labels"]), True, "rows")
    delta, examples = t.train(
        test["model"], width, test["classes"], [t.from_bits(v) for v in test["parameters"]],
        [t.from_bits(v) for row in rows for v in row], test["labels"], plan, int(test["seed"]), int(test["stream"]))
    expect([t.bits(v) for v in delta], test["delta"], "delta")
    expect(examples, test["examples"], "examples")


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
    elif op == "dominated":
        privacy_reference.check_dominated(test)
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
    "VEIL-COORDINATE-SUBSET": check_subset,
    "XDH": check_xdh,
    "EDDSA": check_eddsa,
    "XCHACHA20-POLY1305": check_aead,
    "HKDF-SHA-256": check_hkdf,
    "SHA-256": check_sha256,
    "VEIL-SECAGG": check_secagg,
    "VEIL-RISTRETTO255": check_ristretto255,
    "VEIL-SECAGG-PARAMETERS": check_secagg_parameters,
    "PAILLIER": check_paillier,
    "VEIL-PAILLIER-SESSION": check_paillier_session,
    "DP-ACCOUNTING-RDP": check_dp_accounting,
    "VEIL-DP": check_dp,
    "VEIL-ONNX-EXPORT": check_onnx_export,
    "VEIL-TFLITE-EXPORT": check_tflite_export,
    "VEIL-LOCAL-TRAINING": check_local_training,
}

# Every expected file, with its algorithm: a missing (or renamed, or emptied) file must not pass silently.
EXPECTED = {
    "codec/veil_fixed_point.json": "VEIL-FIXED-POINT",
    "dp/dp_accounting_rdp.json": "DP-ACCOUNTING-RDP",
    "dp/veil_privacy.json": "VEIL-DP",
    "drbg/veil_chacha20_generator.json": "VEIL-CHACHA20-DRBG",
    "ed25519/ed25519_test.json": "EDDSA",
    "ed25519/rfc8032.json": "EDDSA",
    "kdf/hkdf_sha256_rfc5869.json": "HKDF-SHA-256",
    "kdf/veil_kdf.json": "VEIL-KDF",
    "mask/veil_mask_expansion.json": "VEIL-MASK-EXPANSION",
    "model/veil_onnx_export.json": "VEIL-ONNX-EXPORT",
    "model/veil_tflite_export.json": "VEIL-TFLITE-EXPORT",
    "paillier/iso18033_6_ipcl.json": "PAILLIER",
    "paillier/veil_paillier.json": "PAILLIER",
    "paillier/veil_paillier_session.json": "VEIL-PAILLIER-SESSION",
    "ristretto255/veil_ristretto255.json": "VEIL-RISTRETTO255",
    "secagg/veil_secagg.json": "VEIL-SECAGG",
    "secagg/veil_secagg_parameters.json": "VEIL-SECAGG-PARAMETERS",
    "sha256/sha256_fips180.json": "SHA-256",
    "subset/veil_coordinate_subset.json": "VEIL-COORDINATE-SUBSET",
    "trainer/veil_local_training.json": "VEIL-LOCAL-TRAINING",
    "shamir/veil_shamir.json": "VEIL-SHAMIR",
    "x25519/rfc7748.json": "XDH",
    "x25519/x25519_test.json": "XDH",
    "xchacha20poly1305/draft_irtf_cfrg_xchacha.json": "XCHACHA20-POLY1305",
}

# Wycheproof's suites are checked by the Swift runners; the reference covers what this project wrote.
PUBLISHED_UNCHANGED = {"x25519_test.json", "ed25519_test.json"}


def file_problems(root: pathlib.Path) -> tuple[list[str], list[tuple[str, dict]]]:
    """The files under root: problems with the set of files (missing, unexpected, wrong algorithm,
    not JSON) and the (name, data) of each file to recompute."""
    problems, files = [], []
    for expected_name in sorted(EXPECTED):
        if not (root / expected_name).is_file():
            problems.append(f"{expected_name}: expected vector file missing")
    for path in sorted(root.rglob("*.json")):
        name = path.relative_to(root).as_posix()
        try:
            data = json.loads(path.read_text())
        except ValueError as error:
            problems.append(f"{name}: not JSON ({error})")
            continue
        if name not in EXPECTED:
            problems.append(f"{name}: a vector file the reference does not expect (add it to EXPECTED)")
        elif data.get("algorithm") != EXPECTED[name]:
            problems.append(f"{name}: algorithm {data.get('algorithm')}, expected {EXPECTED[name]}")
            continue
        if path.name in PUBLISHED_UNCHANGED:
            if not data.get("numberOfTests"):
                problems.append(f"{name}: no tests")
            continue
        files.append((name, data))
    return problems, files


def check_file(name: str, data: dict) -> tuple[list[str], int, int]:
    """Recomputes every test of one file: (failures, tests, skipped)."""
    check = CHECKS.get(data.get("algorithm"))
    if check is None:
        return [f"{name}: no reference check for algorithm {data.get('algorithm')}"], 0, 0
    failures, count, skipped = [], 0, 0
    for group in data["testGroups"]:
        for test in group["tests"]:
            count += 1
            problem = outcome(test, lambda: check(group, test))
            if problem == "skipped":
                skipped += 1
            elif problem:
                failures.append(f"{name} tcId {test['tcId']}: {problem}")
    if count != data["numberOfTests"] or count == 0:
        failures.append(f"{name}: numberOfTests {data['numberOfTests']} but {count} tests")
    return failures, count, skipped


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2] / "Vectors")
    failures, files = file_problems(root)
    checked = skipped = 0
    for name, data in files:
        problems, count, skips = check_file(name, data)
        failures += problems
        checked += count
        skipped += skips
        print(f"{name:45} {count:4} tests", flush=True)
    for failure in failures:
        print("FAIL", failure)
    differ = sum(1 for f in failures if " tcId " in f)
    print(f"reference: {checked - skipped - differ} agree, {differ} differ, {skipped} skipped, "
          f"{len(failures) - differ} file problems (Wycheproof's x25519_test.json and ed25519_test.json "
          "are left to the Swift runners)")
    return 1 if failures or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
