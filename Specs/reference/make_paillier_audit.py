#!/usr/bin/env python3
"""Builds Paillier audit exports (Specs/audit.md §7) from a fixed seed, for the self-test of
audit_reference.py while no coordinator writes them: a throwaway federation CA and certificates
(Specs/wire.md §2), a 1024-bit Paillier key (paillier_reference.generate, 512-bit primes), the
members' masked contributions and receipts (paillier_reference.Session, paillier.md §6.1), the
coordinator's rerandomised aggregate and request signature, the key holder's decryption (phe)
and its signature of the sum, the round plan (a RoundPlan, wire.md §4), and the record signed
by the coordinator and chained (audit.md §2).

Usage: make_paillier_audit.py OUT_DIR [--seed TEXT]

writes OUT_DIR/ca.cert.pem and a valid history of four Paillier attempts, one per branch of
§7.3 steps 7–9 (sequences 1–4, chained):

- round-000007-attempt-001.json  completed: every member contributed, the sum released;
- round-000008-attempt-001.json  aborted: a member did not contribute, nothing decrypted;
- round-000008-attempt-002.json  aborted: decryption asked, no sum released (the key holder refused);
- round-000009-attempt-001.json  aborted after the sum was released (survivors 1…n).

Importable: `Federation(seed)` and `Federation.attempt(...)` give an `Attempt` whose record and
`paillier` object a test can change before `Attempt.export()` writes (and re-signs) the file.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import math
import pathlib
import sys

import nacl.bindings as sodium
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from phe import paillier as phe

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import paillier_reference as paillier  # noqa: E402
import veil_reference as ref  # noqa: E402

ROLE = ObjectIdentifier("1.3.6.1.4.1.32473.1.1")
SIGNING_KEY = ObjectIdentifier("1.3.6.1.4.1.32473.1.2")
NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2035, 1, 1, tzinfo=datetime.timezone.utc)
RECORDED = 1764000000.25  # not a whole number: json.dumps then writes what §2 writes
MEMBERS = ("alice", "bob", "carol")
ZERO = "0" * 64


def derive(seed: bytes, label: str) -> bytes:
    return hashlib.sha256(seed + b"\x00" + label.encode()).digest()


def sign(secret_key: bytes, message: bytes) -> bytes:
    return sodium.crypto_sign(message, secret_key)[:64]


def le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def serialise(record: dict) -> bytes:
    """§2's serialisation for what these records hold (ASCII strings, integers, a double with a
    fraction): sorted keys, no whitespace, `/` unescaped — what json.dumps writes for them."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- wire.md §4: the round plan ------------------------------------------------------------------

def field(number: int, value) -> bytes:
    """One protobuf field: an int as a varint (wire type 0), bytes length-delimited (type 2)."""
    if isinstance(value, int):
        return ref.protobuf_varint(number << 3) + ref.protobuf_varint(value)
    return ref.protobuf_varint(number << 3 | 2) + ref.protobuf_varint(len(value)) + value


def round_plan(bits: int, capacity: int, distributed_dp: bool = False) -> bytes:
    """RoundPlan{training{algorithm, local_epochs, batch_size}, encoding{bits, max_addends}}, fields
    in number order, defaults omitted; with `distributed_dp`, a DistributedDPPlan{noise} too (which
    a Paillier round must not carry)."""
    training = field(1, b"fedavg") + field(2, 1) + field(3, 8)
    encoding = field(3, bits) + field(4, capacity)
    plan = field(2, training) + field(3, encoding)
    return plan + (field(4, field(1, b"ddg")) if distributed_dp else b"")


# --- wire.md §2: the CA and its certificates ---------------------------------------------------------

