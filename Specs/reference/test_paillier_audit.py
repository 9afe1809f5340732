#!/usr/bin/env python3
"""Self-test of audit_reference.py's Paillier checks (Specs/audit.md §7.3): the exports that
make_paillier_audit.py builds must pass, and each tampered copy must fail at exactly the step
named beside it (re-signed with the coordinator's key, or the member's or key holder's, where
the point is a later step). A small masking export checks that masking records are read as
before. Exits 1 on any disagreement.

Usage: python3 Specs/reference/test_paillier_audit.py [-v]
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import audit_reference as audit  # noqa: E402
import make_paillier_audit as make  # noqa: E402
import veil_reference as ref  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
FEDERATION = make.Federation()
OTHER = make.Federation(b"another federation")  # another CA, for certificates it did not issue


def flip(text: str, at: int = -1) -> str:
    """A hex string with one nibble changed."""
    at %= len(text)
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1:]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def fresh(**options) -> make.Attempt:
    return FEDERATION.attempt(**options)


# --- the tampered copies: (the §7.3 step they must fail at, what was done, the file's bytes) ----------

def case(step: str, name: str, says: str | None = None):
    """A tampered copy that must fail first at `step` (and, with `says`, with a message that says it)."""
    def register(build):
        CASES.append((step, name, build, says))
        return build
    return register


def valid(name: str):
    """A variant that must pass: what the strict rules allow."""
    def register(build):
        VALID.append((name, build))
        return build
    return register


CASES: list = []
VALID: list = []

BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def padding_bits(text: str) -> str:
    """Base64 with its (zero) padding bits set: the same bytes to a lenient decoder, not canonical."""
    assert text.endswith("="), "the bytes need a length that is not a multiple of 3"
    i = len(text.rstrip("=")) - 1
    return text[:i] + BASE64[BASE64.index(text[i]) | 1] + text[i + 1:]


def padded_record(a: make.Attempt) -> make.Attempt:
    """The attempt with a federation name that makes its record's base64 end in padding."""
    for extra in range(3):
        a.record["federation"] = "veil-test" + "x" * extra
        if len(a.record_bytes()) % 3:
            return a
    raise AssertionError("unreachable")


def text_edit(data: bytes, old: str, new: str) -> bytes:
    """The export's text with the first `old` replaced (the bytes a JSON writer would not make)."""
    text = data.decode("utf-8")
    assert old in text, old
    return text.replace(old, new, 1).encode("utf-8")


def with_member(data: bytes, member: str) -> bytes:
    """The export with `member` (raw JSON text) first in its top-level object."""
    return text_edit(data, "{", "{" + member + ", ")


def upper(text: str) -> str:
    assert text != text.upper(), "no letter to change"
    return text.upper()


def nested(arrays: int) -> str:
    """An ignored key whose value puts a 1 inside `arrays` arrays, inside the export's object: the
    1 is at level arrays + 2 (the export at level 1)."""
    return '"deep": ' + "[" * arrays + "1" + "]" * arrays


def plan_with(*fields: bytes) -> bytes:
    return b"".join(fields)


TRAINING = make.field(1, b"fedavg") + make.field(2, 1) + make.field(3, 8)
ENCODING = make.field(3, 32) + make.field(4, 3)


def double(number: int, value: float) -> bytes:
    return ref.protobuf_varint(number << 3 | 1) + struct.pack("<d", value)


@case("1", "record bytes not canonical (spaces), re-signed")
def _():
    a = fresh()
    return a.export(record_bytes=json.dumps(a.record, sort_keys=True).encode())


@case("1", "a key outside §7.1's schema (eventCount), re-signed")
def _():
    a = fresh()
    a.record["eventCount"] = 0
    return a.export()


@case("1", "secureSum \"paillier-v2\", re-signed")
def _():
    a = fresh()
    a.record["secureSum"] = "paillier-v2"
    return a.export()


@case("1", "an absent optional written as null (abort), re-signed")
def _():
    a = fresh()
    a.record["abort"] = None
    return a.export()


@case("1", "version 2, re-signed")
def _():
    a = fresh()
    a.record["version"] = 2
    return a.export()


@case("1", "the export lists an event")
def _():
    return fresh().export(events=[{"kind": "deadline", "party": 0, "message": ""}])


@case("1", "the export has no paillier object")
def _():
    return fresh().export(paillier=None)


@case("1", "the export's sum is not a string")
def _():
    a = fresh()
    a.paillier["sum"] = 0
    return a.export()


@case("2", "the record changed, not re-signed")
def _():
    a = fresh()
    signature = make.sign(FEDERATION.coordinator[2], audit.RECORD_CONTEXT + a.record_bytes())
    a.record["federation"] = "elsewhere"
    return a.export(signature=signature)


@case("2", "serverKey is the key holder's, re-signed")
def _():
    a = fresh()
    a.record["session"]["serverKey"] = FEDERATION.key_holder[1].hex()
    return a.export()


@case("2", "coordinator certificate with the participant role, re-signed")
def _():
    a = fresh()
    a.record["coordinatorCertificate"] = FEDERATION.certificate("coordinator", "participant", FEDERATION.coordinator[1])
    return a.export()


