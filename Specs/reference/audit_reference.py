#!/usr/bin/env python3
"""An independent verifier of Veil's exported audit records, written from Specs/audit.md (section
numbers below are that document's), with Specs/secagg.md for the masking session and server,
Specs/paillier.md for Paillier sessions and Specs/wire.md §2 for the certificates.

For each exported file (`round-RRRRRR-attempt-AAA.json`, §3) it reads the record's `secureSum`
(absent: a masking record; `paillier`: a Paillier record, §7; anything else fails step 1) and
runs the checks of §4 or of §7.3 in order, reporting the first that fails. A masking record:

1. the export is *strict JSON* (§4: `parse_json()` — UTF-8 without a byte-order mark, at most 512
   levels, no key twice once escapes are decoded, no raw control character in a string, every
   number an integer of at most 19 digits without fraction, exponent or leading zero); the
   record is canonical base64 and parses, its bytes are its canonical serialisation (written
   here by `canonical()`, from §2's rules: sorted keys, no whitespace, `/` unescaped, numbers as
   §2 says), `version` 1, `sequence`, `round`, `attempt` ≥ 1, `abort` present exactly when the
   outcome is not `completed`, `previous` lower-case hex;
2. the coordinator's certificate (issued by the CA, valid at `recorded`, role coordinator), the
   record's signature under its Ed25519 key, and `serverKey` = that key;
3. every roster certificate (CA, validity, role participant, the member's id and key);
4. the session rebuilt (secagg.md §3), its parameters passing secagg.md §2
   (secagg_parameters_reference.py);
5. the round plan: canonical base64, its digest is the session's context, it parses as a
   RoundPlan of Specs/proto/veil.proto (read by `read_proto()`) at every level and is its own
   canonical encoding (`parse_plan()`), and a distributed-DP plan fits the session
   (privacy_reference.py's mechanism rules);
6. the log's length and digest (§1);
7. the replay of the log through the server of secagg_reference.py (secagg.md §7, itself checked
   against every SecAgg vector by check_vectors.py): received events handed to it, deadlines
   closing the round, each sent event signed by `serverKey` and equal, but for its signature, to
   the next message the replay owes; none owed at the end; one SurvivorList body;
8. the attributions, and for a completed record the survivors and the sum's digest, against the
   replay.

A Paillier record (§7.3), whose export has no log but a `paillier` object (§7.2):

1. as above, against §7.1's schema; the export's `events` empty and its `paillier` object present;
2. as above;
3. as above, and the key holder's certificate (CA, validity, role key-holder);
4. the modulus — no leading zero byte and at most 1024 bytes, then the key holder's signature
   of its statement, both before the costly part: paillier.md §1's public-key rules from
   paillier_reference.py, whose primality test a hostile N must not reach unsigned — the packing
   (paillier.md §5), the session id (paillier.md §6.1: 2 ≤ n ≤ K) and the coordinator's
   signature of the assignment;
5. the round plan as above, but one carrying `distributed_dp` fails;
6. the export's contributions are the record's: positions, P fixed-width ciphertexts in
   Z*_(N²) each, their digest, and each member's receipt;
7. with a decryption request: every roster member contributed, the coordinator's request
   signature, the aggregate's digest, the rerandomization values r_j in Z*_N, and
   aggregate_j = (Π_members c_j) · r_j^N mod N²; without one, nothing of a request or a sum;
8. with a released sum: its length, its elements below 2^b, its digest (§2) and the key
   holder's signature of it; without one, no signature and no sum;
9. the outcome against the sum and the survivors (1…n with a sum, else none).

Hex (lower case, even length) and base64 (canonical) are checked by the step that reads each
field: the record's base64 and `previous` at step 1, the export's signature and `serverKey` at
2, roster keys and certificates at 3 (the coordinator's certificate at 2), the session's hex
at 4, the plan's base64 at 5, the log or the contributions at 6, and so on.

Then the chain across the files given (`previous` of sequence s = SHA-256 of record s − 1), and
duplicates: two records of one sequence, or of one session (the masking session id, or the
Paillier session id, once the log or the contributions check).

Usage: audit_reference.py [--json] --ca CA.pem FILE…   (one line per file; exit status 1 if any fails)
Importable: `verify(paths, ca_pem)` returns one `Verdict` per file.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import dataclasses
import decimal
import hashlib
import json
import math
import pathlib
import re
import struct
import sys

import nacl.bindings as sodium
from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import paillier_reference as paillier  # noqa: E402
import privacy_reference as privacy  # noqa: E402
import secagg_parameters_reference as parameters  # noqa: E402
import secagg_reference as secagg  # noqa: E402
import veil_reference as ref  # noqa: E402
from veil_reference import Refused  # noqa: E402

ROLE = ObjectIdentifier("1.3.6.1.4.1.32473.1.1")  # wire.md §2: DER UTF8String
SIGNING_KEY = ObjectIdentifier("1.3.6.1.4.1.32473.1.2")  # wire.md §2: DER OCTET STRING, 32 bytes
ROLES = ("coordinator", "participant", "key-holder")
EVENT_KINDS = {"received": 0, "deadline": 1, "sent": 2}
RECORD_CONTEXT = b"veil/v1/audit/record\x00"


class Failure(Exception):
    """A check that failed: `step` names it (§4's 1–8 or §7.3's 1–9, or "chain")."""

    def __init__(self, step: str, message: str):
        super().__init__(f"step {step}: {message}")
        self.step = step


@dataclasses.dataclass
class Verdict:
    path: str
    problems: list[str] = dataclasses.field(default_factory=list)
    sequence: int | None = None
    bytes: bytes | None = None  # the record's bytes, once it parses (for the chain)
    previous: str | None = None
    session: bytes | None = None  # the session id, once the log (or the contributions) check (across files)
    round: int | None = None  # a Paillier record's round, and whether it names a released sum
    released: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


# --- §2 the record: its schema and canonical bytes ---------------------------------------------------

INT = "int"
UINT8 = "uint8"
UINT32 = "uint32"
DOUBLE = "double"
STRING = "string"

MEMBER = {"id": STRING, "key": STRING, "certificate": STRING}
SESSION = {"clients": INT, "threshold": INT, "neighbors": INT, "bits": INT, "dimension": INT, "adversary": UINT8,
           "corruptFraction": DOUBLE, "dropoutFraction": DOUBLE, "securityBits": INT, "nonce": STRING,
           "context": STRING, "serverKey": STRING, "roster": [MEMBER]}
RECORD = {"version": INT, "federation": STRING, "sequence": INT, "previous": STRING, "round": INT, "attempt": INT,
          "recorded": DOUBLE, "outcome": STRING, "abort": (STRING, "optional"), "session": SESSION,
          "coordinatorCertificate": STRING, "survivors": [UINT32], "sumDigest": (STRING, "optional"),
          "attributions": [STRING], "eventsDigest": STRING, "eventCount": INT}
EVENT = {"kind": STRING, "party": UINT32, "message": STRING}
EXPORT = {"record": STRING, "signature": STRING, "events": [EVENT], "plan": (STRING, "optional")}

# §7.1: a Paillier record. Its session names the key holder's key and the packing instead of the
# masking parameters; it has no log, but the contributions, the request and the released sum.
# A threshold session (paillier.md §6.3) names the threshold key and its holders instead of one key
# holder's certificate and signature; its record names the t holders' signed partials instead of
# the key holder's signed sum.
THRESHOLD_HOLDER = {"holder": INT, "certificate": STRING, "signature": STRING}
PAILLIER_SESSION = {"modulus": STRING, "modulusSignature": (STRING, "optional"),
                    "keyHolderCertificate": (STRING, "optional"), "thresholdKey": (STRING, "optional"),
                    "thresholdHolders": ([THRESHOLD_HOLDER], "optional"), "bits": INT,
                    "capacity": INT, "dimension": INT, "nonce": STRING, "context": STRING, "serverKey": STRING,
                    "assignmentSignature": STRING, "roster": [MEMBER]}
PARTIALS = {"holder": INT, "digest": STRING, "signature": STRING}
CONTRIBUTION = {"position": UINT32, "digest": STRING, "receipt": STRING}
PAILLIER_RECORD = {"version": INT, "federation": STRING, "sequence": INT, "previous": STRING, "round": INT,
                   "attempt": INT, "recorded": DOUBLE, "outcome": STRING, "abort": (STRING, "optional"),
                   "coordinatorCertificate": STRING, "secureSum": STRING, "session": PAILLIER_SESSION,
                   "contributions": [CONTRIBUTION], "aggregateDigest": (STRING, "optional"),
                   "requestSignature": (STRING, "optional"), "sumDigest": (STRING, "optional"),
                   "resultSignature": (STRING, "optional"), "partials": ([PARTIALS], "optional"),
                   "survivors": [UINT32]}
# §7.2: the export's `paillier` object.
PAILLIER_EXPORT = {"contributions": [{"position": UINT32, "ciphertexts": [STRING]}], "rerandomization": [STRING],
                   "aggregate": [STRING], "sum": STRING,
                   "partials": ([{"holder": INT, "values": [STRING]}], "optional")}

RANGES = {INT: (-(1 << 63), (1 << 63) - 1), UINT8: (0, 255), UINT32: (0, (1 << 32) - 1)}


def typed(value, schema, where: str):
    """The value checked against the schema (keys not named are ignored, as a decoder does;
    the canonical comparison then refuses them). Raises ValueError."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{where} is not an object")
        out = {}
        for key, kind in schema.items():
            optional = isinstance(kind, tuple)
            if optional:
                kind = kind[0]
            if key not in value or (optional and value[key] is None):
                if optional:
                    continue
                raise ValueError(f"{where} has no `{key}`")
            out[key] = typed(value[key], kind, f"{where}.{key}")
        return out
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise ValueError(f"{where} is not an array")
        return [typed(x, schema[0], f"{where}[{i}]") for i, x in enumerate(value)]
    if schema == STRING:
        if not isinstance(value, str):
            raise ValueError(f"{where} is not a string")
        return value
    if schema == DOUBLE:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} is not a number")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where} is not an integer")
    low, high = RANGES[schema]
    if not low <= value <= high:
        raise ValueError(f"{where} is out of range")
    return value