class Federation:
    """A CA, a coordinator, a key holder and three participants, every key derived from `seed`."""

    def __init__(self, seed: bytes = b"veil audit paillier self-test"):
        self.seed = seed
        self.ca_key = self.tls_key("ca")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Veil test CA")])
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(self.ca_key.public_key()).serial_number(self.serial("ca"))
                   .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                   .sign(self.ca_key, hashes.SHA256(), ecdsa_deterministic=True))
        self.coordinator = self.signer("coordinator")
        self.key_holder = self.signer("key-holder")
        self.members = {name: self.signer(name) for name in MEMBERS}
        self.p, self.q = paillier.generate(derive(seed, "paillier key"), 1024)
        self.n = self.p * self.q

    def tls_key(self, label: str) -> ec.EllipticCurvePrivateKey:
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        return ec.derive_private_key(int.from_bytes(derive(self.seed, "tls " + label), "big") % (order - 1) + 1,
                                     ec.SECP256R1())

    def serial(self, label: str) -> int:
        return int.from_bytes(derive(self.seed, "serial " + label)[:20], "big") >> 1 | 1

    def signer(self, label: str) -> tuple[bytes, bytes, bytes]:
        """(Ed25519 seed, public key, secret key)."""
        seed = derive(self.seed, "ed25519 " + label)
        public, secret = sodium.crypto_sign_seed_keypair(seed)
        return seed, public, secret

    def certificate(self, holder: str, role: str, signing_key: bytes, ca_key=None, ca=None) -> str:
        """A holder's certificate (base64 DER) as wire.md §2 describes it; another CA's when given."""
        ca_key, ca = ca_key or self.ca_key, ca or self.ca
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if role == "coordinator" \
            else [ExtendedKeyUsageOID.CLIENT_AUTH]
        utf8 = role.encode()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, holder)]))
            .issuer_name(ca.subject).public_key(self.tls_key(holder).public_key())
            .serial_number(self.serial(holder + " " + role)).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(holder)]), critical=False)
            .add_extension(x509.UnrecognizedExtension(ROLE, b"\x0c" + bytes([len(utf8)]) + utf8), critical=False)
            .add_extension(x509.UnrecognizedExtension(SIGNING_KEY, b"\x04\x20" + signing_key), critical=False)
            .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True))
        return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()

    def ca_pem(self) -> bytes:
        return self.ca.public_bytes(serialization.Encoding.PEM)

    def attempt(self, **options) -> "Attempt":
        return Attempt(self, **options)


# --- audit.md §7: one attempt --------------------------------------------------------------------------

