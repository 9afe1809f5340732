#!/usr/bin/env python3
"""Mutation check of the reference (issue 11): each mutation below changes one vector the way the
outside audit did — re-signing messages with the simulation's own keys where a signature would
otherwise give it away — and the reference must now reject it. The unmutated cases must agree.

    python3 Specs/reference/mutations.py [VECTORS_DIR]

Exits 1 if any mutation is not caught (or a control case does not agree). Runs in seconds.
"""

from __future__ import annotations

import copy
import json
import math
import pathlib
import sys
import tempfile

import nacl.bindings as sodium

import check_vectors
import privacy_reference
import secagg_reference as sa
from secagg_reference import Session, le4, parse_envelope

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2] / "Vectors")


def load(name: str) -> dict:
    return json.loads((ROOT / name).read_text())


def find(data: dict, tc_id: int) -> tuple[dict, dict]:
    for group in data["testGroups"]:
        for test in group["tests"]:
            if test["tcId"] == tc_id:
                return group, test
    raise KeyError(tc_id)


def resign(group: dict, raw: bytes, body: bytes) -> bytes:
    """The message with a new body, signed again by its sender's derived identity key."""
    m = parse_envelope(raw)
    session = Session(group)
    return session.encode(m["round"], m["sender"], m["recipient"], body) if m["session"] == session.id else None


def result_of(name: str, data: dict, tc_id: int, mutate=None) -> str | None:
    """check_vectors' verdict (None = agrees) on one test, after mutate(group, test)."""
    data = copy.deepcopy(data)
    group, test = find(data, tc_id)
    if mutate:
        mutate(group, test)
    check = check_vectors.CHECKS[data["algorithm"]]
    return check_vectors.outcome(test, lambda: check(group, test))


# --- the mutations ------------------------------------------------------------------------------

def index_of(test: dict, round_: int, sender: int, recipient: int = 0) -> int:
    return next(i for i, e in enumerate(test["transcript"])
                if (e["round"], e["sender"], e["recipient"]) == (round_, sender, recipient))


def message_mutation(where: tuple, change):
    """Replaces the transcript message (round, sender[, recipient]) by change(group, raw) (which re-signs)."""
    def mutate(group, test):
        index = index_of(test, *where)
        raw = bytes.fromhex(test["transcript"][index]["message"])
        test["transcript"][index]["message"] = change(group, raw).hex()
    return mutate


def zero_commitment_flip_ciphertext(resign_entry: bool):
    def change(group, raw):
        m = parse_envelope(raw)
        body = bytearray(m["body"])
        body[:32] = bytes(32)                       # the self-mask commitment, zeroed
        body[36 + 4 + 32 + 24 + 10] ^= 0x01         # a byte of the first entry's ciphertext
        if resign_entry:                            # the entry's shares signature made again
            session = Session(group)
            v, key, nonce, ciphertext, _ = sa.split_entry(bytes(body[36:36 + sa.ENTRY]))
            body[36 + sa.ENTRY - 64:36 + sa.ENTRY] = sign_entry(session, m["sender"], v, key, nonce, ciphertext)
        return resign(group, raw, bytes(body))
    return change