# --- §4 *Strict JSON*: what both verifiers read an export as ------------------------------------

MAX_DEPTH = 512  # nesting: a value inside 512 containers is refused (the top-level value is at depth 1)
MAX_DIGITS = 19  # an integer's digits, its sign not counted
# One JSON token for the nesting scan: a whole string (escapes skipped), a bracket, a run of
# whitespace, a run of scalar characters, or any other single character (a lone quote, `,`, `:`).
JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|[ \t\n\r]+|[^ \t\n\r\[\]{}",:]+|.', re.S)


INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,%d})" % (MAX_DIGITS - 1))


def prescan(text: str, integers_only: bool) -> None:
    """What json.loads would not refuse, or not by §4's rule: nesting deeper than 512 levels
    (refused here, before a recursive reader could run out of stack; counted as `veil audit
    verify` counts — a value inside 512 open containers is one level too deep, an empty
    container at level 512 is not), and, with `integers_only`, a number that is not an integer
    of at most 19 digits without fraction, exponent or leading zero (json would read `01` as two
    tokens, and a long integer up to its own limit of 4300 digits)."""
    depth = 0
    for match in JSON_TOKEN.finditer(text):
        token = match.group()
        c = token[0]
        if c in "]}":
            depth -= 1
        elif c in " \t\n\r,:":
            continue
        else:
            if depth >= MAX_DEPTH:
                raise ValueError(f"the JSON nests deeper than {MAX_DEPTH} levels")
            if c in "[{":
                depth += 1
            elif integers_only and c in "-0123456789" and not INTEGER.fullmatch(token):
                raise ValueError(f"the number {token[:24]} is not an integer of at most {MAX_DIGITS} digits "
                                 "without fraction, exponent or leading zero")


def parse_json(data: bytes, integers_only: bool = True):
    """JSON read by §4's *Strict JSON* rules (ValueError for any that fails): UTF-8 without a
    byte-order mark, at most 512 levels deep, no key twice in one object (compared decoded, as
    the reader sees them: `"r\\u0065cord"` is `record`), no raw control character in a string
    (json's strict mode), no NaN or Infinity, every number an integer of at most 19 digits
    without fraction, exponent or leading zero (json's grammar refuses the leading zero). The
    record, which holds doubles, is read with `integers_only` False: its canonical bytes (§2)
    are then what it is held to."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise ValueError("a byte-order mark (the file must be UTF-8 without one)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 (byte {error.start})")
    prescan(text, integers_only)

    def constant(name):
        raise ValueError(f"{name} is not JSON")

    def unique(pairs):
        keys = set()
        for key, _ in pairs:
            if key in keys:
                raise ValueError(f"the key {key!r} appears twice in one object")
            keys.add(key)
        return dict(pairs)

    def integer(token: str) -> int:
        # Refused by the rule, before int() could refuse it by its own limit (4300 digits).
        if len(token.lstrip("-")) > MAX_DIGITS:
            raise ValueError(f"the number {token[:24]}… has more than {MAX_DIGITS} digits")
        return int(token)

    def fraction(token: str) -> float:
        if integers_only:
            raise ValueError(f"the number {token[:24]} is not an integer (it has a fraction or an exponent)")
        return float(token)

    parsed = json.loads(text, strict=True, parse_constant=constant, object_pairs_hook=unique, parse_int=integer,
                        parse_float=fraction)
    no_lone_surrogate(parsed)
    return parsed


def no_lone_surrogate(value) -> None:
    """§4: every string decodes to Unicode scalar values — json turns a lone `\\ud800` escape
    into a surrogate code point, which other readers refuse or replace (ValueError)."""
    strings = [value] if isinstance(value, str) else []
    if isinstance(value, dict):
        strings = list(value)
        for item in value.values():
            no_lone_surrogate(item)
    elif isinstance(value, list):
        for item in value:
            no_lone_surrogate(item)
    for text in strings:
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            raise ValueError("a string escapes a lone surrogate")


def swift_double(x: float) -> str:
    """§2: a double as the shortest decimal that reads back as the same double (Python's repr
    finds the same digits), positional for 10^−4 ≤ |x| ≤ 2^53 and zero, without a trailing `.0`,
    else d[.ddd]e±XX with at least two exponent digits."""
    if not math.isfinite(x):
        raise ValueError("a non-finite number")
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign, digits, exponent = decimal.Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digits))
    e = exponent + len(digits) - 1  # |x| = d.ddd × 10^e
    if 1e-4 <= abs(x) <= 2.0 ** 53:
        if e >= 0:
            whole, fraction = digits[:e + 1].ljust(e + 1, "0"), digits[e + 1:]
        else:
            whole, fraction = "0", "0" * (-e - 1) + digits
        text = whole + ("." + fraction if fraction else "")
    else:
        text = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + f"e{'-' if e < 0 else '+'}{abs(e):02d}"
    return ("-" if sign else "") + text


ESCAPES = {0x22: b'\\"', 0x5C: b"\\\\", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}


def json_string(text: str) -> bytes:
    out = bytearray(b'"')
    for byte in text.encode("utf-8"):  # a lone surrogate cannot be encoded: not canonical
        if byte in ESCAPES:
            out += ESCAPES[byte]
        elif byte < 0x20:
            out += b"\\u%04x" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def canonical(value, schema) -> bytes:
    """§2's serialisation of a typed value: sorted keys (by their UTF-8 bytes), no whitespace,
    `/` not escaped, an absent optional left out."""
    if isinstance(schema, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-8"))
        members = []
        for key in keys:
            kind = schema[key][0] if isinstance(schema[key], tuple) else schema[key]
            members.append(json_string(key) + b":" + canonical(value[key], kind))
        return b"{" + b",".join(members) + b"}"
    if isinstance(schema, list):
        return b"[" + b",".join(canonical(x, schema[0]) for x in value) + b"]"
    if schema == STRING:
        return json_string(value)
    if schema == DOUBLE:
        return swift_double(value).encode()
    return str(value).encode()


HEX = re.compile(r"(?:[0-9a-f]{2})*")


def hex_bytes(text: str, what: str, step: str) -> bytes:
    """§4 *Strict JSON*: hex in lower case, of even length — refused at the step that reads it."""
    if not HEX.fullmatch(text):
        raise Failure(step, f"{what} is not lower-case hex of even length")
    return bytes.fromhex(text)


def hex_text(text: str, what: str, step: str) -> str:
    """A hex field that a step compares as text (a digest, a key): checked as `hex_bytes` does."""
    hex_bytes(text, what, step)
    return text


def base64_bytes(text: str) -> bytes | None:
    """§4 *Strict JSON*: base64 in its canonical form — the standard alphabet, padded, zero
    padding bits — i.e. text that re-encodes to itself; None otherwise."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return data if base64.b64encode(data).decode("ascii") == text else None


# --- §4 steps 2–3: certificates (wire.md §2) ---------------------------------------------------------