class Attempt:
    """One attempt at a Paillier round, run honestly: `record` (§7.1) and `paillier` (§7.2) are
    plain dicts a test may change; `export()` serialises the record, signs it with the
    coordinator's key and returns the file's bytes."""

    # The defaults: b = 32, K = 3 (slots of 34 bits, 30 to a plaintext under a 1024-bit N), d = 40,
    # so each contribution is P = 2 ciphertexts.
    def __init__(self, federation: Federation, *, round_number: int = 7, attempt: int = 1, sequence: int = 1,
                 previous: str = ZERO, roster=MEMBERS, contributors=None, decrypt: bool = True, release: bool = True,
                 outcome: str | None = None, bits: int = 32, capacity: int = 3, dimension: int = 40,
                 plan: bytes | None = None):
        f = self.federation = federation
        label = f"round {round_number} attempt {attempt}"
        self.plan = round_plan(bits, capacity) if plan is None else plan
        context = hashlib.sha256(b"veil/v1/round-plan\x00" + self.plan).digest()
        members = len(roster)
        inputs = ref.Generator(derive(f.seed, "inputs " + label))
        randomness = ref.Generator(derive(f.seed, "randomness " + label))
        n = f.n
        n2 = n * n
        y = self.unit(randomness, n)
        key_bits = n.bit_length()
        slot = bits + (capacity - 1).bit_length()
        count = -(-dimension // ((key_bits - 1) // slot))
        vectors = [[paillier.random_bits(inputs, bits) for _ in range(dimension)] for _ in roster]
        # paillier_reference.Session: the session id, the members' masks, DJN contributions, receipts.
        self.session = paillier.Session({
            "p": f.p, "q": f.q, "bits": bits, "maxAddends": capacity, "dimension": dimension,
            "keyHolderSeed": f.key_holder[0].hex(), "coordinatorSeed": f.coordinator[0].hex(),
            "memberSeeds": [f.members[name][0].hex() for name in roster],
            "djnBase": str(pow(-y * y % n, n, n2)), "inputs": vectors,
            "exponents": [[paillier.random_bits(randomness, (key_bits + 1) // 2) for _ in range(count)]
                          for _ in roster],
            "nonce": derive(f.seed, "nonce " + label).hex(), "round": round_number, "context": context.hex()})
        s = self.session
        assert s.count == count
        self.width = (n2.bit_length() + 7) // 8
        contributors = list(range(1, members + 1)) if contributors is None else list(contributors)
        parts = {a: s.contribution(a) for a in contributors}

        self.record = {
            "version": 1, "federation": "veil-test", "sequence": sequence, "previous": previous,
            "round": round_number, "attempt": attempt, "recorded": RECORDED, "outcome": "completed",
            "coordinatorCertificate": f.certificate("coordinator", "coordinator", f.coordinator[1]),
            "secureSum": "paillier",
            "session": {
                "modulus": n.to_bytes(s.n_bytes, "big").hex(),
                "modulusSignature": sign(f.key_holder[2], s.statement()).hex(),
                "keyHolderCertificate": f.certificate("key-holder", "key-holder", f.key_holder[1]),
                "bits": bits, "capacity": capacity, "dimension": dimension,
                "nonce": derive(f.seed, "nonce " + label).hex(), "context": context.hex(),
                "serverKey": f.coordinator[1].hex(),
                "assignmentSignature": sign(f.coordinator[2], b"veil/v1/paillier/assignment\x00" + s.id).hex(),
                "roster": [{"id": name, "key": f.members[name][1].hex(),
                            "certificate": f.certificate(name, "participant", f.members[name][1])} for name in roster]},
            "contributions": [{"position": a, "digest": parts[a][1].hex(), "receipt": parts[a][2].hex()}
                              for a in contributors],
            "survivors": []}
        self.paillier = {
            "contributions": [{"position": a, "ciphertexts": [c.to_bytes(self.width, "big").hex() for c in parts[a][0]]}
                              for a in contributors],
            "rerandomization": [], "aggregate": [], "sum": ""}
        self.total = None
        if decrypt:
            self.ask(parts, randomness)
            if release:
                self.release(vectors if contributors == list(range(1, members + 1)) else None)
        if outcome is not None:
            self.record["outcome"] = outcome
        elif self.total is None:
            self.record["outcome"] = "aborted"
        if self.record["outcome"] == "aborted":
            self.record["abort"] = "a test abort"

    @staticmethod
    def unit(g: ref.Generator, n: int) -> int:
        while True:
            r = paillier.random_below(g, n)
            if r and math.gcd(r, n) == 1:
                return r

    def ask(self, parts: dict, randomness: ref.Generator) -> None:
        """The coordinator: the product of the contributions, each ciphertext rerandomised by r_j^N,
        and its signature of the decryption request."""
        s, f = self.session, self.federation
        self.r = [self.unit(randomness, s.n) for _ in range(s.count)]
        self.aggregate = []
        for j, r in enumerate(self.r):
            product = 1
            for a in sorted(parts):
                product = product * parts[a][0][j] % s.n2
            self.aggregate.append(product * pow(r, s.n, s.n2) % s.n2)
        digest = hashlib.sha256(b"".join(c.to_bytes(self.width, "big") for c in self.aggregate)).digest()
        self.record["aggregateDigest"] = digest.hex()
        self.record["requestSignature"] = sign(f.coordinator[2], b"veil/v1/paillier/decrypt\x00" + s.id + digest).hex()
        self.paillier["rerandomization"] = [r.to_bytes(s.n_bytes, "big").hex() for r in self.r]
        self.paillier["aggregate"] = [c.to_bytes(self.width, "big").hex() for c in self.aggregate]

    def release(self, vectors) -> None:
        """The key holder: decrypts the aggregate (phe), unpacks d elements of b bits, signs them."""
        s, f = self.session, self.federation
        private = phe.PaillierPrivateKey(phe.PaillierPublicKey(s.n), f.p, f.q)
        total = []
        for c in self.aggregate:
            m = private.raw_decrypt(c)
            total += [(m >> (s.slot * i)) % (1 << s.bits) for i in range(s.slots)]
        total = total[:s.d]
        if vectors is not None:  # the masks cancel over the whole roster: the sum of the inputs
            assert total == [sum(column) % (1 << s.bits) for column in zip(*vectors)], "the decrypted sum is wrong"
        self.set_sum(total)
        self.record["survivors"] = list(range(1, len(s.members) + 1))

    def set_sum(self, total: list[int], resign: bool = True) -> None:
        """The export's sum, the record's sumDigest (§2) and the key holder's signature of it."""
        s, f = self.session, self.federation
        released = b"".join(le(x, 8) for x in total)
        self.total = total
        self.paillier["sum"] = released.hex()
        width = (s.bits + 7) // 8
        self.record["sumDigest"] = hashlib.sha256(
            b"veil/v1/audit/sum\x00" + b"".join(x.to_bytes(width, "little") for x in total)).hexdigest()
        if resign:
            message = b"veil/v1/paillier/decrypted\x00" + s.id + bytes.fromhex(self.record["aggregateDigest"]) + released
            self.record["resultSignature"] = sign(f.key_holder[2], message).hex()

    def record_bytes(self) -> bytes:
        return serialise(self.record)

    def export(self, record_bytes: bytes | None = None, signature: bytes | None = None, **changes) -> bytes:
        """The export file of §3/§7.2; the record signed with the coordinator's key unless a
        signature is given; `changes` replace top-level keys (None removes one)."""
        record_bytes = self.record_bytes() if record_bytes is None else record_bytes
        if signature is None:
            signature = sign(self.federation.coordinator[2], b"veil/v1/audit/record\x00" + record_bytes)
        export = {"record": base64.b64encode(record_bytes).decode(), "signature": signature.hex(), "events": [],
                  "plan": base64.b64encode(self.plan).decode(), "paillier": self.paillier}
        for key, value in changes.items():
            if value is None:
                export.pop(key, None)
            else:
                export[key] = value
        return json.dumps(export, indent=1).encode()

    def file_name(self) -> str:
        return f"round-{self.record['round']:06d}-attempt-{self.record['attempt']:03d}.json"


def history(federation: Federation) -> list[Attempt]:
    """Four valid attempts, chained: one per branch of §7.3 steps 7–9."""
    attempts = [
        federation.attempt(round_number=7, attempt=1),
        federation.attempt(round_number=8, attempt=1, contributors=[1, 3], decrypt=False),
        federation.attempt(round_number=8, attempt=2, roster=("alice", "carol"), release=False),
        federation.attempt(round_number=9, attempt=1, outcome="aborted"),
    ]
    previous = ZERO
    for sequence, attempt in enumerate(attempts, start=1):
        attempt.record["sequence"], attempt.record["previous"] = sequence, previous
        previous = hashlib.sha256(attempt.record_bytes()).hexdigest()
    return attempts


def main(argv=None) -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("out", help="the folder to write ca.cert.pem and the exports into")
    arguments.add_argument("--seed", default="veil audit paillier self-test", help="the seed every key derives from")
    options = arguments.parse_args(argv)
    out = pathlib.Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    federation = Federation(options.seed.encode())
    (out / "ca.cert.pem").write_bytes(federation.ca_pem())
    for attempt in history(federation):
        (out / attempt.file_name()).write_bytes(attempt.export())
        print(out / attempt.file_name())
    return 0


if __name__ == "__main__":
    sys.exit(main())