@case("2", "coordinator certificate from another CA, re-signed")
def _():
    a = fresh()
    a.record["coordinatorCertificate"] = FEDERATION.certificate("coordinator", "coordinator", FEDERATION.coordinator[1],
                                                                OTHER.ca_key, OTHER.ca)
    return a.export()


@case("3", "a roster member's key is not its certificate's, re-signed")
def _():
    a = fresh()
    a.record["session"]["roster"][1]["key"] = FEDERATION.key_holder[1].hex()
    return a.export()


@case("3", "one member at two positions, re-signed")
def _():
    a = fresh()
    a.record["session"]["roster"][2] = a.record["session"]["roster"][0]
    return a.export()


@case("3", "key holder certificate with the participant role, re-signed")
def _():
    a = fresh()
    a.record["session"]["keyHolderCertificate"] = FEDERATION.certificate("key-holder", "participant",
                                                                         FEDERATION.key_holder[1])
    return a.export()


@case("3", "key holder certificate from another CA, re-signed")
def _():
    a = fresh()
    a.record["session"]["keyHolderCertificate"] = FEDERATION.certificate("key-holder", "key-holder",
                                                                         FEDERATION.key_holder[1], OTHER.ca_key, OTHER.ca)
    return a.export()


@case("4", "the modulus with a leading zero byte, re-signed")
def _():
    a = fresh()
    a.record["session"]["modulus"] = "00" + a.record["session"]["modulus"]
    return a.export()


@case("4", "a prime modulus (p), re-signed")
def _():
    a = fresh()
    a.record["session"]["modulus"] = FEDERATION.p.to_bytes(64, "big").hex()
    return a.export()


@case("4", "modulusSignature changed, re-signed")
def _():
    a = fresh()
    a.record["session"]["modulusSignature"] = flip(a.record["session"]["modulusSignature"], 0)
    return a.export()


@case("4", "capacity 2 under 3 members, re-signed")
def _():
    a = fresh()
    a.record["session"]["capacity"] = 2
    return a.export()


@case("4", "capacity 0: the packing is refused, re-signed")
def _():
    a = fresh()
    a.record["session"]["capacity"] = 0
    return a.export()


@case("4", "bits 65, re-signed")
def _():
    a = fresh()
    a.record["session"]["bits"] = 65
    return a.export()


@case("4", "the nonce changed (another session id), re-signed")
def _():
    a = fresh()
    a.record["session"]["nonce"] = flip(a.record["session"]["nonce"])
    return a.export()


@case("4", "the round changed (another session id), re-signed")
def _():
    a = fresh()
    a.record["round"] += 1
    return a.export()


@case("4", "assignmentSignature changed, re-signed")
def _():
    a = fresh()
    a.record["session"]["assignmentSignature"] = flip(a.record["session"]["assignmentSignature"], 0)
    return a.export()


@case("5", "no plan in the export")
def _():
    return fresh().export(plan=None)


@case("5", "the plan changed (its digest is not the context)")
def _():
    a = fresh()
    return a.export(plan=b64(a.plan + make.field(1, b"")))


@case("5", "a plan carrying distributed_dp, bound by the session")
def _():
    return fresh(plan=make.round_plan(32, 3, distributed_dp=True)).export()


@case("5", "a plan that does not parse, bound by the session")
def _():
    return fresh(plan=b"\xff").export()


@case("6", "a ciphertext byte changed")
def _():
    a = fresh()
    c = a.paillier["contributions"][0]["ciphertexts"]
    c[0] = flip(c[0])
    return a.export()


@case("6", "a ciphertext one byte short")
def _():
    a = fresh()
    c = a.paillier["contributions"][1]["ciphertexts"]
    c[0] = c[0][2:]
    return a.export()


@case("6", "a ciphertext sharing a factor with N (N itself, fixed width)")
def _():
    a = fresh()
    a.paillier["contributions"][1]["ciphertexts"][0] = FEDERATION.n.to_bytes(a.width, "big").hex()
    return a.export()


@case("6", "a contribution with one ciphertext too few (P = 2)")
def _():
    a = fresh()
    a.paillier["contributions"][2]["ciphertexts"].pop()
    return a.export()


@case("6", "a contribution missing from the export")
def _():
    a = fresh()
    del a.paillier["contributions"][1]
    return a.export()


@case("6", "positions out of order in both, re-signed")
def _():
    a = fresh()
    for contributions in (a.record["contributions"], a.paillier["contributions"]):
        contributions[0], contributions[1] = contributions[1], contributions[0]
    return a.export()


@case("6", "position 4 (not on the roster) in both, re-signed")
def _():
    a = fresh()
    a.record["contributions"][2]["position"] = a.paillier["contributions"][2]["position"] = 4
    return a.export()


@case("6", "a receipt changed, re-signed")
def _():
    a = fresh()
    a.record["contributions"][0]["receipt"] = flip(a.record["contributions"][0]["receipt"], 0)
    return a.export()


@case("6", "a receipt's digest changed, re-signed")
def _():
    a = fresh()
    a.record["contributions"][2]["digest"] = flip(a.record["contributions"][2]["digest"])
    return a.export()