def der_value(data: bytes, tag: int) -> bytes:
    """The content of one DER TLV of the given tag that is all of `data`; raises ValueError."""
    if len(data) < 2 or data[0] != tag:
        raise ValueError("wrong tag")
    length, at = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count or data[2] == 0:
            raise ValueError("bad length")
        length, at = int.from_bytes(data[2:2 + count], "big"), 2 + count
        if length < 0x80:
            raise ValueError("non-minimal length")
    if len(data) != at + length:
        raise ValueError("length disagrees")
    return data[at:]


@dataclasses.dataclass
class Identity:
    id: str
    role: str
    key: bytes


def identity(encoded: str, ca: x509.Certificate, at: float) -> Identity:
    """A certificate checked as wire.md §2 describes it: issued by the CA, valid at `at`, with a
    subject common name and Veil's role and signing-key extensions. Raises ValueError."""
    der = base64_bytes(encoded)
    if der is None:
        raise ValueError("not canonical base64 (the standard alphabet, padded, zero padding bits)")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise ValueError("not a certificate")
    try:
        certificate.verify_directly_issued_by(ca)
    except Exception:
        raise ValueError("not issued by the federation's CA")
    if not certificate.not_valid_before_utc.timestamp() <= at <= certificate.not_valid_after_utc.timestamp():
        raise ValueError("not valid when the record was made")
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise ValueError("no subject common name")
    try:
        role = der_value(certificate.extensions.get_extension_for_oid(ROLE).value.value, 0x0C).decode("utf-8")
        key = der_value(certificate.extensions.get_extension_for_oid(SIGNING_KEY).value.value, 0x04)
    except (x509.ExtensionNotFound, ValueError, AttributeError):
        raise ValueError("Veil's role or signing-key extension is missing or malformed")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if len(key) != 32:
        raise ValueError("the signing key is not 32 bytes")
    return Identity(str(names[0].value), role, key)


# --- §4 one file ------------------------------------------------------------------------------------

def events_digest(events: list[tuple[int, int, bytes]]) -> bytes:
    digest = hashlib.sha256(b"veil/v1/audit/events\x00").digest()
    for kind, party, data in events:
        digest = hashlib.sha256(digest + bytes([kind]) + secagg.le4(party) + secagg.le4(len(data)) + data).digest()
    return digest


def sum_digest(total: list[int], bits: int) -> str:
    width = (bits + 7) // 8
    return hashlib.sha256(b"veil/v1/audit/sum\x00" + b"".join(x.to_bytes(width, "little") for x in total)).hexdigest()


def record_schema(parsed) -> dict:
    """§7.1: the record's `secureSum` tells the kinds apart — absent for masking (§2), `paillier`
    for §7; any other value is neither (ValueError)."""
    if not isinstance(parsed, dict) or "secureSum" not in parsed:
        return RECORD
    if parsed["secureSum"] != "paillier":
        raise ValueError(f"unknown secureSum {parsed['secureSum']!r}")
    return PAILLIER_RECORD


def check_file(data: bytes, ca: x509.Certificate, verdict: Verdict) -> None:
    """The checks of §4 (§7.3 for a Paillier record) for one file, in order; raises Failure at
    the first that fails and fills the verdict's chain fields as soon as the record parses."""
    # 1. The export (strict JSON, §4) and the record.
    try:
        raw = parse_json(data)
        export = typed(raw, EXPORT, "the export")
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Failure("1", f"not an audit export: {error}")
    record_bytes = base64_bytes(export["record"])
    if record_bytes is None:
        raise Failure("1", "the record is not canonical base64 (the standard alphabet, padded, zero padding bits)")
    try:
        parsed = parse_json(record_bytes, integers_only=False)
        schema = record_schema(parsed)
        record = typed(parsed, schema, "the record")
    except ValueError as error:
        raise Failure("1", f"the record does not parse: {error}")
    verdict.sequence, verdict.bytes, verdict.previous = record["sequence"], record_bytes, record["previous"]
    try:
        encoded = canonical(record, schema)
    except ValueError:
        encoded = None
    if encoded != record_bytes:
        raise Failure("1", "the record's bytes are not its canonical serialisation")
    if record["version"] != 1:
        raise Failure("1", f"version {record['version']}, not 1")
    if record["sequence"] < 1 or record["round"] < 1 or record["attempt"] < 1:
        raise Failure("1", "the record's sequence, round and attempt must be at least 1")
    if ("abort" in record) != (record["outcome"] != "completed"):
        raise Failure("1", f"outcome {record['outcome']!r} " + ("with an abort reason: only an attempt that did not "
                           "complete has one" if "abort" in record else "without an abort reason"))
    # No later step reads `previous` (the chain compares it): its hex is checked with the record.
    hex_text(record["previous"], "the record's previous", "1")
    if len(record["previous"]) != 64:
        raise Failure("1", "the record's previous is not 32 bytes of hex")
    paillier_round = schema is PAILLIER_RECORD
    if paillier_round:
        given = paillier_export(raw, export)
    at = record["recorded"]

    # 2. The coordinator and its signature.
    try:
        coordinator = identity(record["coordinatorCertificate"], ca, at)
    except ValueError as error:
        raise Failure("2", f"the coordinator's certificate: {error}")
    if coordinator.role != "coordinator":
        raise Failure("2", "the record's signer is not a coordinator")
    signature = hex_bytes(export["signature"], "the signature", "2")
    if not secagg.ed25519_verify(coordinator.key, RECORD_CONTEXT + record_bytes, signature):
        raise Failure("2", "the coordinator's signature on the record does not verify")
    s = record["session"]
    if hex_text(s["serverKey"], "serverKey", "2") != coordinator.key.hex():
        raise Failure("2", "serverKey is not the coordinator's certified key")

    # 3. The roster: distinct members, each certified.
    for position, member in enumerate(s["roster"], start=1):
        hex_text(member["key"], f"roster position {position}'s key", "3")
    if len({m["id"] for m in s["roster"]}) != len(s["roster"]) or len({m["key"] for m in s["roster"]}) != len(s["roster"]):
        raise Failure("3", "the roster lists one participant (an id or a key) at two positions")
    keys = {secagg.SERVER: coordinator.key}
    for position, member in enumerate(s["roster"], start=1):
        try:
            certified = identity(member["certificate"], ca, at)
        except ValueError as error:
            raise Failure("3", f"roster position {position} ({member['id']}): {error}")
        if certified.role != "participant" or certified.id != member["id"] or certified.key.hex() != member["key"]:
            raise Failure("3", f"roster position {position} ({member['id']}): certificate and member disagree")
        keys[position] = certified.key
    if paillier_round:
        single = ("keyHolderCertificate" in s, "modulusSignature" in s)
        threshold = ("thresholdKey" in s, "thresholdHolders" in s)
        if single == (True, True) and threshold == (False, False):
            try:
                key_holder = identity(s["keyHolderCertificate"], ca, at)
            except ValueError as error:
                raise Failure("3", f"the key holder's certificate: {error}")
            if key_holder.role != "key-holder":
                raise Failure("3", "the key holder's certificate does not have the key-holder role")
            decryptors = key_holder.key
        elif threshold == (True, True) and single == (False, False):
            # paillier.md §6.3: at least one holder named, numbers 1…64 ascending, each once,
            # every one certified as a key holder.
            numbers = [entry["holder"] for entry in s["thresholdHolders"]]
            if not numbers or numbers != sorted(set(numbers)) or not all(1 <= i <= 64 for i in numbers):
                raise Failure("3", "the threshold holders must be named by distinct numbers in 1…64, ascending, "
                                   "at least one")
            decryptors = {}
            for entry in s["thresholdHolders"]:
                try:
                    holder = identity(entry["certificate"], ca, at)
                except ValueError as error:
                    raise Failure("3", f"threshold holder {entry['holder']}'s certificate: {error}")
                if holder.role != "key-holder" or entry["holder"] in decryptors:
                    raise Failure("3", f"threshold holder {entry['holder']} is not a key holder, or is named twice")
                decryptors[entry["holder"]] = holder.key
        else:
            raise Failure("3", "a session names either one key holder (its certificate and signature of the "
                               "modulus) or a threshold key and its holders")
        check_paillier(export, given, record, coordinator.key, decryptors, keys, verdict)
        return

    # 4. The session (secagg.md §3) and its parameters (secagg.md §2).
    session = rebuild_session(s, keys)

    # 5. The round plan the session binds (§3).
    check_plan(export.get("plan"), session, s)

    # 6. The log.
    events = []
    for index, event in enumerate(export["events"]):
        message = hex_bytes(event["message"], f"event {index}'s message", "6")
        if event["kind"] not in EVENT_KINDS:
            raise Failure("6", f"event {index}: unknown kind {event['kind']!r}")
        kind = EVENT_KINDS[event["kind"]]
        # §1: a deadline is (1, 0, empty) and a sent message has party 0, whatever the export says.
        events.append((kind, event["party"] if kind == 0 else 0, message if kind != 1 else b""))
    hex_text(record["eventsDigest"], "eventsDigest", "6")
    if len(events) != record["eventCount"] or events_digest(events).hex() != record["eventsDigest"]:
        raise Failure("6", "the log is not the one the record names (its length or digest differs)")
    verdict.session = session.id

    # 7. The replay.
    server = replay(events, session)

    # 8. The outcome.
    if "sumDigest" in record:
        hex_text(record["sumDigest"], "sumDigest", "8")
    if server.attributions != record["attributions"]:
        raise Failure("8", f"the attributions are not the ones the log proves: {server.attributions}")
    if record["outcome"] == "completed":
        if server.result is None:
            raise Failure("8", "the record says completed, but the log "
                          + (f"aborts: {server.abort}" if server.abort else "does not finish"))
        total, survivors = server.result
        if survivors != record["survivors"]:
            raise Failure("8", "the survivors are not the ones the log leaves")
        if record.get("sumDigest") != sum_digest(total, session.bits):
            raise Failure("8", "the released sum is not the one the log's masked inputs and shares give")
    elif record["outcome"] == "aborted":
        if server.result is not None:
            # The log completes the sum: the coordinator learned it, and the record must say so.
            total, survivors = server.result
            if survivors != record["survivors"] or record.get("sumDigest") != sum_digest(total, session.bits):
                raise Failure("8", "the record says aborted, but the log completes the secure sum: the record "
                                   "must name its survivors and sum")
        elif record["survivors"] or "sumDigest" in record:
            raise Failure("8", "an aborted record names survivors or a sum the log does not give")
    else:
        raise Failure("8", f"unknown outcome {record['outcome']!r}")