def sign_entry(session: Session, sender: int, v: int, key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """The entry's shares signature made again with the sender's derived identity key."""
    return sodium.crypto_sign(session.shares_signed(sender, v, key, nonce, ciphertext), session.keys[sender][1])[:64]


def forward_as_sent(group, test):
    """The server's SharesForward to the recipient of participant 1's first R1 entry, carrying
    that entry as the transcript's R1 message now has it (the forward re-signed)."""
    body = parse_envelope(bytes.fromhex(test["transcript"][index_of(test, 1, 1)]["message"]))["body"]
    entry = body[36:36 + sa.ENTRY]
    v = sa.u32(entry, 0)
    for e in test["transcript"]:
        m = parse_envelope(bytes.fromhex(e["message"]))
        if m["sender"] == 0 and m["round"] == 2 and m["recipient"] == v:
            forward = bytearray(m["body"])
            for j in range(sa.u32(forward, 0)):
                at = 4 + sa.ENTRY * j
                if sa.u32(forward, at) == 1:
                    forward[at + 4:at + sa.ENTRY] = entry[4:]
            e["message"] = resign(group, m["raw"], bytes(forward)).hex()


def consistent_flip(group, test):
    """The flipped entry (entry and message re-signed) also forwarded as flipped by the server
    (its SharesForward re-signed): the recipient then sees it."""
    message_mutation((1, 1), zero_commitment_flip_ciphertext(True))(group, test)
    forward_as_sent(group, test)


def unendorsed_share(group, test):
    """Participant 1's first R1 entry sealed again (with the key its recipient would use) around
    the same shares but one endorsement bit flipped, the entry, the message and the server's
    forward re-signed: every signature holds, only the endorsement fails, and the recipient must
    not hold the shares (secagg.md §6)."""
    index = index_of(test, 1, 1)
    raw = bytes.fromhex(test["transcript"][index]["message"])
    m = parse_envelope(raw)
    run = sa.Run(group).run()  # the participants' keys, from the seed
    session, sender = run.s, m["sender"]
    body = bytearray(m["body"])
    v, key, nonce, ciphertext, _ = sa.split_entry(bytes(body[36:36 + sa.ENTRY]))
    k_shared = sa.rist.agree(run.participants[sender].c, run.participants[v].C)
    plain = bytearray(b"".join(session.open_entry(k_shared, sender, v, nonce, ciphertext)))
    plain[2 * sa.SHARE] ^= 0x01  # the first byte of the endorsement of the share of s
    sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        bytes(plain), session.shares_ad(sender, v), nonce, session.share_key(k_shared, sender, v))
    body[36 + 60:36 + 60 + sa.CIPHERTEXT] = sealed
    body[36 + sa.ENTRY - 64:36 + sa.ENTRY] = sign_entry(session, sender, v, key, nonce, sealed)
    test["transcript"][index]["message"] = resign(group, raw, bytes(body)).hex()
    forward_as_sent(group, test)


def wrong_digest(group, raw):
    m = parse_envelope(raw)
    digest = bytearray(m["body"])
    digest[0] ^= 0x80
    return resign(group, raw, bytes(digest))


def wrong_revealed_share(group, raw):
    m = parse_envelope(raw)
    body = bytearray(m["body"])
    body[4 + 5 + 5] ^= 0x01                          # the first chunk of the first revealed share
    return resign(group, raw, bytes(body))


def wrong_revealed_endorsement(group, raw):
    m = parse_envelope(raw)
    body = bytearray(m["body"])
    body[4 + 5 + sa.SHARE] ^= 0x01                   # the first byte of the first reveal's endorsement
    return resign(group, raw, bytes(body))


def other_counterpart(group, test):
    """The first attribution names another counterpart (the next participant, cyclically)."""
    fault, who, counterpart = test["attributions"][0].split(":")
    test["attributions"][0] = f"{fault}:{who}:{int(counterpart) % group['clients'] + 1}"


def set_field(field, value):
    def mutate(group, test):
        if value is None:
            test.pop(field, None)
        else:
            test[field] = value
    return mutate