@case("7", "r_1 changed")
def _():
    a = fresh()
    r = int(a.paillier["rerandomization"][1], 16) + 2
    a.paillier["rerandomization"][1] = r.to_bytes(a.session.n_bytes, "big").hex()
    return a.export()


@case("7", "r_0 = 0")
def _():
    a = fresh()
    a.paillier["rerandomization"][0] = "00" * a.session.n_bytes
    return a.export()


@case("7", "r_0 = p (not coprime to N), aggregate, digest and request redone")
def _():
    a = fresh()
    s = a.session
    product = a.aggregate[0] * pow(pow(a.r[0], s.n, s.n2), -1, s.n2) % s.n2
    a.r[0] = FEDERATION.p
    a.aggregate[0] = product * pow(a.r[0], s.n, s.n2) % s.n2
    redo_request(a)
    return a.export()


@case("7", "an aggregate byte changed")
def _():
    a = fresh()
    a.paillier["aggregate"][0] = flip(a.paillier["aggregate"][0])
    return a.export()


@case("7", "an aggregate of members 1 and 2 only, digest and request redone")
def _():
    a = fresh()
    s = a.session
    third = [int(c, 16) for c in a.paillier["contributions"][2]["ciphertexts"]]
    a.aggregate = [c * pow(x, -1, s.n2) % s.n2 for c, x in zip(a.aggregate, third)]
    redo_request(a)
    return a.export()


@case("7", "requestSignature changed, re-signed")
def _():
    a = fresh()
    a.record["requestSignature"] = flip(a.record["requestSignature"], 0)
    return a.export()


@case("7", "requestSignature missing, re-signed")
def _():
    a = fresh()
    del a.record["requestSignature"]
    return a.export()


@case("7", "decryption asked and a sum released without member 3's contribution")
def _():
    return fresh(contributors=[1, 2], outcome="completed").export()


@case("7", "no decryption asked, but the export holds an aggregate")
def _():
    a = fresh(contributors=[1, 3], decrypt=False)
    a.paillier["aggregate"] = ["00" * a.width]
    return a.export()


@case("7", "no decryption asked, but the record names a sumDigest, re-signed")
def _():
    a = fresh(decrypt=False)
    a.record["sumDigest"] = "00" * 32
    return a.export()


@case("8", "the export's sum changed")
def _():
    a = fresh()
    a.paillier["sum"] = flip(a.paillier["sum"], 0)
    return a.export()


@case("8", "the export's sum one element short")
def _():
    a = fresh()
    a.paillier["sum"] = a.paillier["sum"][:-16]
    return a.export()


@case("8", "sumDigest changed, re-signed")
def _():
    a = fresh()
    a.record["sumDigest"] = flip(a.record["sumDigest"])
    return a.export()


@case("8", "an element of 2^b, signed by the key holder, re-signed")
def _():
    a = fresh()  # its sumDigest cannot name it: ⌈b/8⌉ bytes do not hold 2^b
    released = b"".join(x.to_bytes(8, "little") for x in [1 << a.session.bits] + a.total[1:])
    a.paillier["sum"] = released.hex()
    a.record["resultSignature"] = make.sign(FEDERATION.key_holder[2], b"veil/v1/paillier/decrypted\x00" + a.session.id
                                            + bytes.fromhex(a.record["aggregateDigest"]) + released).hex()
    return a.export()


@case("8", "the sum changed with its digest, but not the key holder's signature, re-signed")
def _():
    a = fresh()
    a.set_sum([(a.total[0] + 1) % (1 << a.session.bits)] + a.total[1:], resign=False)
    return a.export()


@case("8", "resultSignature missing, re-signed")
def _():
    a = fresh()
    del a.record["resultSignature"]
    return a.export()


@case("8", "no sum released, but the export holds one")
def _():
    a = fresh(release=False)
    a.paillier["sum"] = "00" * 8 * a.session.d
    return a.export()


@case("9", "completed with no survivors, re-signed")
def _():
    a = fresh()
    a.record["survivors"] = []
    return a.export()


@case("9", "completed with survivors 1, 2 of 3, re-signed")
def _():
    a = fresh()
    a.record["survivors"] = [1, 2]
    return a.export()


@case("9", "completed without a released sum")
def _():
    return fresh(release=False, outcome="completed").export()


@case("9", "aborted after a released sum, naming no survivors")
def _():
    a = fresh(outcome="aborted")
    a.record["survivors"] = []
    return a.export()


@case("9", "aborted without a sum, naming survivors")
def _():
    a = fresh(release=False)
    a.record["survivors"] = [1, 2, 3]
    return a.export()


@case("9", "outcome \"failed\" (with an abort reason), re-signed")
def _():
    a = fresh()
    a.record["outcome"] = "failed"
    a.record["abort"] = "a test abort"
    return a.export()


# --- §4 *Strict JSON* (the rules both verifiers apply), §7.3 step 4's order, and canonical plans ----------

@case("1", "a key written twice with an escape (\"r\\u0065cord\")", "appears twice")
def _():
    return with_member(fresh().export(), '"r\\u0065cord": "AAAA"')