def rebuild_session(s: dict, keys: dict[int, bytes]) -> secagg.Session:
    if s["adversary"] not in (0, 1):
        raise Failure("4", f"unknown adversary {s['adversary']}")
    if not 1 <= s["bits"] <= 64:
        raise Failure("4", f"bit width {s['bits']} is not in 1…64")
    gamma, delta, sigma = s["corruptFraction"], s["dropoutFraction"], s["securityBits"]
    if not (0 <= gamma < 1 and 0 <= delta < 1 and gamma + delta < 1) or not 1 <= sigma <= 128:
        raise Failure("4", "the threat model is out of range (secagg.md §2)")
    for fraction in (gamma, delta):  # below 1: the numerator then fits in 64 bits
        if -decimal.Decimal(repr(fraction)).normalize().as_tuple().exponent > 18:
            raise Failure("4", f"the fraction {fraction!r} is written with more than 18 decimal places")
    model = parameters.Model({"adversary": ["honest-but-curious", "malicious"][s["adversary"]],
                              "corruptFraction": gamma, "dropoutFraction": delta, "securityBits": sigma})
    try:
        model.validate(s["clients"], s["threshold"], s["neighbors"])
    except Refused as refusal:
        raise Failure("4", f"the session's parameters are refused: {refusal.code}")
    if s["dimension"] < 1:
        raise Failure("4", f"dimension {s['dimension']} is below 1")
    if len(s["roster"]) != s["clients"]:
        raise Failure("4", f"the roster has {len(s['roster'])} members for {s['clients']} clients")
    nonce = hex_bytes(s["nonce"], "the nonce", "4")
    context = hex_bytes(s["context"], "the context", "4")
    if len(nonce) != 32 or len(context) != 32:
        raise Failure("4", "the nonce and the context must be 32 bytes each")
    return secagg.Session.announced(s["clients"], s["threshold"], s["neighbors"], s["bits"], s["dimension"],
                                    s["adversary"], keys, nonce, context)


# --- §4 step 5: the round plan (wire.md §4), a RoundPlan of Specs/proto/veil.proto -------------------

PROTO = pathlib.Path(__file__).resolve().parent.parent / "proto" / "veil.proto"
# Each scalar type's wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit).
WIRE_TYPES = {"double": 1, "fixed64": 1, "sfixed64": 1, "float": 5, "fixed32": 5, "sfixed32": 5,
              "int32": 0, "int64": 0, "uint32": 0, "uint64": 0, "sint32": 0, "sint64": 0, "bool": 0, "enum": 0,
              "string": 2, "bytes": 2, "message": 2}


@dataclasses.dataclass(frozen=True)
class ProtoField:
    number: int
    name: str
    type: str  # a scalar type of WIRE_TYPES, "enum", or "message"
    message: str | None  # the message type's name, for "message"
    repeated: bool
    presence: bool  # `optional` or in a oneof: written when set, even as 0

    @property
    def packable(self) -> bool:
        return self.repeated and WIRE_TYPES[self.type] != 2


def read_proto(text: str, root: str) -> dict[str, dict[int, ProtoField]]:
    """The messages `root` reaches in a .proto file, by name: each field's number, type and
    label. A small reader for what veil.proto uses (proto3 messages, enums, oneofs, `reserved`);
    a construct it does not follow (a map, a nested type, a field option) in a reached message
    raises ValueError rather than be read wrong."""
    text = re.sub(r"/\*.*?\*/", " ", re.sub(r"//[^\n]*", " ", text), flags=re.S)
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*|\d+|\S', text)
    messages: dict[str, list] = {}
    unsupported: dict[str, str] = {}
    enums: set[str] = set()
    at = 0

    def skip_block() -> None:  # from a `{`, past its matching `}`
        nonlocal at
        depth = 0
        while True:
            depth += {"{": 1, "}": -1}.get(tokens[at], 0)
            at += 1
            if depth == 0:
                return

    def skip_statement() -> None:  # past the next `;`
        nonlocal at
        while tokens[at] != ";":
            at += 1
        at += 1

    def body(name: str, presence: bool) -> None:  # a message's (or a oneof's) fields, from `{`
        nonlocal at
        at += 1
        while tokens[at] != "}":
            word = tokens[at]
            if word == ";":
                at += 1
            elif word in ("reserved", "option", "extensions"):
                skip_statement()
            elif word == "oneof":
                at += 2
                body(name, True)
            elif word in ("message", "enum", "extend", "map"):
                unsupported.setdefault(name, word)
                if word == "map":
                    skip_statement()
                else:
                    at += 2
                    skip_block()
            else:
                label = None
                if word in ("repeated", "optional", "required"):
                    label, at = word, at + 1
                kind, field_name, equals, number = tokens[at:at + 4]
                at += 4
                if equals != "=" or not number.isdigit() or label == "required":
                    raise ValueError(f"{PROTO.name}: cannot read {name}.{field_name}")
                if tokens[at] == "[":
                    unsupported.setdefault(name, "a field option")
                skip_statement()
                messages[name].append((int(number), field_name, kind.split(".")[-1], label, presence))
        at += 1

    while at < len(tokens):
        word = tokens[at]
        if word == "message":
            name = tokens[at + 1]
            messages[name] = []
            at += 2
            body(name, False)
        elif word in ("enum", "service"):
            if word == "enum":
                enums.add(tokens[at + 1])
            at += 2
            skip_block()
        else:
            skip_statement()

    schema: dict[str, dict[int, ProtoField]] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        if name in schema:
            continue
        if name not in messages or name in unsupported:
            raise ValueError(f"{PROTO.name}: message {name} is missing or uses {unsupported.get(name)}")
        fields = {}
        for number, field_name, kind, label, in_oneof in messages[name]:
            if kind in WIRE_TYPES and kind not in ("enum", "message"):
                field = ProtoField(number, field_name, kind, None, label == "repeated", label == "optional" or in_oneof)
            elif kind in enums:
                field = ProtoField(number, field_name, "enum", None, label == "repeated", label == "optional" or in_oneof)
            else:
                field = ProtoField(number, field_name, "message", kind, label == "repeated", True)
                pending.append(kind)
            if number in fields or not 1 <= number < 1 << 29:
                raise ValueError(f"{PROTO.name}: {name} field number {number}")
            fields[number] = field
        schema[name] = fields
    return schema


PLAN_SCHEMA = read_proto(PROTO.read_text(encoding="utf-8"), "RoundPlan")