def main() -> int:
    secagg = load("secagg/veil_secagg.json")
    shamir = load("shamir/veil_shamir.json")
    rist = load("ristretto255/veil_ristretto255.json")
    session = load("paillier/veil_paillier_session.json")
    onnx_export = load("model/veil_onnx_export.json")
    privacy = load("dp/veil_privacy.json")

    def dominated_case(noise: str) -> int:
        """The first valid dominated calibration (privacy.md §4.7) of this noise."""
        return next(t["tcId"] for g in privacy["testGroups"] for t in g["tests"]
                    if t["operation"] == "dominated" and t["result"] == "valid" and t["noise"] == noise)

    def scaled(field, factor):
        return lambda g, t: t.__setitem__(field, t[field] * factor)

    def other_sigma(factor):
        """σ₁ moved and the scale recomputed for it (§4.4): only the dominance check can tell."""
        def mutate(group, test):
            m = 1
            while m < test["dimension"]:
                m <<= 1
            test["unitLocalStandardDeviation"] *= factor
            test["unitScale"] = privacy_reference.heuristic_scale(
                test["unitLocalStandardDeviation"], test["bits"], max(test["participants"], test["minimumParticipants"]),
                m, math.sqrt(2 * math.log(2 * m / 0.01)))
        return mutate
    tflite_export = load("model/veil_tflite_export.json")

    def onnx_case(**fields) -> int:
        """The first ONNX export case with these fields."""
        return next(t["tcId"] for g in onnx_export["testGroups"] for t in g["tests"]
                    if all(t.get(k) == v for k, v in fields.items()))

    def tflite_case(**fields) -> int:
        """The first TFLite export case with these fields."""
        return next(t["tcId"] for g in tflite_export["testGroups"] for t in g["tests"]
                    if all(t.get(k) == v for k, v in fields.items()))

    def flip_last_byte(field):
        def mutate(group, test):
            test[field] = test[field][:-2] + format(int(test[field][-2:], 16) ^ 1, "02x")
        return mutate

    def threshold_case(**fields) -> int:
        """The first case of the threshold session group (paillier.md §6.3) with these fields."""
        return next(t["tcId"] for g in session["testGroups"] if "threshold" in g for t in g["tests"]
                    if all(t.get(k) == v for k, v in fields.items()))

    def flip_partial(group, test):
        # A partial's value changed by one: what a cheating holder would sign.
        w = test["partials"][0]
        test["partials"][0] = w[:-2] + format(int(w[-2:], 16) ^ 1, "02x")
    # Messages are named (round, sender): participant 1's R1 ShareKeys, R3 ConsistencySignature and
    # R4 UnmaskingShares in the 5-participant complete-graph run (tcId 1).
    first_valid_shamir = next(t["tcId"] for g in shamir["testGroups"] for t in g["tests"] if t["result"] == "valid")
    first_invalid_shamir = next(t["tcId"] for g in shamir["testGroups"] for t in g["tests"]
                                if t["result"] == "invalid" and t.get("error"))

    def case(**fields) -> int:
        """The first SecAgg case with these fields: the cases below are found by what they are, not
        by a tcId that moves when a case is inserted before them."""
        return next(t["tcId"] for g in secagg["testGroups"] for t in g["tests"]
                    if all(t.get(k) == v for k, v in fields.items()))

    def flagged(flag: str) -> int:
        """The first SecAgg case carrying this flag."""
        return next(t["tcId"] for g in secagg["testGroups"] for t in g["tests"] if flag in t.get("flags", []))

    cases = [
        # (description, file name, data, tcId, mutation)
        ("zeroed commitment + flipped ciphertext byte, message re-signed", "secagg", secagg, 1,
         message_mutation((1, 1), zero_commitment_flip_ciphertext(False))),
        ("zeroed commitment + flipped ciphertext byte, entry and message re-signed", "secagg", secagg, 1,
         message_mutation((1, 1), zero_commitment_flip_ciphertext(True))),
        ("zeroed commitment + flipped ciphertext byte, re-signed, and forwarded so by the server (re-signed)",
         "secagg", secagg, 1, consistent_flip),
        ("consistency signature over a wrong digest, re-signed", "secagg", secagg, 1, message_mutation((3, 1), wrong_digest)),
        ("a wrong revealed share in R4, re-signed", "secagg", secagg, 1, message_mutation((4, 1), wrong_revealed_share)),
        ("a revealed share's endorsement changed in R4, re-signed", "secagg", secagg, 1,
         message_mutation((4, 1), wrong_revealed_endorsement)),
        ("an R1 share endorsement changed under a valid seal (entry, message and forward re-signed)", "secagg",
         secagg, 1, unendorsed_share),
        ("abort reason changed (tooFewSurvivors → cannotReconstruct)", "secagg", secagg, 12,
         set_field("abort", "cannotReconstruct")),
        ("abort reason changed (cannotReconstruct → reconstructionMismatch)", "secagg", secagg, 14,
         set_field("abort", "reconstructionMismatch")),
        ("abort removed", "secagg", secagg, 13, set_field("abort", None)),
        ("sum changed", "secagg", secagg, 7, lambda g, t: t["sum"].__setitem__(0, str(int(t["sum"][0]) ^ 1))),
        ("survivors changed", "secagg", secagg, 2, set_field("survivors", [1, 3, 4])),
        ("attribution changed (wrongShare: another owner)", "secagg", secagg,
         flagged("WrongShare"), other_counterpart),
        ("attribution removed", "secagg", secagg, 15, set_field("attributions", None)),
        ("attribution removed (inconsistentSecret, the round going on)", "secagg", secagg,
         next(t["tcId"] for g in secagg["testGroups"] for t in g["tests"]
              if "InconsistentSecret" in t.get("flags", []) and "abort" not in t),
         set_field("attributions", None)),
        ("expected error changed (participant: invalidSignature → wrongSession)", "secagg", secagg,
         case(kind="substitution", party=1, error="invalidSignature"), set_field("error", "wrongSession")),
        ("expected error changed (server: falseComplaint → invalidComplaint)", "secagg", secagg,
         case(kind="substitution", party=0, error="falseComplaint"), set_field("error", "invalidComplaint")),
        ("expected error changed (server: invalidComplaint → falseComplaint)", "secagg", secagg,
         case(kind="substitution", party=0, error="invalidComplaint"), set_field("error", "falseComplaint")),
        ("dropped participant changed (3 → 4)", "secagg", secagg,
         case(kind="substitution", party=0, dropped=3), set_field("dropped", 4)),
        ("expected complaints changed (unsigned → undecryptable)", "secagg", secagg,
         case(kind="substitution", complaints=["2:unsigned"]), set_field("complaints", ["2:undecryptable"])),
        ("a valid substitution relabelled invalid", "secagg", secagg,
         case(kind="substitution", result="valid"), set_field("result", "invalid")),
        ("a refused substitution relabelled valid", "secagg", secagg,
         case(kind="substitution", result="invalid"), set_field("result", "valid")),
        ("a valid Shamir case relabelled invalid", "shamir", shamir, first_valid_shamir, set_field("result", "invalid")),
        ("expected Shamir error changed", "shamir", shamir, first_invalid_shamir, set_field("error", "duplicateIndex")),
        ("ristretto255: an RFC 9496 A.1 multiple changed", "ristretto255", rist, 3,
         lambda g, t: t.__setitem__("element", t["element"][:-2] + "00")),
        ("ristretto255: expected error changed (invalidPoint → invalidScalar)", "ristretto255", rist, 21,
         set_field("error", "invalidScalar")),
        ("ristretto255: a proof changed", "ristretto255", rist, 35,
         lambda g, t: t.__setitem__("proof", "00" + t["proof"][2:])),
        ("ristretto255: a refused proof relabelled valid", "ristretto255", rist, 44, set_field("result", "valid")),
        ("threshold session: a holder's partial changed by one", "session", session,
         threshold_case(kind="partial", holder=2, result="valid"), flip_partial),
        ("threshold session: the holders named changed (5 → 4)", "session", session,
         threshold_case(kind="session"), lambda g, t: g["threshold"].__setitem__("named", [1, 2, 3, 4])),
        ("threshold session: a cheating holder not named", "session", session,
         threshold_case(kind="combine", cheat=1), set_field("rejected", [])),
        ("threshold session: t changed in the key (3 → 4)", "session", session,
         threshold_case(kind="thresholdKey"), lambda g, t: g["threshold"].__setitem__("t", 4)),
        ("threshold session: an unnamed holder's refusal relabelled valid", "session", session,
         threshold_case(kind="partial", holder=4), set_field("result", "valid")),
        ("onnx: a byte of an exported file changed", "onnx", onnx_export,
         onnx_case(operation="export", precision="float16", result="valid"), flip_last_byte("file")),
        ("onnx: a parameter read back changed", "onnx", onnx_export,
         onnx_case(operation="load", precision="float32", result="valid"),
         lambda g, t: t["parameters"].__setitem__(0, t["parameters"][0] + 2.0 ** -20)),
        ("onnx: float16 rounding read back as float32", "onnx", onnx_export,
         onnx_case(operation="load", precision="float16", result="valid"), set_field("precision", "float32")),
        ("onnx: a refused file (opset 12) relabelled valid", "onnx", onnx_export,
         onnx_case(operation="load", error="unsupported"), set_field("result", "valid")),
        ("onnx: expected error changed (unrepresentable → invalidCheckpoint)", "onnx", onnx_export,
         onnx_case(error="unrepresentable"), set_field("error", "invalidCheckpoint")),
        ("tflite: a byte of an int8 file changed", "tflite", tflite_export,
         tflite_case(operation="export", precision="int8", result="valid"), flip_last_byte("file")),
        ("tflite: a calibration value changed", "tflite", tflite_export,
         tflite_case(operation="export", precision="int8", result="valid"),
         lambda g, t: t["calibration"][0].__setitem__(0, t["calibration"][0][0] + 0.25)),
        ("tflite: an int8 weight read back changed by one step", "tflite", tflite_export,
         tflite_case(operation="load", precision="int8", result="valid"),
         lambda g, t: t["parameters"].__setitem__(0, t["parameters"][0] * 128 / 127)),
        ("tflite: a float16 round trip read back as float32", "tflite", tflite_export,
         tflite_case(operation="load", precision="float16", result="valid"), set_field("precision", "float32")),
        ("tflite: a refused file (ReLU unfused) relabelled valid", "tflite", tflite_export,
         tflite_case(comment="the hidden layer's ReLU not fused (fused_activation_function 0)"),
         set_field("result", "valid")),
        ("dp: a subset mechanism's σ₁ 10⁻⁴ above the least that is dominated (its scale recomputed)", "dp",
         privacy, dominated_case("ddg"), other_sigma(1 + 1e-4)),
        ("dp: a subset mechanism's σ₁ 10⁻⁴ below it, costlier than the whole at some order (scale recomputed)",
         "dp", privacy, dominated_case("skellam"), other_sigma(1 - 1e-4)),
        ("dp: a subset mechanism's scale not §4.4's", "dp", privacy, dominated_case("ddg"),
         scaled("unitScale", 1 + 1e-6)),
    ]

    failures = 0
    controls = sorted({(name, tc) for _, name, _, tc, _ in cases})
    datas = {"secagg": secagg, "shamir": shamir, "ristretto255": rist, "session": session, "onnx": onnx_export,
             "tflite": tflite_export, "dp": privacy}
    for name, tc in controls:
        verdict = result_of(name, datas[name], tc)
        if verdict is not None:
            print(f"CONTROL FAILS {name} tcId {tc}: {verdict}")
            failures += 1
    for description, name, data, tc, mutate in cases:
        verdict = result_of(name, data, tc, mutate)
        caught = verdict is not None
        failures += not caught
        print(f"{'caught    ' if caught else 'NOT CAUGHT'} {description} ({name} tcId {tc}){': ' + verdict if caught else ''}")

    # Deleting files: every expected file, one at a time, must be reported missing.
    for deleted in sorted(check_vectors.EXPECTED):
        with tempfile.TemporaryDirectory() as tmp:
            for path in ROOT.rglob("*.json"):
                rel = path.relative_to(ROOT).as_posix()
                if rel != deleted:
                    (pathlib.Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
                    (pathlib.Path(tmp) / rel).symlink_to(path)
            problems, _ = check_vectors.file_problems(pathlib.Path(tmp))
        caught = any(p.startswith(deleted) and "missing" in p for p in problems)
        failures += not caught
        print(f"{'caught    ' if caught else 'NOT CAUGHT'} {deleted} deleted{': ' + problems[0] if caught else ''}")
    print(f"mutations: {'all caught' if not failures else f'{failures} not caught or failing'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