@case("1", "an ignored key written twice", "appears twice")
def _():
    return with_member(with_member(fresh().export(), '"note": 1'), '"note": 2')


@case("1", "a position written 1.0", "1.0 is not an integer")
def _():
    return text_edit(fresh().export(), '"position": 1', '"position": 1.0')


@case("1", "a position written 1e0", "not an integer")
def _():
    return text_edit(fresh().export(), '"position": 1', '"position": 1e0')


@case("1", "a position written 01", "leading zero")
def _():
    return text_edit(fresh().export(), '"position": 1', '"position": 01')


@case("1", "a position written -0.0", "not an integer")
def _():
    return text_edit(fresh().export(), '"position": 1', '"position": -0.0')


@case("1", "a 20-digit integer in an ignored key", "at most 19 digits")
def _():
    return with_member(fresh().export(), '"note": 10000000000000000000')


@case("1", "a 5000-digit integer in an ignored key: the 19-digit rule, not Python's own limit", "at most 19 digits")
def _():
    return with_member(fresh().export(), '"note": -' + "9" * 5000)


@case("1", "NaN in an ignored key", "NaN")
def _():
    return with_member(fresh().export(), '"note": NaN')


@case("1", "Infinity in an ignored key", "Infinity")
def _():
    return with_member(fresh().export(), '"note": Infinity')


@case("1", "a raw tab inside a string", "control character")
def _():
    return with_member(fresh().export(), '"note": "a\tb"')


@case("1", "a raw line feed inside the signature string", "control character")
def _():
    data = fresh().export()
    signature = json.loads(data)["signature"]
    return text_edit(data, signature, signature[:64] + "\n" + signature[64:])


@case("1", "a byte-order mark", "byte-order mark")
def _():
    return b"\xef\xbb\xbf" + fresh().export()


@case("1", "a byte that is not UTF-8 in an ignored string", "not UTF-8")
def _():
    return fresh().export().replace(b"{", b'{"note": "\xff", ', 1)


@case("1", "a 1 at level 513 (inside 511 arrays inside the export)", "deeper than 512")
def _():
    return with_member(fresh().export(), nested(511))


@case("1", "a 1 inside 100000 arrays: refused by the rule, not a RecursionError", "deeper than 512")
def _():
    return with_member(fresh().export(), nested(100000))


@case("1", "the record's base64 with an extra `=`", "base64")
def _():
    a = padded_record(fresh())
    return a.export(record=base64.b64encode(a.record_bytes()).decode() + "=")


@case("1", "the record's base64 with its padding bits set", "base64")
def _():
    a = padded_record(fresh())
    return a.export(record=padding_bits(base64.b64encode(a.record_bytes()).decode()))


@case("1", "the record's base64 without its padding", "base64")
def _():
    a = padded_record(fresh())
    return a.export(record=base64.b64encode(a.record_bytes()).decode().rstrip("="))


@case("1", "the record's base64 with a line break (\\n escaped in JSON)", "base64")
def _():
    a = fresh()
    text = base64.b64encode(a.record_bytes()).decode()
    return a.export(record=text[:76] + "\n" + text[76:])


@case("1", "an abort reason on a completed record, re-signed", "abort")
def _():
    a = fresh()
    a.record["abort"] = "a reason"
    return a.export()


@case("1", "an aborted record without an abort reason, re-signed", "abort")
def _():
    a = fresh(release=False)
    del a.record["abort"]
    return a.export()