class Protobuf:
    """Reads one message of PLAN_SCHEMA strictly (ValueError: it does not parse as that
    message), and notes the first way its bytes differ from the canonical encoding."""

    def __init__(self):
        self.note: str | None = None  # the first departure from the canonical encoding

    def departs(self, text: str) -> None:
        self.note = self.note or text

    def varint(self, data: bytes, at: int, where: str) -> tuple[int, int]:
        value = 0
        for i in range(10):
            if at + i >= len(data):
                raise ValueError(f"{where}: a truncated varint")
            byte = data[at + i]
            value |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                if i == 9 and byte > 1:
                    raise ValueError(f"{where}: a varint of more than 64 bits")
                if i and byte == 0:
                    self.departs(f"{where}: a varint not in its shortest form")
                return value, at + i + 1
        raise ValueError(f"{where}: a varint longer than 10 bytes")

    def scalar(self, field: ProtoField, wire: int, data: bytes, at: int, where: str):
        """One value of a scalar field at `at`; returns (value, next offset)."""
        if wire == 0:
            raw, at = self.varint(data, at, where)
            kind = field.type
            if kind in ("uint32", "sint32") and raw >> 32:
                self.departs(f"{where} holds a value of more than 32 bits")
            if kind in ("int32", "enum") and raw >> 31 and raw >> 31 != (1 << 33) - 1:
                self.departs(f"{where} holds a value that is not a 32-bit integer")
            if kind == "bool" and raw > 1:
                self.departs(f"{where} is a bool written as {raw}")
            if kind == "uint32":
                return raw & 0xFFFFFFFF, at
            if kind in ("int32", "enum"):
                low = raw & 0xFFFFFFFF
                return low - (1 << 32) if low >> 31 else low, at
            if kind == "int64":
                return raw - (1 << 64) if raw >> 63 else raw, at
            if kind in ("sint32", "sint64"):
                raw &= 0xFFFFFFFF if kind == "sint32" else (1 << 64) - 1
                return (raw >> 1) ^ -(raw & 1), at
            if kind == "bool":
                return raw != 0, at
            return raw, at  # uint64
        size = 8 if wire == 1 else 4
        if at + size > len(data):
            raise ValueError(f"{where}: a truncated fixed-width value")
        return data[at:at + size], at + size  # the bytes, as written (a double's bit pattern kept)

    def message(self, data: bytes, name: str, where: str) -> dict:
        """The fields of one message by number: a scalar's value, a repeated field's list, an
        embedded message's own dict."""
        fields = PLAN_SCHEMA[name]
        out: dict = {}
        seen: list[int] = []  # field numbers in the order their first occurrence came
        packed: set[int] = set()
        at = 0
        while at < len(data):
            key, at = self.varint(data, at, where)
            number, wire = key >> 3, key & 7
            field = fields.get(number)
            if field is None:
                raise ValueError(f"{where} has field {number}, which {name} does not have")
            here = f"{where}.{field.name}"
            expected = WIRE_TYPES[field.type]
            if wire != expected and not (field.packable and wire == 2):
                raise ValueError(f"{here} (field {number}) has wire type {wire}, not {expected}")
            if seen and number < seen[-1]:
                self.departs(f"{here} (field {number}) comes after field {seen[-1]}: fields not in number order")
            elif number in seen and (number != seen[-1] or not field.repeated):
                self.departs(f"{here} (field {number}) is written twice" if not field.repeated
                             else f"{here} (field {number}): its elements are not together")
            if number not in seen:
                seen.append(number)
            if wire == 2:
                size, at = self.varint(data, at, here)
                if at + size > len(data):
                    raise ValueError(f"{here}: a truncated length-delimited field")
                payload, at = data[at:at + size], at + size
                if field.packable:  # a packed run of scalars
                    if number in packed:
                        self.departs(f"{here} is packed in more than one field")
                    packed.add(number)
                    if not payload:
                        self.departs(f"{here} is written as an empty packed field")
                    items, i = out.setdefault(number, []), 0
                    while i < len(payload):
                        value, i = self.scalar(field, expected, payload, i, here)
                        items.append(value)
                    continue
                if field.type == "message":
                    value = self.message(payload, field.message, here)
                    if not field.repeated and number in out:
                        value = merged(out[number], value, field.message)  # a parser merges them
                elif field.type == "string":
                    try:
                        value = payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ValueError(f"{here} is not UTF-8")
                else:
                    value = payload
            else:
                value, at = self.scalar(field, wire, data, at, here)
                if field.packable:
                    self.departs(f"{here} is not packed")
            if field.repeated:
                out.setdefault(number, []).append(value)
            else:
                if field.type != "message" and not field.presence and is_default(field, value):
                    self.departs(f"{here} is written with its default value (a scalar equal to 0, or empty, is left out)")
                out[number] = value
        return out


def merged(first: dict, second: dict, name: str) -> dict:
    """An embedded message given twice, as protobuf parsers read it: the second merged into the first."""
    out = dict(first)
    for number, value in second.items():
        field = PLAN_SCHEMA[name][number]
        if field.repeated:
            out[number] = out.get(number, []) + value
        elif field.type == "message" and number in out:
            out[number] = merged(out[number], value, field.message)
        else:
            out[number] = value
    return out


def is_default(field: ProtoField, value) -> bool:
    """proto3's implicit default: 0, false, empty — a double or float whose bits are those of
    +0.0 (−0.0 is not the default and is written, as a protobuf writer that keeps −0.0 does)."""
    if field.type in ("double", "float"):
        return not any(value)
    if isinstance(value, bytes) and field.type in ("fixed32", "sfixed32", "fixed64", "sfixed64"):
        return not any(value)
    return value in (0, "", b"", False) and not isinstance(value, float)


def encode_scalar(field: ProtoField, value) -> bytes:
    if isinstance(value, bytes) and WIRE_TYPES[field.type] in (1, 5):
        return value
    if field.type == "string":
        value = value.encode("utf-8")
    if field.type in ("string", "bytes"):
        return ref.protobuf_varint(len(value)) + value
    if field.type in ("sint32", "sint64"):
        value = (value << 1) ^ (value >> 63)
    return ref.protobuf_varint(int(value) & ((1 << 64) - 1))  # a negative int32 or int64 in 10 bytes


def canonical_protobuf(value: dict, name: str) -> bytes:
    """§4's canonical encoding: fields in number order, each non-repeated field at most once, a
    repeated scalar packed in one field, a scalar equal to 0 (or empty) left out, an embedded
    message written when present (even empty), repeated messages each as its own field."""
    out = bytearray()
    for number, field in sorted(PLAN_SCHEMA[name].items()):
        if number not in value:
            continue
        v = value[number]
        if field.packable:
            if v:
                payload = b"".join(encode_scalar(field, x) for x in v)
                out += ref.protobuf_varint(number << 3 | 2) + ref.protobuf_varint(len(payload)) + payload
            continue
        for item in v if field.repeated else [v]:
            if field.type == "message":
                body = canonical_protobuf(item, field.message)
                out += ref.protobuf_varint(number << 3 | 2) + ref.protobuf_varint(len(body)) + body
            elif field.repeated or field.presence or not is_default(field, item):
                out += ref.protobuf_varint(number << 3 | WIRE_TYPES[field.type]) + encode_scalar(field, item)
    return bytes(out)


def parse_plan(plan: bytes) -> dict:
    """§4 *Strict JSON*: the plan parses as a RoundPlan of veil.proto at every level and its
    bytes are the canonical encoding of what they parse to (Failure at step 5 otherwise)."""
    reader = Protobuf()
    try:
        parsed = reader.message(plan, "RoundPlan", "RoundPlan")
    except ValueError as error:
        raise Failure("5", f"the round plan does not parse as a RoundPlan: {error}")
    if canonical_protobuf(parsed, "RoundPlan") != plan:
        raise Failure("5", "the round plan is not its canonical protobuf encoding: "
                           + (reader.note or "it differs from the re-encoding of what it parses to"))
    return parsed


def round_plan(encoded, s: dict) -> dict:
    """The export's plan: present, canonical base64, SHA-256("veil/v1/round-plan" ‖ 0x00 ‖ plan)
    = the session's context, a RoundPlan in its canonical encoding; returns its fields by
    number (both kinds of round share this)."""
    if not isinstance(encoded, str):
        raise Failure("5", "the export holds no round plan")
    plan = base64_bytes(encoded)
    if plan is None:
        raise Failure("5", "the round plan is not canonical base64 (the standard alphabet, padded, zero padding bits)")
    if hashlib.sha256(b"veil/v1/round-plan\x00" + plan).hexdigest() != s["context"]:
        raise Failure("5", "the round plan is not the one the session binds (its digest is not the session's context)")
    return parse_plan(plan)


