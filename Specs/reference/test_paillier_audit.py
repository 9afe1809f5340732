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
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import audit_reference as audit  # noqa: E402
import make_paillier_audit as make  # noqa: E402

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

def case(step: str, name: str):
    def register(build):
        CASES.append((step, name, build))
        return build
    return register


CASES: list = []


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


@case("9", "outcome \"failed\", re-signed")
def _():
    a = fresh()
    a.record["outcome"] = "failed"
    return a.export()


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

def masking_export(extra: dict | None = None) -> bytes:
    """An aborted masking attempt whose log is empty (§4: nothing owed, no result): valid."""
    f = FEDERATION
    plan = make.round_plan(16, 3)
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
        "eventsDigest": hashlib.sha256(b"veil/v1/audit/events\x00").hexdigest(), "eventCount": 0}
    data = make.serialise(record)
    export = {"record": b64(data), "events": [], "plan": b64(plan),
              "signature": make.sign(f.coordinator[2], b"veil/v1/audit/record\x00" + data).hex(), **(extra or {})}
    return json.dumps(export).encode()


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
        for name, extra in (("masking", None), ("masking with a paillier key", {"paillier": {}})):
            verdict = audit.verify([write("masking.json", masking_export(extra))], ca)[0]
            report(verdict.ok, f"{name}: ok", verdict.problems or "ok")

        # Each tampered copy alone: not ok, first failure at exactly its step.
        for step, name, build in CASES:
            try:
                verdict = audit.verify([write("tampered.json", build())], ca)[0]
                got = verdict.problems[0] if verdict.problems else "ok"
            except Exception as error:  # a case that cannot be built is a disagreement too
                got = f"{type(error).__name__}: {error}"
            report(got.startswith(f"step {step}: "), f"step {step}: {name}", got)

        # A tampered file through the command line: exit status 1.
        run = subprocess.run([sys.executable, str(HERE / "audit_reference.py"), "--ca", str(folder / "ca.cert.pem"),
                              str(write("tampered.json", CASES[-1][2]()))], capture_output=True, text=True)
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

    cases = len(CASES)
    print(f"{cases} tampered copies, {cases + 7} checks: " + (f"{failures} disagreement(s)" if failures else "all agree"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