@case("1", "upper-case hex in previous, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["previous"] = "AB" * 32
    return a.export()


@case("2", "upper-case hex in the export's signature", "lower-case hex")
def _():
    data = fresh().export()
    signature = json.loads(data)["signature"]
    return text_edit(data, signature, upper(signature))


@case("2", "upper-case hex in serverKey, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["session"]["serverKey"] = upper(a.record["session"]["serverKey"])
    return a.export()


@case("2", "the coordinator's certificate with an extra `=` in its base64, re-signed", "base64")
def _():
    a = fresh()
    a.record["coordinatorCertificate"] += "="
    return a.export()


@case("3", "upper-case hex in a roster key, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["session"]["roster"][1]["key"] = upper(a.record["session"]["roster"][1]["key"])
    return a.export()


@case("3", "a roster certificate's base64 without its last `=`, or with an extra one, re-signed", "base64")
def _():
    a = fresh()
    certificate = a.record["session"]["roster"][2]["certificate"]
    certificate = certificate[:-1] if certificate.endswith("=") else certificate + "="
    a.record["session"]["roster"][2]["certificate"] = certificate
    return a.export()


@case("3", "the key holder's certificate in URL-safe base64 or with its padding bits set, re-signed", "base64")
def _():
    a = fresh()
    certificate = a.record["session"]["keyHolderCertificate"]
    if "+" in certificate or "/" in certificate:
        certificate = certificate.replace("+", "-").replace("/", "_")
    else:
        certificate = padding_bits(certificate)
    a.record["session"]["keyHolderCertificate"] = certificate
    return a.export()


@case("4", "upper-case hex in the context, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["session"]["context"] = upper(a.record["session"]["context"])
    return a.export()


@case("4", "upper-case hex in the modulus, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["session"]["modulus"] = upper(a.record["session"]["modulus"])
    return a.export()


@case("4", "upper-case hex in modulusSignature, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["session"]["modulusSignature"] = upper(a.record["session"]["modulusSignature"])
    return a.export()


@case("4", "an odd-length modulus, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["session"]["modulus"] += "1"
    return a.export()


@case("4", "a 1025-byte modulus (no leading zero byte), re-signed", "more than 1024")
def _():
    a = fresh()
    a.record["session"]["modulus"] = "ff" * 1025
    return a.export()


@case("4", "a 1025-byte modulus signed by the key holder, re-signed", "more than 1024")
def _():
    a = fresh()
    encoded = b"\xff" * 1025
    a.record["session"]["modulus"] = encoded.hex()
    a.record["session"]["modulusSignature"] = make.sign(
        FEDERATION.key_holder[2], b"veil/v1/paillier/public-key\x00" + make.le(len(encoded), 4) + encoded).hex()
    return a.export()


@case("4", "a prime modulus (p) under the real N's signature: the signature is checked first", "not signed")
def _():
    a = fresh()
    a.record["session"]["modulus"] = FEDERATION.p.to_bytes(64, "big").hex()
    return a.export()


@case("4", "a prime modulus (p) signed by the key holder: then the public-key rules", "invalidModulus")
def _():
    a = fresh()
    encoded = FEDERATION.p.to_bytes(64, "big")
    a.record["session"]["modulus"] = encoded.hex()
    a.record["session"]["modulusSignature"] = make.sign(
        FEDERATION.key_holder[2], b"veil/v1/paillier/public-key\x00" + make.le(len(encoded), 4) + encoded).hex()
    return a.export()


@case("5", "the plan's base64 with an extra `=`", "base64")
def _():
    a = fresh()
    return a.export(plan=b64(a.plan) + "=")


@case("5", "the plan's base64 with its padding bits set, or without its padding", "base64")
def _():
    a = fresh()
    text = b64(a.plan)
    return a.export(plan=padding_bits(text) if text.endswith("=") else text + "=")


@case("5", "a plan with an unknown field (RoundPlan field 9), bound by the session", "field 9")
def _():
    return fresh(plan=plan_with(make.field(2, TRAINING), make.field(3, ENCODING), make.field(9, b""))).export()


@case("5", "a plan with an unknown field inside TrainingPlan (14), bound by the session", "field 14")
def _():
    return fresh(plan=plan_with(make.field(2, TRAINING + make.field(14, 1)), make.field(3, ENCODING))).export()


@case("5", "a plan with field 4 (distributed_dp) as a varint, bound by the session", "wire type 0")
def _():
    return fresh(plan=plan_with(make.field(2, TRAINING), make.field(3, ENCODING), make.field(4, 1))).export()


@case("5", "a plan with training written twice, bound by the session", "twice")
def _():
    return fresh(plan=plan_with(make.field(2, TRAINING), make.field(2, TRAINING), make.field(3, ENCODING))).export()


@case("5", "a plan with local_epochs = 0 written, bound by the session", "default value")
def _():
    training = make.field(1, b"fedavg") + make.field(2, 0) + make.field(3, 8)
    return fresh(plan=plan_with(make.field(2, training), make.field(3, ENCODING))).export()


@case("5", "a plan with an empty algorithm written, bound by the session", "default value")
def _():
    return fresh(plan=plan_with(make.field(2, make.field(1, b"") + make.field(2, 1)), make.field(3, ENCODING))).export()


@case("5", "a plan with learning_rate = 0.0 written, bound by the session", "default value")
def _():
    return fresh(plan=plan_with(make.field(2, TRAINING + double(4, 0.0)), make.field(3, ENCODING))).export()


@valid("a plan with learning_rate = -0.0 written: not the default, whose bits are +0.0's")
def _():
    return fresh(plan=plan_with(make.field(2, TRAINING + double(4, -0.0)), make.field(3, ENCODING))).export()


@case("1", "a lone surrogate escaped in an ignored key's value", "lone surrogate")
def _():
    return with_member(fresh().export(), '"note": "\\ud800"')


@case("5", "a plan with its fields out of number order, bound by the session", "number order")
def _():
    return fresh(plan=plan_with(make.field(3, ENCODING), make.field(2, TRAINING))).export()


@case("5", "a plan with a vector's doubles not packed, bound by the session", "not packed")
def _():
    vector = double(1, 1.0) + double(1, 2.0)
    return fresh(plan=plan_with(make.field(1, make.field(1, vector)), make.field(2, TRAINING))).export()


@case("5", "a plan with a vector's doubles packed in two fields, bound by the session", "more than one field")
def _():
    vector = make.field(1, struct.pack("<d", 1.0)) + make.field(1, struct.pack("<d", 2.0))
    return fresh(plan=plan_with(make.field(1, make.field(1, vector)), make.field(2, TRAINING))).export()


@case("5", "a plan whose algorithm is not UTF-8, bound by the session", "UTF-8")
def _():
    return fresh(plan=plan_with(make.field(2, make.field(1, b"fed\xffavg")), make.field(3, ENCODING))).export()


@case("5", "a plan with local_epochs beyond 32 bits, bound by the session", "32 bits")
def _():
    return fresh(plan=plan_with(make.field(2, make.field(2, 1 << 32 | 1)), make.field(3, ENCODING))).export()


@case("5", "a plan with a varint not in its shortest form, bound by the session", "shortest form")
def _():
    return fresh(plan=plan_with(make.field(2, bytes([0x10, 0x81, 0x00])), make.field(3, ENCODING))).export()


@case("5", "a plan with an empty distributed_dp (present all the same), bound by the session", "distributed_dp")
def _():
    return fresh(plan=plan_with(make.field(2, TRAINING), make.field(3, ENCODING), make.field(4, b""))).export()


@case("6", "upper-case hex in a ciphertext", "lower-case hex")
def _():
    a = fresh()
    a.paillier["contributions"][0]["ciphertexts"][1] = upper(a.paillier["contributions"][0]["ciphertexts"][1])
    return a.export()


@case("6", "upper-case hex in a receipt, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["contributions"][1]["receipt"] = upper(a.record["contributions"][1]["receipt"])
    return a.export()


@case("6", "upper-case hex in a contribution's digest, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["contributions"][0]["digest"] = upper(a.record["contributions"][0]["digest"])
    return a.export()


@case("7", "upper-case hex in r_0", "lower-case hex")
def _():
    a = fresh()
    a.paillier["rerandomization"][0] = upper(a.paillier["rerandomization"][0])
    return a.export()


@case("7", "upper-case hex in an aggregate ciphertext", "lower-case hex")
def _():
    a = fresh()
    a.paillier["aggregate"][1] = upper(a.paillier["aggregate"][1])
    return a.export()


@case("7", "upper-case hex in aggregateDigest, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["aggregateDigest"] = upper(a.record["aggregateDigest"])
    return a.export()


@case("8", "upper-case hex in the export's sum", "lower-case hex")
def _():
    a = fresh()
    a.paillier["sum"] = upper(a.paillier["sum"])
    return a.export()


@case("8", "upper-case hex in sumDigest, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["sumDigest"] = upper(a.record["sumDigest"])
    return a.export()


@case("8", "upper-case hex in resultSignature, re-signed", "lower-case hex")
def _():
    a = fresh()
    a.record["resultSignature"] = upper(a.record["resultSignature"])
    return a.export()


@valid("`/` written `\\/` and keys reordered (another JSON writer's text)")
def _():
    data = fresh().export()
    return json.dumps(json.loads(data), sort_keys=True).replace("/", "\\/").encode()


@valid("unknown keys of every JSON kind, a 19-digit integer, -0, and a 1 at level 512 (inside 510 arrays)")
def _():
    data = with_member(fresh().export(), '"note": {"a": [true, false, null, "\\u0000", -0, 9223372036854775807]}')
    return with_member(with_member(data, '"big": -9999999999999999999'), nested(510))


@valid("a plan with a NaN learning rate, an empty model and vectors of zeros (-0.0 too) and none, bound by the session")
def _():
    vectors = make.field(1, make.field(1, struct.pack("<dd", 0.0, -0.0))) + make.field(1, b"")
    return fresh(plan=plan_with(make.field(1, vectors), make.field(2, TRAINING + double(4, float("nan"))),
                                make.field(3, ENCODING))).export()


@valid("a plan with empty training and encoding messages (present, so written), bound by the session")
def _():
    return fresh(plan=plan_with(make.field(1, b""), make.field(2, b""), make.field(3, b""))).export()


def redo_request(a: make.Attempt) -> None:
    """The coordinator's side again after a test changed r or the aggregate (not the sum)."""
    s = a.session
    a.paillier["rerandomization"] = [r.to_bytes(s.n_bytes, "big").hex() for r in a.r]
    a.paillier["aggregate"] = [c.to_bytes(a.width, "big").hex() for c in a.aggregate]
    digest = hashlib.sha256(b"".join(c.to_bytes(a.width, "big") for c in a.aggregate)).digest()
    a.record["aggregateDigest"] = digest.hex()
    a.record["requestSignature"] = make.sign(FEDERATION.coordinator[2],
                                             b"veil/v1/paillier/decrypt\x00" + s.id + digest).hex()
    a.set_sum(a.total)  # the key holder's signature covers the new aggregate digest


# --- a masking export: read as before, with no `paillier` object ------------------------------------------

def dp_plan(beta: bytes = b"") -> bytes:
    """A RoundPlan with a distributed-DP plan that fits masking_export's session (b = 16, d = 4,
    t = 2): ddg, clip 1, at least 2 noise shares, s₁ = σ₁ = 1 (β = 0 left out unless given)."""
    dp = (make.field(1, b"ddg") + double(2, 1.0) + make.field(3, 16) + make.field(4, 4) + make.field(5, 2) + beta
          + double(7, 1.0) + double(8, 1.0))
    return make.field(2, TRAINING) + make.field(3, make.field(3, 16) + make.field(4, 3)) + make.field(4, dp)


def masking_export(extra: dict | None = None, plan: bytes | None = None, change=None, events=()) -> bytes:
    """An aborted masking attempt whose log is empty (§4: nothing owed, no result): valid. `change`
    edits the record before it is signed; `events` are listed in the export (and the record)."""
    f = FEDERATION
    plan = make.round_plan(16, 3) if plan is None else plan
    events = list(events)
    digest = hashlib.sha256(b"veil/v1/audit/events\x00").digest()
    for event in events:
        kind = audit.EVENT_KINDS[event["kind"]]
        data = bytes.fromhex(event["message"].lower()) if kind != 1 else b""
        party = event["party"] if kind == 0 else 0
        digest = hashlib.sha256(digest + bytes([kind]) + make.le(party, 4) + make.le(len(data), 4) + data).digest()
    record = {
        "version": 1, "federation": "veil-test", "sequence": 1, "previous": make.ZERO, "round": 1, "attempt": 1,
        "recorded": make.RECORDED, "outcome": "aborted", "abort": "no participant answered",
        "session": {"clients": 3, "threshold": 2, "neighbors": 2, "bits": 16, "dimension": 4, "adversary": 0,
                    "corruptFraction": 0.05, "dropoutFraction": 0.1, "securityBits": 40,
                    "nonce": make.derive(f.seed, "masking nonce").hex(),
                    "context": hashlib.sha256(b"veil/v1/round-plan\x00" + plan).hexdigest(),
                    "serverKey": f.coordinator[1].hex(),
                    "roster": [{"id": name, "key": f.members[name][1].hex(),
                                "certificate": f.certificate(name, "participant", f.members[name][1])}
                               for name in make.MEMBERS]},
        "coordinatorCertificate": f.certificate("coordinator", "coordinator", f.coordinator[1]),
        "survivors": [], "attributions": [],
        "eventsDigest": digest.hex(), "eventCount": len(events)}
    if change is not None:
        change(record)
    data = make.serialise(record)
    export = {"record": b64(data), "events": events, "plan": b64(plan),
              "signature": make.sign(f.coordinator[2], b"veil/v1/audit/record\x00" + data).hex(), **(extra or {})}
    return json.dumps(export).encode()


def outcome(value: str, abort: str | None):
    def change(record: dict) -> None:
        record["outcome"] = value
        record.pop("abort", None)
        if abort is not None:
            record["abort"] = abort
    return change


def session_change(key: str, value):
    def change(record: dict) -> None:
        record["session"][key] = value(record["session"][key])
    return change


# The masking path of the same rules: (the §4 step it must fail at, what was done, says, the file's bytes).
MASKING = [
    ("1", "masking: a key written twice with an escape (\"\\u0065vents\")", "appears twice",
     lambda: with_member(masking_export(), '"\\u0065vents": []')),
    ("1", "masking: a party written 0.0 (a deadline event)", "not an integer",
     lambda: text_edit(masking_export(events=[{"kind": "deadline", "party": 0, "message": ""}]),
                       '"party": 0', '"party": 0.0')),
    ("1", "masking: completed with an abort reason, re-signed", "abort",
     lambda: masking_export(change=outcome("completed", "a reason"))),
    ("1", "masking: aborted without an abort reason, re-signed", "abort",
     lambda: masking_export(change=outcome("aborted", None))),
    ("1", "masking: the record's base64 with an extra `=`", "base64",
     lambda: (lambda data: text_edit(data, json.loads(data)["record"], json.loads(data)["record"] + "="))(
         masking_export())),
    ("2", "masking: upper-case hex in the export's signature", "lower-case hex",
     lambda: (lambda data: text_edit(data, json.loads(data)["signature"], upper(json.loads(data)["signature"])))(
         masking_export())),
    ("3", "masking: upper-case hex in a roster key, re-signed", "lower-case hex",
     lambda: masking_export(change=lambda r: r["session"]["roster"][0].update(key=upper(r["session"]["roster"][0]["key"])))),
    ("4", "masking: upper-case hex in the nonce, re-signed", "lower-case hex",
     lambda: masking_export(change=session_change("nonce", upper))),
    ("4", "masking: upper-case hex in the context, re-signed", "lower-case hex",
     lambda: masking_export(change=session_change("context", upper))),
    ("5", "masking: the plan's base64 with an extra `=`", "base64",
     lambda: (lambda data: text_edit(data, json.loads(data)["plan"], json.loads(data)["plan"] + "="))(
         masking_export())),
    ("5", "masking: a plan with an unknown field, bound by the session", "field 9",
     lambda: masking_export(plan=make.round_plan(16, 3) + make.field(9, b""))),
    ("5", "masking: a distributed-DP plan with beta = 0.0 written, bound by the session", "default value",
     lambda: masking_export(plan=dp_plan(beta=double(6, 0.0)))),
    ("5", "masking: a distributed-DP plan with its bits as a 64-bit field, bound by the session", "wire type 1",
     lambda: masking_export(plan=dp_plan(beta=double(3, 16.0)))),
    ("5", "masking: a distributed-DP plan of 3 noise shares over threshold 2, bound by the session", "threshold",
     lambda: masking_export(plan=dp_plan().replace(make.field(5, 2), make.field(5, 3)))),
    ("6", "masking: upper-case hex in a deadline event's message", "lower-case hex",
     lambda: masking_export(events=[{"kind": "deadline", "party": 0, "message": "AB"}])),
    ("6", "masking: upper-case hex in eventsDigest, re-signed", "lower-case hex",
     lambda: masking_export(change=lambda r: r.update(eventsDigest=upper(r["eventsDigest"])))),
]


# --- running them ---------------------------------------------------------------------------------------

def main() -> int:
    verbose = "-v" in sys.argv[1:]
    failures = 0
    ca = FEDERATION.ca_pem()

    def report(ok: bool, what: str, got) -> None:
        nonlocal failures
        failures += not ok
        if verbose or not ok:
            print(f"{'ok  ' if ok else 'FAIL'} {what}: {got}")

    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        (folder / "ca.cert.pem").write_bytes(ca)

        def write(name: str, data: bytes) -> pathlib.Path:
            path = folder / name
            path.write_bytes(data)
            return path

        # The generator's valid history, through the command line: every file ok, exit status 0.
        run = subprocess.run([sys.executable, str(HERE / "make_paillier_audit.py"), str(folder / "history")],
                             capture_output=True, text=True)
        files = sorted((folder / "history").glob("round-*.json"))
        run = subprocess.run([sys.executable, str(HERE / "audit_reference.py"), "--ca",
                              str(folder / "history" / "ca.cert.pem"), *map(str, files)], capture_output=True, text=True)
        report(run.returncode == 0 and len(files) == 4 and run.stdout.count(": ok\n") == 4,
               "the valid history (4 files) through the command line", run.stdout.strip() or run.stderr.strip())

        # A masking export (no `paillier` object) is read as before; an extra key in it is ignored.
        for name, build in (("masking", masking_export), ("masking with a paillier key",
                                                          lambda: masking_export({"paillier": {}})),
                            ("masking with a distributed-DP plan", lambda: masking_export(plan=dp_plan())),
                            ("masking with a deadline event", lambda: masking_export(
                                events=[{"kind": "deadline", "party": 0, "message": ""}]))):
            verdict = audit.verify([write("masking.json", build())], ca)[0]
            report(verdict.ok, f"{name}: ok", verdict.problems or "ok")

        # What the strict rules allow: each variant passes.
        for name, build in VALID:
            try:
                verdict = audit.verify([write("variant.json", build())], ca)[0]
                got = verdict.problems[0] if verdict.problems else "ok"
            except Exception as error:
                got = f"{type(error).__name__}: {error}"
            report(got == "ok", f"ok: {name}", got)

        # Each tampered copy alone: not ok, first failure at exactly its step (saying what it names).
        for step, name, build, says in CASES + [(step, name, build, says) for step, name, says, build in MASKING]:
            try:
                verdict = audit.verify([write("tampered.json", build())], ca)[0]
                got = verdict.problems[0] if verdict.problems else "ok"
            except Exception as error:  # a case that cannot be built is a disagreement too
                got = f"{type(error).__name__}: {error}"
            report(got.startswith(f"step {step}: ") and (says is None or says in got), f"step {step}: {name}", got)

        # A tampered file through the command line: exit status 1.
        last = [c for c in CASES if c[0] == "9"][-1]
        run = subprocess.run([sys.executable, str(HERE / "audit_reference.py"), "--ca", str(folder / "ca.cert.pem"),
                              str(write("tampered.json", last[2]()))], capture_output=True, text=True)
        report(run.returncode == 1 and "step 9:" in run.stdout, "a tampered file: exit status 1", run.stdout.strip())

        # Across files. Two different records of one session: both fail, in the duplicate check.
        first = fresh()
        second = fresh()  # the same session: every key and random value derives from the seed
        second.record.update(sequence=2, previous=hashlib.sha256(first.record_bytes()).hexdigest(),
                             outcome="aborted", abort="recorded again")
        verdicts = audit.verify([write("one.json", first.export()), write("two.json", second.export())], ca)
        report(all(v.problems and "same session" in v.problems[0] for v in verdicts),
               "step chain: two records of one Paillier session", [v.problems for v in verdicts])

        # Two different records with one sequence number.
        verdicts = audit.verify([write("one.json", fresh().export()),
                                 write("two.json", fresh(round_number=8).export())], ca)
        report(all(v.problems and v.problems[0].startswith("step chain: ") and "sequence 1" in v.problems[0]
                   for v in verdicts), "step chain: two records with sequence 1", [v.problems for v in verdicts])

        # A rewritten record: the history with record 3's `previous` changed and re-signed breaks
        # its own link and the link from record 4.
        history = make.history(FEDERATION)
        history[2].record["previous"] = flip(history[2].record["previous"])
        verdicts = audit.verify([write(f"h{i}.json", a.export()) for i, a in enumerate(history)], ca)
        report([v.ok for v in verdicts] == [True, True, False, False]
               and all(v.problems[0].startswith("step chain: the chain is broken") for v in verdicts[2:]),
               "step chain: a rewritten record", [v.problems for v in verdicts])

    cases = len(CASES) + len(MASKING)
    checks = cases + len(VALID) + 9
    print(f"{cases} tampered copies, {checks} checks: " + (f"{failures} disagreement(s)" if failures else "all agree"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