def check_plan(encoded, session: secagg.Session, s: dict) -> None:
    """The export's plan (`round_plan`); a distributed-DP plan (RoundPlan field 4) checked as a
    participant checks it (wire.md §4.3, privacy.md §4): a valid mechanism whose
    minimum_participants the threshold guarantees, on the session's b and padded d."""
    d = round_plan(encoded, s).get(4)
    if d is None:
        return

    def double(number) -> float:  # DistributedDPPlan's doubles: 0.0 when left out
        return struct.unpack("<d", d.get(number, bytes(8)))[0]

    noise = d.get(1, "")
    bits, dimension, minimum = d.get(3, 0), d.get(4, 0), d.get(5, 0)
    if noise not in ("ddg", "skellam"):
        raise Failure("5", f"the distributed-DP plan: unknown noise {noise!r}")
    mechanism = {"x": range(dimension), "minimumParticipants": minimum, "beta": double(6),
                 "unitScale": double(7), "unitLocalStandardDeviation": double(8)}
    try:
        privacy.check_mechanism(mechanism)
    except Refused as refusal:
        raise Failure("5", f"the distributed-DP plan is refused: {refusal.code}")
    if not 1 <= bits <= 64 or not double(2) > 0:
        raise Failure("5", "the distributed-DP plan: bits or clip out of range")
    if s["threshold"] < minimum:
        raise Failure("5", f"the session's threshold {s['threshold']} is below the {minimum} noise shares "
                           "the plan's privacy assumes")
    padded = 1 << max(0, dimension - 1).bit_length()
    if s["bits"] != bits or s["dimension"] != padded:
        raise Failure("5", "the session's ring or length does not fit the distributed-DP plan")


def replay(events: list[tuple[int, int, bytes]], session: secagg.Session) -> secagg.Server:
    """§4 step 7: the log through a fresh server (secagg.md §7); returns it, ended or not."""
    server = secagg.Server(session)
    owed = collections.deque()
    survivor_lists = set()
    for index, (kind, party, data) in enumerate(events):
        if kind == 0:
            if not 1 <= party <= session.n:
                raise Failure("7", f"event {index}: party {party} is not on the roster")
            owed.extend(raw for _, raw in server.receive(data, party))
        elif kind == 1:
            owed.extend(raw for _, raw in server.deadline())
        else:
            try:
                sent = secagg.parse_envelope(data)
            except secagg.Abort:
                raise Failure("7", f"event {index}: a server message that does not parse")
            if sent["sender"] != secagg.SERVER or not secagg.signature_ok(session, sent):
                raise Failure("7", f"event {index}: a server message not signed by serverKey")
            if not owed:
                raise Failure("7", f"event {index}: the server sent a message the protocol did not call for")
            expected = owed.popleft()
            if expected[:-64] != sent["signed"]:  # all but the signature: header and body
                raise Failure("7", f"event {index}: the server's round-{sent['round']} message to "
                              f"{sent['recipient']} is not the one the recorded messages call for")
            if sent["round"] == 3:
                survivor_lists.add(sent["body"])
    if owed:
        raise Failure("7", f"the log ends before the server sent {len(owed)} message(s) the protocol called for")
    if len(survivor_lists) > 1:
        raise Failure("7", f"participants were shown {len(survivor_lists)} different survivor lists")
    return server


# --- §7 Paillier rounds -------------------------------------------------------------------------------

def paillier_export(raw: dict, export: dict) -> dict:
    """§7.2, checked with step 1: a Paillier export has no log, and carries `paillier`."""
    if export["events"]:
        raise Failure("1", "a Paillier round has no log, but the export lists events")
    if "paillier" not in raw:
        raise Failure("1", "the export of a Paillier record has no `paillier` object")
    try:
        return typed(raw["paillier"], PAILLIER_EXPORT, "the export's paillier")
    except ValueError as error:
        raise Failure("1", f"not a Paillier audit export: {error}")


@dataclasses.dataclass
class PaillierSession:
    """What steps 5–9 need of the session step 4 rebuilds (paillier.md §5, §6.1)."""
    id: bytes
    modulus: int  # N
    threshold: dict | None  # §6.3: t, holders (ℓ), v, vkeys, signing (number → key)
    modulus_bytes: int  # ⌈|N|/8⌉: N's encoding, and each r_j's
    ciphertext_bytes: int  # ⌈|N²|/8⌉: the fixed width of paillier.md §2
    members: int  # n, the roster's length
    bits: int  # b
    dimension: int  # d
    count: int  # P = ⌈d/S⌉ ciphertexts per contribution (paillier.md §5)


def check_paillier(export: dict, given: dict, record: dict, coordinator_key: bytes, key_holder_key: bytes,
                   keys: dict[int, bytes], verdict: Verdict) -> None:
    """§7.3 steps 4–9, after steps 1–3 (shared with §4, and the key holder's certificate)."""
    s = record["session"]
    # 4. The key, the packing and the session id.
    session = rebuild_paillier_session(s, record["round"], coordinator_key, key_holder_key, keys)

    # 5. The round plan the session binds: the same as a masking round's, but no distributed DP,
    # whose noise only masking sums.
    if 4 in round_plan(export.get("plan"), s):
        raise Failure("5", "a Paillier round plan carries distributed_dp, which only masking rounds sum")

    # 6. The contributions, the counterpart of a masking round's log: the session is now backed by
    # the members' own signatures, and takes part in the duplicate check across files.
    contributions = check_contributions(record, given["contributions"], session, keys)
    verdict.session = session.id
    verdict.round, verdict.released = record["round"], "sumDigest" in record

    # 7. The aggregate the coordinator asked the key holder to decrypt.
    check_aggregate(record, given, session, contributions, coordinator_key)

    # 8. The sum the key holder released (or the t threshold holders' partials give).
    if session.threshold is None:
        check_released_sum(record, given, session, key_holder_key)
    else:
        check_threshold_sum(record, given, session)

    # 9. The outcome.
    everyone = list(range(1, session.members + 1))
    if record["outcome"] == "completed":
        if "sumDigest" not in record or record["survivors"] != everyone:
            raise Failure("9", "a completed record must name a released sum and every roster position as survivors")
    elif record["outcome"] == "aborted":
        # A sum released, then an attempt ended for a reason outside the secure sum: the
        # coordinator learned the sum, and the record must say over whom.
        if record["survivors"] != (everyone if "sumDigest" in record else []):
            raise Failure("9", "an aborted record names every roster position as survivors with a released sum, "
                               "and none without one")
    else:
        raise Failure("9", f"unknown outcome {record['outcome']!r}")


def rebuild_paillier_session(s: dict, round_number: int, coordinator_key: bytes, key_holder_key: bytes,
                             keys: dict[int, bytes]) -> PaillierSession:
    """§7.3 step 4, in its order: N, the key holder's signature of it, the packing, the session
    id, the coordinator's signature of the assignment."""
    encoded = hex_bytes(s["modulus"], "the modulus", "4")
    # Before anything costly (the primality test of paillier.md §1): the encoding's size, then
    # the key holder's signature over the statement, which needs only these bytes.
    if not encoded or encoded[0] == 0:  # exactly ⌈|N|/8⌉ bytes: one encoding per key
        raise Failure("4", "the modulus is not ⌈|N|/8⌉ bytes (it is empty or has a leading zero byte)")
    if len(encoded) > 1024:
        raise Failure("4", f"the modulus is {len(encoded)} bytes, more than 1024 (8192 bits)")
    threshold = None
    if isinstance(key_holder_key, dict):
        # §6.3: each holder's signature of its share of the threshold key, over the key's bytes,
        # before the key is read; then the key, and its n must be the modulus.
        key_bytes = hex_bytes(s["thresholdKey"], "thresholdKey", "4")
        for entry in s["thresholdHolders"]:
            statement = (b"veil/v1/paillier/threshold-share\x00" + hashlib.sha256(key_bytes).digest()
                         + secagg.le4(entry["holder"]))
            if not secagg.ed25519_verify(key_holder_key[entry["holder"]], statement,
                                         hex_bytes(entry["signature"], "a threshold holder's signature", "4")):
                raise Failure("4", f"threshold holder {entry['holder']} did not sign its share of this key")
        threshold = read_threshold_key(key_bytes)
        if threshold["n"].to_bytes(len(encoded), "big") != encoded or threshold["s"] != 1:
            raise Failure("4", "the modulus is not the threshold key's n (or the key is not s = 1)")
        if not all(1 <= i <= threshold["holders"] for i in key_holder_key) or len(key_holder_key) < threshold["t"]:
            raise Failure("4", "the holders named are fewer than t, or numbered outside 1…ℓ")
        if 2 * threshold["t"] <= threshold["holders"]:
            raise Failure("4", "a threshold key with 2t ≤ ℓ: two quorums may be disjoint")
        if len(set(key_holder_key.values())) != len(key_holder_key):
            raise Failure("4", "one signing key holds two shares")
        threshold["signing"] = key_holder_key
        statement_key = None
    else:
        statement = b"veil/v1/paillier/public-key\x00" + secagg.le4(len(encoded)) + encoded
        if not secagg.ed25519_verify(key_holder_key, statement,
                                     hex_bytes(s["modulusSignature"], "modulusSignature", "4")):
            raise Failure("4", "the modulus is not signed by the certified key holder")
        statement_key = key_holder_key
    modulus = int.from_bytes(encoded, "big")
    try:
        paillier.check_modulus(modulus)
    except Refused as refusal:
        raise Failure("4", f"the modulus is refused: {refusal.code}")
    bits, capacity, dimension = s["bits"], s["capacity"], s["dimension"]
    # The session id holds b in one byte and K, d in four; the sum's elements are LE_8 (§7.2).
    if not 1 <= bits <= 64 or not 1 <= dimension < 1 << 32 or capacity >= 1 << 32:
        raise Failure("4", f"b = {bits}, K = {capacity} or d = {dimension} is out of range")
    try:
        slot, _ = paillier.pack([], bits, capacity, modulus.bit_length())
    except Refused as refusal:
        raise Failure("4", f"the packing (b = {bits}, K = {capacity}, |N| = {modulus.bit_length()}) is refused: "
                           f"{refusal.code}")
    slots = (modulus.bit_length() - 1) // slot
    members = len(s["roster"])
    if not 2 <= members <= capacity:
        raise Failure("4", f"a session of {members} members under capacity {capacity} (2 ≤ n ≤ K)")
    nonce = hex_bytes(s["nonce"], "the nonce", "4")
    context = hex_bytes(s["context"], "the context", "4")
    if len(nonce) != 32 or len(context) != 32:
        raise Failure("4", "the nonce and the context must be 32 bytes each")
    body = (nonce + round_number.to_bytes(8, "little") + secagg.le4(members) + bytes([bits]) + secagg.le4(capacity)
            + secagg.le4(dimension) + secagg.le4(len(encoded)) + encoded)
    tail = coordinator_key + b"".join(keys[a] for a in range(1, members + 1)) + context
    if threshold is None:
        session_id = hashlib.sha256(b"veil/v1/paillier/session\x00" + body + statement_key + tail).digest()
    else:
        named = sorted(threshold["signing"])
        session_id = hashlib.sha256(
            b"veil/v1/paillier/threshold-session\x00" + body + hashlib.sha256(key_bytes).digest()
            + secagg.le4(len(named)) + b"".join(secagg.le4(i) + threshold["signing"][i] for i in named)
            + tail).digest()
    signature = hex_bytes(s["assignmentSignature"], "assignmentSignature", "4")
    if not secagg.ed25519_verify(coordinator_key, b"veil/v1/paillier/assignment\x00" + session_id, signature):
        raise Failure("4", "the coordinator's signature of the session's assignment does not verify")
    return PaillierSession(session_id, modulus, threshold, len(encoded), ((modulus * modulus).bit_length() + 7) // 8,
                           members, bits, dimension, -(-dimension // slots))


def read_threshold_key(data: bytes) -> dict:
    """paillier.md §6.3's canonical encoding, read with §6.2's rules (Failure at step 4)."""
    domain = b"veil/v1/paillier/threshold-key\x00"
    if not data.startswith(domain) or len(data) < len(domain) + 16:
        raise Failure("4", "the threshold key is not its canonical encoding")
    at = len(domain)
    s, t, holders, n_bytes = (int.from_bytes(data[at + 4 * i:at + 4 * i + 4], "little") for i in range(4))
    at += 16
    if not 1 <= holders <= 64 or not 1 <= t <= holders or not 1 <= n_bytes <= 1024 or s != 1:
        raise Failure("4", f"a threshold key with s = {s}, t = {t}, ℓ = {holders}, {n_bytes} modulus bytes")
    n = int.from_bytes(data[at:at + n_bytes], "big")
    if len(data) < at + n_bytes + 4 or data[at] == 0:
        raise Failure("4", "the threshold key's n is cut short or has a leading zero byte")
    at += n_bytes
    width = int.from_bytes(data[at:at + 4], "little")
    at += 4
    if width != ((s + 1) * n.bit_length() + 7) // 8 or len(data) != at + (holders + 1) * width:
        raise Failure("4", "the threshold key's verification keys are not ℓ + 1 values of the ciphertext width")
    values = [int.from_bytes(data[at + i * width:at + (i + 1) * width], "big") for i in range(holders + 1)]
    n2 = n ** (s + 1)
    if math.gcd(n, 2 * math.factorial(max(holders, s, 2))) != 1:
        raise Failure("4", "n has a small prime factor")
    if any(not 0 < x < n2 or math.gcd(x, n) != 1 for x in values) or pow(values[0], 2, n2) == 1 or 1 in values[1:]:
        raise Failure("4", "a verification key is not a unit, v is of order at most 2, or some v_i = 1")
    return {"s": s, "t": t, "holders": holders, "n": n, "v": values[0], "vkeys": values[1:]}


def fixed_width(texts: list[str], count: int, width: int, what: str, step: str) -> list[bytes]:
    """`count` hex values of exactly `width` bytes each (paillier.md §2's fixed-width encoding)."""
    if len(texts) != count:
        raise Failure(step, f"{what}: {len(texts)} values, not {count}")
    values = [hex_bytes(text, f"{what} [{j}]", step) for j, text in enumerate(texts)]
    if any(len(value) != width for value in values):
        raise Failure(step, f"{what}: a value is not {width} bytes")
    return values


def check_contributions(record: dict, given: list[dict], session: PaillierSession,
                        keys: dict[int, bytes]) -> dict[int, list[int]]:
    """§7.3 step 6; returns each contributor's ciphertexts by position."""
    positions = [c["position"] for c in record["contributions"]]
    if [c["position"] for c in given] != positions:
        raise Failure("6", "the export's contributions are not the record's (their positions differ)")
    if any(not 1 <= a <= session.members for a in positions) or positions != sorted(set(positions)):
        raise Failure("6", "the contributions are not from distinct roster positions in ascending order")
    n2 = session.modulus * session.modulus
    out = {}
    for entry, claimed in zip(given, record["contributions"]):
        a = entry["position"]
        encoded = fixed_width(entry["ciphertexts"], session.count, session.ciphertext_bytes,
                              f"position {a}'s ciphertexts", "6")
        values = [int.from_bytes(c, "big") for c in encoded]
        if any(not 0 < c < n2 or math.gcd(c, session.modulus) != 1 for c in values):
            raise Failure("6", f"position {a}'s ciphertexts: one is not in Z*_(N²)")
        digest = hashlib.sha256(b"".join(encoded)).digest()
        if digest.hex() != hex_text(claimed["digest"], f"position {a}'s digest", "6"):
            raise Failure("6", f"position {a}'s ciphertexts are not the ones its receipt's digest names")
        receipt = hex_bytes(claimed["receipt"], f"position {a}'s receipt", "6")
        message = b"veil/v1/paillier/receipt\x00" + session.id + secagg.le4(a) + digest
        if not secagg.ed25519_verify(keys[a], message, receipt):
            raise Failure("6", f"position {a}'s receipt does not verify under its key")
        out[a] = values
    return out


def check_aggregate(record: dict, given: dict, session: PaillierSession, contributions: dict[int, list[int]],
                    coordinator_key: bytes) -> None:
    """§7.3 step 7: the aggregate is the rerandomised product of exactly the roster's contributions."""
    if "aggregateDigest" not in record:
        if any(key in record for key in ("requestSignature", "sumDigest", "resultSignature")):
            raise Failure("7", "no decryption was asked, but the record names a request signature or a sum")
        if given["aggregate"] or given["rerandomization"] or given["sum"]:
            raise Failure("7", "no decryption was asked, but the export holds an aggregate, r_j or a sum")
        return
    if sorted(contributions) != list(range(1, session.members + 1)):
        raise Failure("7", "a decryption was asked without every roster member's contribution "
                           "(the masks cancel only over the whole roster)")
    if "requestSignature" not in record:
        raise Failure("7", "a decryption was asked, but the record has no requestSignature")
    digest = hex_bytes(record["aggregateDigest"], "aggregateDigest", "7")
    signature = hex_bytes(record["requestSignature"], "requestSignature", "7")
    if not secagg.ed25519_verify(coordinator_key, b"veil/v1/paillier/decrypt\x00" + session.id + digest, signature):
        raise Failure("7", "the coordinator's signature of the decryption request does not verify")
    aggregate = fixed_width(given["aggregate"], session.count, session.ciphertext_bytes, "the aggregate", "7")
    if hashlib.sha256(b"".join(aggregate)).hexdigest() != record["aggregateDigest"]:
        raise Failure("7", "the export's aggregate is not the one aggregateDigest names")
    randomness = fixed_width(given["rerandomization"], session.count, session.modulus_bytes, "rerandomization", "7")
    n, n2 = session.modulus, session.modulus * session.modulus
    for j, encoded in enumerate(randomness):
        r = int.from_bytes(encoded, "big")
        if not 0 < r < n or math.gcd(r, n) != 1:
            raise Failure("7", f"r_{j} is not in Z*_N")
        product = 1
        for a in sorted(contributions):
            product = product * contributions[a][j] % n2
        if int.from_bytes(aggregate[j], "big") != product * pow(r, n, n2) % n2:
            raise Failure("7", f"aggregate ciphertext {j} is not the product of the contributions times r_{j}^N")


def check_released_sum(record: dict, given: dict, session: PaillierSession, key_holder_key: bytes) -> None:
    """§7.3 step 8: the sum is the one the key holder signed for this aggregate."""
    if "sumDigest" not in record:
        if "resultSignature" in record or given["sum"]:
            raise Failure("8", "no sum was released, but the record has a resultSignature or the export a sum")
        return
    if "resultSignature" not in record:
        raise Failure("8", "a sum was released, but the record has no resultSignature")
    released = hex_bytes(given["sum"], "the export's sum", "8")
    if len(released) != 8 * session.dimension:
        raise Failure("8", f"the export's sum is {len(released)} bytes, not 8d = {8 * session.dimension}")
    total = [int.from_bytes(released[i:i + 8], "little") for i in range(0, len(released), 8)]
    if any(x >> session.bits for x in total):
        raise Failure("8", f"an element of the sum is not below 2^{session.bits}")
    if sum_digest(total, session.bits) != hex_text(record["sumDigest"], "sumDigest", "8"):
        raise Failure("8", "the export's sum is not the one sumDigest names")
    message = (b"veil/v1/paillier/decrypted\x00" + session.id + bytes.fromhex(record["aggregateDigest"])
               + released)  # released is LE_8 of each element already
    signature = hex_bytes(record["resultSignature"], "resultSignature", "8")
    if not secagg.ed25519_verify(key_holder_key, message, signature):
        raise Failure("8", "the key holder's signature of the released sum does not verify")


def check_threshold_sum(record: dict, given: dict, session: PaillierSession) -> None:
    """§7.3 step 8 for a threshold record: at least t distinct holders' partials, each the
    holder's signed answer for this aggregate, every proof holding (paillier.md §6.2), and the
    t lowest-numbered combining to the sum."""
    th = session.threshold
    if "resultSignature" in record:
        raise Failure("8", "a threshold record has no key holder's signature of a sum")
    if "sumDigest" not in record:
        if "partials" in record or given["sum"] or given.get("partials"):
            raise Failure("8", "no sum was released, but the record names partials or the export a sum")
        return
    named, values = record.get("partials"), given.get("partials")
    numbers = [e["holder"] for e in named] if named is not None else []
    if named is None or values is None or numbers != [e["holder"] for e in values] \
            or len(named) < th["t"] or numbers != sorted(set(numbers)):
        raise Failure("8", "a threshold sum must name at least t distinct holders' partials, ascending, as the "
                           "export holds them")
    n, n2 = session.modulus, session.modulus ** 2
    aggregate = [int(c, 16) for c in given["aggregate"]]
    width = session.ciphertext_bytes
    answers = {}
    for entry, partials in zip(named, values):
        holder = entry["holder"]
        if holder not in th["signing"]:
            raise Failure("8", f"holder {holder}'s partials: the session names no such holder")
        wire = [hex_bytes(v, f"holder {holder}'s partial", "8") for v in partials["values"]]
        z_width = (3 * n.bit_length() + 512 + 257 + 7) // 8
        if len(wire) != session.count or any(len(w) != width + 32 + z_width for w in wire):
            raise Failure("8", f"holder {holder}'s partials are not P values of the wire width")
        digest = hashlib.sha256(b"".join(wire)).digest()
        message = (b"veil/v1/paillier/partially-decrypted\x00" + session.id + bytes.fromhex(record["aggregateDigest"])
                   + secagg.le4(holder) + digest)
        if digest.hex() != hex_text(entry["digest"], f"holder {holder}'s digest", "8") or not secagg.ed25519_verify(
                th["signing"][holder], message, hex_bytes(entry["signature"], f"holder {holder}'s signature", "8")):
            raise Failure("8", f"holder {holder}'s partials are not the ones it signed for this aggregate")
        parsed = [(int.from_bytes(w[:width], "big"), int.from_bytes(w[width:width + 32], "big"),
                   int.from_bytes(w[width + 32:], "big")) for w in wire]
        for c, (value, e, z) in zip(aggregate, parsed):
            if not (0 < value < n2 and math.gcd(value, n) == 1 and paillier.proof_holds(
                    n, 1, th["holders"], holder, c, value, th["v"], th["vkeys"][holder - 1], e, z)):
                raise Failure("8", f"holder {holder}'s partial decryption fails its proof")
        answers[holder] = [value for value, _, _ in parsed]
    plaintexts = [paillier.combine_partials(n, 1, th["t"], th["holders"], {i: answers[i][j] for i in answers})
                  for j in range(session.count)]
    slot, _ = paillier.pack([], session.bits, record["session"]["capacity"], n.bit_length())
    slots = (n.bit_length() - 1) // slot
    total = []
    for m in plaintexts:
        for k in range(slots):
            if len(total) < session.dimension:
                total.append((m >> (k * slot)) & ((1 << session.bits) - 1))
    released = hex_bytes(given["sum"], "the export's sum", "8")
    if released != b"".join(x.to_bytes(8, "little") for x in total):
        raise Failure("8", "the threshold holders' partials combine to another sum than the export's")
    if sum_digest(total, session.bits) != hex_text(record["sumDigest"], "sumDigest", "8"):
        raise Failure("8", "the combined sum is not the one sumDigest names")


# --- §4 the files together --------------------------------------------------------------------------

def verify(paths, ca_pem: bytes) -> list[Verdict]:
    """Checks each file (§4 steps 1–8, or §7.3 steps 1–9), then the chain; one verdict per
    file, in order."""
    ca = x509.load_pem_x509_certificate(ca_pem)
    verdicts = []
    for path in paths:
        verdict = Verdict(str(path))
        try:
            check_file(pathlib.Path(path).read_bytes(), ca, verdict)
        except OSError as error:
            verdict.problems.append(f"step 1: cannot read: {error}")
        except Failure as failure:
            verdict.problems.append(str(failure))
        except Exception as error:  # a case the reference cannot decide fails, and says so
            verdict.problems.append(f"the reference could not check this file: {type(error).__name__}: {error}")
        verdicts.append(verdict)
    by_sequence = {}
    for i, verdict in enumerate(verdicts):
        if verdict.sequence is not None:
            by_sequence.setdefault(verdict.sequence, i)  # the first file given with a sequence
    # Two different records with one sequence number, or of one session: two accounts of history.
    for verdict in verdicts:
        for other in verdicts:
            if other is verdict or verdict.bytes is None or other.bytes is None or other.bytes == verdict.bytes:
                continue
            if verdict.sequence is not None and verdict.sequence == other.sequence:
                verdict.problems.append(f"step chain: {other.path} is another record with sequence {verdict.sequence}")
            if verdict.session is not None and verdict.session == other.session:
                verdict.problems.append(f"step chain: {other.path} is another record of the same session")
            # §7.3: a Paillier round releases one sum (its key holders decrypt a round once).
            if verdict.released and other.released and verdict.round == other.round \
                    and verdict.session != other.session:
                verdict.problems.append(f"step chain: {other.path} names another released sum of round {verdict.round}")
    for verdict in verdicts:
        if verdict.sequence is None or verdict.sequence <= 1 or verdict.sequence - 1 not in by_sequence:
            continue
        before = verdicts[by_sequence[verdict.sequence - 1]]
        if verdict.previous != hashlib.sha256(before.bytes).hexdigest():
            verdict.problems.append(f"step chain: the chain is broken: `previous` is not the hash of record "
                                    f"{verdict.sequence - 1} ({before.path})")
    return verdicts


def main(argv=None) -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--ca", required=True, help="the federation CA's certificate (PEM)")
    arguments.add_argument("--json", action="store_true", help="one JSON array of {path, ok, problems}")
    arguments.add_argument("files", nargs="+", help="exported audit files")
    options = arguments.parse_args(argv)
    verdicts = verify(options.files, pathlib.Path(options.ca).read_bytes())
    if options.json:
        print(json.dumps([{"path": v.path, "ok": v.ok, "problems": v.problems} for v in verdicts]))
    for verdict in [] if options.json else verdicts:
        print(f"{verdict.path}: {'ok' if verdict.ok else verdict.problems[0]}")
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
