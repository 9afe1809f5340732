"""The browser participant's modules in headless Chromium (web/tests/participant-test.html):

- x509.js against certificates the real CA issues (`veil ca issue`, and `veil ca request` +
  `veil ca sign`): accepted with the CN, role, signing key and validity openssl reads; refused,
  each with its typed code, when tampered with (a byte of the signing key, of the signature),
  truncated or followed by a byte, of the wrong role, outside its validity, or issued by another
  CA; and the ECDSA DER → IEEE P1363 conversion at its edges (leading zero bytes, short values).
- roundplan.js's protobuf encoding of RoundPlan against Python protobuf (classes generated from
  Specs/proto/veil.proto by grpc_tools.protoc) on random plans, and the digest.
- identity-store.js: a save / load / delete round trip in IndexedDB, the TLS key staying a
  non-extractable CryptoKey that still signs.
- participant.js: the challenge's answer (its Ed25519 signature checked here with `cryptography`)
  and Hello, both parsed as ParticipantMessage by Python protobuf's JSON parser; and the checks on
  crafted assignments, in Swift's order and with its Decline codes.
- participate.html: loads under its CSP and adopts a stored identity (title ENROLLED).

The federation end-to-end test (a real coordinator) is test_browser_federation's, not this one's.

    VEIL_REQUIRE_TOOLS=1 VEIL_BINARY=/tmp/veil-bin/veil python3 -m unittest python/tests/test_browser_participant.py -v
"""

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from browser_support import ROOT, ModuleFixtures, extension_values, openssl_binary, run, skip_or_fail, veil_binary  # noqa: E402

PAGE = "/web/tests/participant-test.html"
TIMEOUT = 120.0

fixtures = ModuleFixtures()
_proto_dir = None


def tearDownModule():
    fixtures.close()
    if _proto_dir:
        shutil.rmtree(_proto_dir, ignore_errors=True)


def veil_pb2():
    """Python classes generated from Specs/proto/veil.proto into a temporary directory."""
    global _proto_dir
    if _proto_dir is None:
        try:
            import grpc_tools  # noqa: F401
            import google.protobuf  # noqa: F401
        except ImportError:
            skip_or_fail("grpcio-tools and protobuf are needed (pip install grpcio-tools)")
        _proto_dir = tempfile.mkdtemp(prefix="veil-proto-")
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(ROOT, "Specs", "proto"),
                        "--python_out=" + _proto_dir, os.path.join(ROOT, "Specs", "proto", "veil.proto")], check=True)
        sys.path.insert(0, _proto_dir)
    import veil_pb2 as module
    return module


def pem_der(path):
    with open(path, encoding="ascii") as file:
        text = file.read()
    body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)


def b64(data):
    return base64.b64encode(data).decode("ascii")


def call(body, *args):
    """Runs an async function body in the test page with `t` = window.veilTest and `args`."""
    script = (
        "const done = arguments[arguments.length - 1];"
        "const args = Array.prototype.slice.call(arguments, 0, arguments.length - 1);"
        "const t = window.veilTest;"
        "(async () => {" + body + "})().then((value) => done({value}),"
        " (error) => done({error: String(error && error.stack || error), code: error && error.code}));"
    )
    result = fixtures.browser().execute_async(script, *args)
    if "error" in result:
        raise AssertionError("page error: %s" % result["error"])
    return result["value"]


def open_page():
    browser = fixtures.browser()
    browser._command("POST", "/timeouts", {"script": int(TIMEOUT * 1000)})
    browser.navigate(fixtures.origin() + PAGE)
    title = browser.wait_until("/^(READY|ERROR)/.test(document.title) && document.title", timeout=TIMEOUT)
    if title != "READY":
        raise AssertionError(title)


class BrowserParticipantTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.veil = veil_binary()
        cls.openssl = openssl_binary()
        cls.tmp = tempfile.mkdtemp(prefix="veil-browser-participant-")
        cls.ca = os.path.join(cls.tmp, "CA")
        cls.other_ca = os.path.join(cls.tmp, "CA2")
        run(cls.veil, "ca", "init", "--dir", cls.ca)
        run(cls.veil, "ca", "init", "--dir", cls.other_ca)
        for id, role in [("alice", "participant"), ("bob", "participant"), ("carol", "participant"),
                         ("coordinator", "coordinator"), ("coord2", "coordinator"), ("kh", "key-holder")]:
            run(cls.veil, "ca", "issue", "--dir", cls.ca, "--id", id, "--role", role)
        run(cls.veil, "ca", "issue", "--dir", cls.other_ca, "--id", "coordinator", "--role", "coordinator")
        run(cls.veil, "ca", "issue", "--dir", cls.other_ca, "--id", "alice", "--role", "participant")
        # A holder's own request, signed by the CA (wire §2.1), as well as `issue`'s.
        holder = os.path.join(cls.tmp, "holder")
        run(cls.veil, "ca", "request", "--id", "dave", "--role", "participant", "--out", holder)
        run(cls.veil, "ca", "sign", "--dir", cls.ca, "--request", os.path.join(holder, "dave.csr.pem"),
            "--role", "participant", "--out", os.path.join(holder, "dave.cert.pem"))
        cls.der = {id: pem_der(os.path.join(cls.ca, id + ".cert.pem"))
                   for id in ["ca", "alice", "bob", "carol", "coordinator", "coord2", "kh"]}
        cls.der["dave"] = pem_der(os.path.join(holder, "dave.cert.pem"))
        cls.other = {id: pem_der(os.path.join(cls.other_ca, id + ".cert.pem")) for id in ["ca", "coordinator", "alice"]}
        cls.paths = {id: os.path.join(cls.ca, id + ".cert.pem") for id in ["alice", "bob", "carol", "coordinator"]}
        cls.paths["dave"] = os.path.join(holder, "dave.cert.pem")
        with open(os.path.join(cls.ca, "alice.signing.key"), encoding="ascii") as file:
            cls.alice_seed = file.read().strip()
        fixtures.browser()
        open_page()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def signing_key(self, id):
        return extension_values(self.openssl, self.paths[id])["1.3.6.1.4.1.32473.1.2"][4:]  # after 04 20

    def verify(self, der, role, ca=None, now=None):
        """x509.verifyCertificate in the page: {ok: identity} or {code, message}."""
        return call("""
            const [der, ca, role, now] = args;
            try {
              const r = await t.x509.verifyCertificate(t.fromHex(der), t.fromHex(ca), role, now ?? Date.now());
              return {ok: {id: r.id, role: r.role, key: t.hex(r.signingKey), notBefore: r.notBefore.getTime(), notAfter: r.notAfter.getTime()}};
            } catch (e) {
              if (!(e instanceof t.x509.CertificateError)) throw e;
              return {code: e.code, message: e.message};
            }
        """, der.hex(), (ca or self.der["ca"]).hex(), role, now)

    # --- x509.js ------------------------------------------------------------------------------

    def test_x509_accepts_certificates_of_the_real_ca(self):
        for id, role in [("alice", "participant"), ("dave", "participant"), ("coordinator", "coordinator")]:
            with self.subTest(id=id):
                result = self.verify(self.der[id], role)
                self.assertIn("ok", result, result)
                self.assertEqual(result["ok"]["id"], id)
                self.assertEqual(result["ok"]["role"], role)
                self.assertEqual(result["ok"]["key"], self.signing_key(id))
        key_holder = self.verify(self.der["kh"], "key-holder")
        self.assertEqual(key_holder["ok"]["role"], "key-holder")

    def test_x509_refusals(self):
        alice = self.der["alice"]
        valid = self.verify(alice, "participant")["ok"]
        key_at = alice.find(bytes.fromhex(self.signing_key("alice")))
        self.assertGreater(key_at, 0)
        tampered_key = bytearray(alice)
        tampered_key[key_at + 5] ^= 0x01
        # The signature's BIT STRING is the certificate's last element: flip a byte of s.
        tampered_signature = bytearray(alice)
        tampered_signature[-3] ^= 0x40
        cases = [
            ("a byte of the signing key", bytes(tampered_key), "participant", None, None, "notIssuedByFederation"),
            ("a byte of the signature", bytes(tampered_signature), "participant", None, None, "notIssuedByFederation"),
            ("the wrong role", alice, "coordinator", None, None, "wrongRole"),
            ("a coordinator as participant", self.der["coordinator"], "participant", None, None, "wrongRole"),
            ("after notAfter", alice, "participant", None, valid["notAfter"] + 1000, "expired"),
            ("before notBefore", alice, "participant", None, valid["notBefore"] - 1000, "expired"),
            ("another CA's certificate", self.other["alice"], "participant", None, None, "notIssuedByFederation"),
            ("verified against another CA", alice, "participant", self.other["ca"], None, "notIssuedByFederation"),
            ("truncated", alice[:-1], "participant", None, None, "malformed"),
            ("a trailing byte", alice + b"\x00", "participant", None, None, "malformed"),
            ("empty", b"", "participant", None, None, "malformed"),
            ("the CA itself (no Veil id, no role)", self.der["ca"], "participant", None, None, "invalidName"),
        ]
        for name, der, role, ca, now, code in cases:
            with self.subTest(case=name):
                result = self.verify(der, role, ca, now)
                self.assertEqual(result.get("code"), code, result)
        # Exactly at the bounds it is valid.
        self.assertIn("ok", self.verify(alice, "participant", None, valid["notAfter"]))
        self.assertIn("ok", self.verify(alice, "participant", None, valid["notBefore"]))

    def openssl_certificate(self, name, extensions, ca_cert=None, ca_key=None):
        """A participant certificate for `name` made by openssl (`openssl x509 -req`) with Veil's role
        and signing-key extensions and `extensions` (openssl extension-file lines), signed by
        the CA (by default `veil ca`'s, with its ca.key.pem). Its DER."""
        folder = tempfile.mkdtemp(prefix="openssl-", dir=self.tmp)
        key, csr, cert, ext = (os.path.join(folder, n) for n in ("key.pem", "csr.pem", "cert.pem", "ext.cnf"))
        run(self.openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-subj", "/CN=" + name, "-out", csr)
        with open(ext, "w", encoding="ascii") as file:
            file.write("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                       "extendedKeyUsage = clientAuth\nsubjectAltName = DNS:%s\n" % name)
            file.write("1.3.6.1.4.1.32473.1.1 = DER:0C0B%s\n" % b"participant".hex())
            file.write("1.3.6.1.4.1.32473.1.2 = DER:0420%s\n" % (bytes(range(1, 33)).hex()))
            for line in extensions:
                file.write(line + "\n")
        run(self.openssl, "x509", "-req", "-in", csr, "-CA", ca_cert or os.path.join(self.ca, "ca.cert.pem"),
            "-CAkey", ca_key or os.path.join(self.ca, "ca.key.pem"), "-set_serial", "0x%x" % random.getrandbits(120),
            "-days", "2", "-sha256", "-extfile", ext, "-out", cert)
        return pem_der(cert)

    def openssl_ca(self, extensions):
        """A CA certificate and key made by openssl (self-signed, P-256) with `extensions` added."""
        folder = tempfile.mkdtemp(prefix="openssl-ca-", dir=self.tmp)
        key, cert = os.path.join(folder, "ca.key.pem"), os.path.join(folder, "ca.cert.pem")
        arguments = [self.openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", key, "-subj", "/CN=OpenSSL test CA", "-days", "2", "-sha256", "-out", cert,
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
        for line in extensions:
            arguments += ["-addext", line]
        run(*arguments)
        return cert, key

    def test_x509_refuses_unknown_critical_extensions(self):
        """RFC 5280 §4.2: a certificate with a critical extension the reader does not understand is
        refused; the same extension, not critical, is ignored."""
        unknown = "1.3.6.1.4.1.32473.9.1 = %sDER:0500"
        plain = self.openssl_certificate("eve", [])
        noncritical = self.openssl_certificate("eve", [unknown % ""])
        critical = self.openssl_certificate("eve", [unknown % "critical,"])
        self.assertIn("ok", self.verify(plain, "participant"))
        self.assertEqual(self.verify(plain, "participant")["ok"]["key"], bytes(range(1, 33)).hex())
        self.assertIn("ok", self.verify(noncritical, "participant"))
        refused = self.verify(critical, "participant")
        self.assertEqual(refused.get("code"), "unhandledCriticalExtension", refused)
        self.assertIn("1.3.6.1.4.1.32473.9.1", refused["message"])
        # Veil's request-only binding extension (1.3.6.1.4.1.32473.1.3) is not one a certificate reader acts on either.
        binding = self.openssl_certificate("eve", ["1.3.6.1.4.1.32473.1.3 = critical,DER:0500"])
        self.assertEqual(self.verify(binding, "participant").get("code"), "unhandledCriticalExtension")
        # A CA made by openssl: usable as it is; with an unknown critical extension of its own, refused.
        ca_cert, ca_key = self.openssl_ca([])
        leaf = self.openssl_certificate("eve", [], ca_cert, ca_key)
        self.assertIn("ok", self.verify(leaf, "participant", pem_der(ca_cert)))
        bad_cert, bad_key = self.openssl_ca(["1.3.6.1.4.1.32473.9.2=critical,DER:0500"])
        leaf = self.openssl_certificate("eve", [], bad_cert, bad_key)
        self.assertEqual(self.verify(leaf, "participant", pem_der(bad_cert)).get("code"), "invalidCA")

    def test_ecdsa_signature_conversion(self):
        def der_signature(r, s):
            def integer(v):
                raw = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
                if raw[0] & 0x80:
                    raw = b"\x00" + raw
                return b"\x02" + bytes([len(raw)]) + raw
            body = integer(r) + integer(s)
            return b"\x00" + b"\x30" + bytes([len(body)]) + body

        cases = [(1, 2), (2**255 + 7, 2**255 + 9), (2**247 + 3, 5), (0x7f << 248, 1), (2**256 - 1, 2**256 - 2)]
        for r, s in cases:
            with self.subTest(r=r, s=s):
                out = call("const x = t.x509.ecdsaDerToP1363(t.fromHex(args[0])); return x && t.hex(x);", der_signature(r, s).hex())
                self.assertEqual(out, (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex())
        bad = [
            der_signature(2**256, 1),  # 33 bytes of magnitude
            b"\x00\x30\x06\x02\x01\x80\x02\x01\x01",  # a negative r
            b"\x00\x30\x07\x02\x02\x00\x01\x02\x01\x01",  # a non-minimal r
            b"\x01" + der_signature(1, 2)[1:],  # unused bits
            der_signature(1, 2) + b"\x00",  # a trailing byte
        ]
        for signature in bad:
            with self.subTest(bad=signature.hex()):
                self.assertIsNone(call("return t.x509.ecdsaDerToP1363(t.fromHex(args[0]));", signature.hex()))

    # --- roundplan.js ---------------------------------------------------------------------------

    def test_round_plan_matches_python_protobuf(self):
        pb = veil_pb2()
        from google.protobuf import json_format
        rng = random.Random(20261206)
        cases = [random_assignment(pb, rng) for _ in range(300)]
        inputs = [json_format.MessageToJson(a, indent=None) for a, _ in cases]
        got = call("""
            return args[0].map((text) => {
              const a = JSON.parse(text);
              return [t.hex(t.roundplan.encodeRoundPlan(a)), t.hex(t.roundplan.roundPlanDigest(t.sodium, a))];
            });
        """, inputs)
        for index, ((assignment, plan), (encoded, digest)) in enumerate(zip(cases, got)):
            expected = plan.SerializeToString(deterministic=True)
            self.assertEqual(encoded, expected.hex(), "case %d: %s" % (index, inputs[index][:400]))
            self.assertEqual(digest, hashlib.sha256(b"veil/v1/round-plan\x00" + expected).hexdigest())
        # Coverage of what matters: present-but-empty messages, -0.0, NaN, packed vectors, the optional plans.
        self.assertTrue(any(a.HasField("distributed_dp") for a, _ in cases))
        self.assertTrue(any(a.HasField("asynchronous") for a, _ in cases))
        self.assertTrue(any('-0.0' in text for text in inputs))
        self.assertTrue(any('"NaN"' in text for text in inputs))

    # --- identity-store.js ----------------------------------------------------------------------

    def test_identity_store_round_trip(self):
        with open(self.paths["alice"], encoding="ascii") as file:
            certificate_pem = file.read()
        with open(os.path.join(self.ca, "ca.cert.pem"), encoding="ascii") as file:
            ca_pem = file.read()
        result = call("""
            const [seedHex, certificatePem, caPem] = args;
            await t.store.deleteIdentity();
            const before = await t.store.loadIdentity();
            const pair = await crypto.subtle.generateKey({name: "ECDSA", namedCurve: "P-256"}, false, ["sign", "verify"]);
            await t.store.saveIdentity({id: "alice", signingSeed: t.fromHex(seedHex), tlsPrivateKey: pair.privateKey, certificatePem, caPem});
            const loaded = await t.store.loadIdentity();
            const data = new TextEncoder().encode("possession");
            const signature = await crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, loaded.tlsPrivateKey, data);
            const verifies = await crypto.subtle.verify({name: "ECDSA", hash: "SHA-256"}, pair.publicKey, signature, data);
            let exported = "refused";
            try { await crypto.subtle.exportKey("pkcs8", loaded.tlsPrivateKey); exported = "exported"; } catch (e) { exported = e.name; }
            let invalid = null;
            try { await t.store.saveIdentity({id: "a b", signingSeed: new Uint8Array(32), certificatePem, caPem}); } catch (e) { invalid = e.name; }
            await t.store.deleteIdentity();
            const after = await t.store.loadIdentity();
            return {before, id: loaded.id, seed: t.hex(loaded.signingSeed), certificatePem: loaded.certificatePem, caPem: loaded.caPem,
                    isKey: loaded.tlsPrivateKey instanceof CryptoKey, extractable: loaded.tlsPrivateKey.extractable,
                    usages: loaded.tlsPrivateKey.usages, verifies, exported, invalid, after};
        """, self.alice_seed, certificate_pem, ca_pem)
        self.assertIsNone(result["before"])
        self.assertEqual(result["id"], "alice")
        self.assertEqual(result["seed"], self.alice_seed)
        self.assertEqual(result["certificatePem"], certificate_pem)
        self.assertEqual(result["caPem"], ca_pem)
        self.assertTrue(result["isKey"])
        self.assertIs(result["extractable"], False)
        self.assertEqual(result["usages"], ["sign"])
        self.assertTrue(result["verifies"])
        self.assertEqual(result["exported"], "InvalidAccessError")
        self.assertEqual(result["invalid"], "IdentityStoreError")
        self.assertIsNone(result["after"])

    # --- participant.js ---------------------------------------------------------------------------

    def test_challenge_answer_and_hello(self):
        pb = veil_pb2()
        from google.protobuf import json_format
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        nonce = bytes(range(32))
        for coordinator_id in ["coordinator", "coord.example-2"]:
            with self.subTest(coordinator_id=coordinator_id):
                out = call(AGENT_SETUP + """
                    const agent = makeAgent({coordinatorId: args[3]});
                    return await agent.onMessage({challenge: {nonce: args[2]}});
                """, self.agent_args(), None, b64(nonce), coordinator_id)
                self.assertEqual(len(out), 2)
                auth = json_format.Parse(json.dumps(out[0]), pb.ParticipantMessage())
                hello = json_format.Parse(json.dumps(out[1]), pb.ParticipantMessage())
                self.assertEqual(auth.WhichOneof("kind"), "authenticate")
                self.assertEqual(auth.authenticate.certificate, self.der["alice"])
                cid = coordinator_id.encode()
                message = b"veil/v1/browser/authenticate\x00" + nonce + len(cid).to_bytes(4, "little") + cid
                Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.signing_key("alice"))).verify(auth.authenticate.signature, message)
                self.assertEqual(hello.WhichOneof("kind"), "hello")
                self.assertEqual(hello.hello.protocol_version, 1)
                self.assertEqual(hello.hello.sample_count, 4)
                policy = hello.hello.policy
                self.assertEqual((policy.adversary, policy.minimum_cohort, policy.minimum_contributors, policy.security_bits),
                                 (1, 3, 3, 40))
                self.assertAlmostEqual(policy.corrupt_fraction, 0.05)
                self.assertEqual(hello.hello.resources.battery, -1)

    def agent_args(self):
        return {
            "seed": self.alice_seed,
            "der": {k: v.hex() for k, v in self.der.items()},
            "other": {k: v.hex() for k, v in self.other.items()},
        }

    def test_assignment_checks(self):
        pb = veil_pb2()
        from google.protobuf import json_format
        if not call("return t.secagg !== null;"):
            skip_or_fail("web/participant/secagg.js is not there yet")
        cases = [
            ("valid", {}, "secagg", None),
            ("a participant's certificate as the coordinator's", {"coordinator": "bob"}, "DECLINE_COORDINATOR", "coordinator certificate"),
            ("another coordinator id", {"coordinator": "coord2"}, "DECLINE_COORDINATOR", "names coordinator coord2"),
            ("a coordinator of another CA", {"coordinatorOther": True}, "DECLINE_COORDINATOR", "not issued by this federation"),
            ("a roster without this participant's key", {"dropOwnKey": True}, "DECLINE_ROSTER", "position 1"),
            ("a position past the roster", {"position": 4}, "DECLINE_ROSTER", "position 4"),
            ("a roster key of 31 bytes", {"shortKey": True}, "DECLINE_ROSTER", "not an Ed25519 public key"),
            ("t below the policy's floor", {"threshold": 2}, "DECLINE_POLICY", "threshold 2"),
            ("a cohort below the policy's", {"policy": {"minCohort": 4}}, "DECLINE_POLICY", "n = 3"),
            ("neighbour certificates swapped", {"swapNeighbours": True}, "DECLINE_ROSTER", "does not match the roster"),
            ("a neighbour certificate missing", {"dropNeighbour": True}, "DECLINE_ROSTER", "missing for 1"),
            ("a key holder as neighbour", {"keyHolderNeighbour": True}, "DECLINE_ROSTER", "position 3"),
            ("a Paillier round", {"paillier": True}, "DECLINE_PAILLIER_KEY", "masking rounds only"),
            ("a distributed-DP plan", {"distributedDp": True}, "DECLINE_PRIVACY", "does not run distributed DP"),
            ("an asynchronous plan", {"asynchronous": True}, "DECLINE_POLICY", "asynchronous"),
            ("a subset the session does not sum", {"subset": 3}, "DECLINE_POLICY", "a subset of 3"),
            ("a model the data does not fit", {"features": 3}, "DECLINE_TRAINING", "features"),
            ("a session of another length, before training", {"dimension": 50000000}, "DECLINE_POLICY",
             "the session sums 50000000 values"),
            ("central DP", {"dpClip": 1.0}, "secagg", None),
        ]
        for name, options, expected, reason in cases:
            with self.subTest(case=name):
                out = call(AGENT_SETUP + ASSIGNMENT + """
                    await storeAlice();
                    const agent = makeAgent({policy: args[2].policy ?? {}});
                    const out = await agent.onMessage({assignment: await assignment(args[2])});
                    return {out, record: agent.rounds[0], trainerCalls};
                """, self.agent_args(), None, options)
                messages = out["out"]
                self.assertEqual(len(messages), 1, messages)
                parsed = json_format.Parse(json.dumps(messages[0]), pb.ParticipantMessage())
                if expected == "secagg":
                    self.assertEqual(parsed.WhichOneof("kind"), "secagg", messages)
                    self.assertEqual(parsed.secagg.round, 5)
                    self.assertGreater(len(parsed.secagg.signed), 64)
                    self.assertEqual(out["record"]["state"], "masking")
                    self.assertEqual(out["record"]["centralDP"], "dpClip" in options)
                    self.assertEqual(out["trainerCalls"], 1)
                else:
                    self.assertEqual(parsed.WhichOneof("kind"), "decline", messages)
                    self.assertEqual(pb.DeclineCode.Name(parsed.decline.code), expected, parsed.decline.reason)
                    self.assertEqual(parsed.decline.round, 5)
                    self.assertIn(reason, parsed.decline.reason)
                    self.assertEqual(out["record"]["state"], "declined")
                    self.assertNotIn(self.alice_seed, parsed.decline.reason)
                    if expected != "DECLINE_TRAINING":
                        self.assertEqual(out["trainerCalls"], 0, "trained before declining")

    def test_a_session_is_taken_part_in_once(self):
        if not call("return t.secagg !== null;"):
            skip_or_fail("web/participant/secagg.js is not there yet")
        out = call(AGENT_SETUP + ASSIGNMENT + """
            await storeAlice();
            const agent = makeAgent({});
            const first = await agent.onMessage({assignment: await assignment({})});
            const again = await agent.onMessage({assignment: await assignment({})});
            const another = await agent.onMessage({assignment: await assignment({nonceByte: 9})});
            const offer = await agent.onMessage({offer: {version: "3"}});
            const result = await agent.onMessage({result: {round: "5", completed: true, survivors: 3}});
            return {first, again, another, offer, result, rounds: agent.rounds, tally: agent.tally};
        """, self.agent_args(), None)
        self.assertIn("secagg", out["first"][0])
        self.assertEqual(out["again"][0]["decline"]["code"], "DECLINE_POLICY")
        self.assertIn("already taken part", out["again"][0]["decline"]["reason"])
        self.assertIn("secagg", out["another"][0])  # another nonce: another session
        self.assertEqual(out["offer"], [])  # a ModelOffer is never answered
        self.assertEqual(out["result"], [])
        self.assertEqual(out["tally"]["assigned"], 3)
        self.assertEqual(out["tally"]["declined"], 1)

    def test_a_session_taken_part_in_survives_a_new_connection_and_a_reload(self):
        """The sessions an identity took part in are kept with it in IndexedDB, written before R0 is
        sent: a BrowserParticipant made afresh (a reconnect), or after a reload, declines the same
        assignment; a log that cannot be written declines rather than sends R0."""
        if not call("return t.secagg !== null;"):
            skip_or_fail("web/participant/secagg.js is not there yet")
        out = call(AGENT_SETUP + ASSIGNMENT + """
            await storeAlice();
            const first = await (await agentFromStore()).onMessage({assignment: await assignment({})});
            // The coordinator closes the socket after R0; the page connects again with a new agent.
            const reconnect = await agentFromStore();
            const again = await reconnect.onMessage({assignment: await assignment({})});
            const another = await reconnect.onMessage({assignment: await assignment({nonceByte: 9})});
            return {first, again, another, record: reconnect.rounds[0]};
        """, self.agent_args(), None)
        self.assertIn("secagg", out["first"][0], out["first"])
        self.assertEqual(len(out["again"]), 1, out["again"])
        self.assertEqual(out["again"][0].get("decline", {}).get("code"), "DECLINE_POLICY", out["again"])
        self.assertIn("already taken part", out["again"][0]["decline"]["reason"])
        self.assertEqual(out["record"]["state"], "declined")
        self.assertIn("secagg", out["another"][0])  # another session is taken part in
        # A reload: the page's module state is gone, the stored log is not.
        open_page()
        out = call(AGENT_SETUP + ASSIGNMENT + """
            const agent = await agentFromStore();
            return {
              again: await agent.onMessage({assignment: await assignment({})}),
              again9: await agent.onMessage({assignment: await assignment({nonceByte: 9})}),
              fresh: await agent.onMessage({assignment: await assignment({nonceByte: 10})}),
            };
        """, self.agent_args(), None)
        for name in ["again", "again9"]:
            self.assertEqual(out[name][0].get("decline", {}).get("code"), "DECLINE_POLICY", out[name])
            self.assertIn("already taken part", out[name][0]["decline"]["reason"])
        self.assertIn("secagg", out["fresh"][0])
        # The log cannot be written (the identity is gone from the store): declined, no R0.
        out = call(AGENT_SETUP + ASSIGNMENT + """
            const agent = await agentFromStore();
            await t.store.deleteIdentity();
            const out = await agent.onMessage({assignment: await assignment({nonceByte: 11})});
            return {out, trainerCalls};
        """, self.agent_args(), None)
        self.assertEqual(len(out["out"]), 1, out)
        self.assertEqual(out["out"][0].get("decline", {}).get("code"), "DECLINE_POLICY", out)
        self.assertIn("cannot record", out["out"][0]["decline"]["reason"])
        self.assertEqual(out["trainerCalls"], 0)

    def test_session_log_is_bounded_and_kept_with_its_identity(self):
        out = call(AGENT_SETUP + """
            await storeAlice();
            const log = t.store.sessionLog("alice", {limit: 3});
            const claims = [];
            for (const s of ["aa", "bb", "cc", "bb", "dd", "aa", "cc"]) claims.push(await log.claim(s));
            let otherId = null;
            try { await t.store.sessionLog("bob").claim("ee"); } catch (e) { otherId = e.name; }
            const limit = t.store.SESSION_LOG_LIMIT;
            // Saving the same identity again keeps its log; a new identity starts with none.
            await t.store.saveIdentity({id: "alice", signingSeed: t.fromHex(setup.seed), tlsPrivateKey: null,
                                        certificatePem: t.x509.derToPem(der.alice), caPem: t.x509.derToPem(der.ca)});
            const kept = await log.claim("dd");
            await storeAlice();
            const reset = await log.claim("dd");
            await t.store.deleteIdentity();
            return {claims, otherId, limit, kept, reset};
        """, self.agent_args())
        # aa bb cc; bb again refused; dd drops aa (the oldest); aa is new again and drops bb; cc remembered.
        self.assertEqual(out["claims"], [True, True, True, False, True, True, False])
        self.assertEqual(out["otherId"], "IdentityStoreError")
        self.assertEqual(out["limit"], 10000)
        self.assertIs(out["kept"], False)
        self.assertIs(out["reset"], True)

    def test_participant_folder_holds_only_the_page(self):
        """web/participant/ is what `veil serve` serves (browser.page): only what participate.html loads."""
        page = {"participate.html", "participate.js", "participate.css", "participant.js", "secagg.js", "trainer.js",
                "x509.js", "roundplan.js", "identity-store.js", "enrol.js", "sodium.js", "veil-crypto.js",
                "libsodium.wasm", "libsodium.wasm.sha256"}
        self.assertEqual(set(os.listdir(os.path.join(ROOT, "web", "participant"))), page)
        tests = set(os.listdir(os.path.join(ROOT, "web", "tests")))
        for name in ["participant-test", "enrol-test", "enrol-e2e", "secagg-test", "trainer-test", "vectors"]:
            self.assertLessEqual({name + ".html", name + ".js"}, tests)

    def test_coordinate_subset_vectors(self):
        with open(os.path.join(ROOT, "Vectors", "subset", "veil_coordinate_subset.json"), encoding="utf-8") as file:
            vectors = json.load(file)
        tests = [case for group in vectors["testGroups"] for case in group["tests"]]
        got = call("""
            return args[0].map((c) => {
              try {
                const subset = new t.participant.CoordinateSubset(t.sodium, c.length, c.size, t.fromHex(c.seed));
                return {indices: subset.indices, sent: c.payload ? subset.compress(c.payload) : null};
              } catch (e) { return {refused: String(e.message)}; }
            });
        """, tests)
        self.assertEqual(len(got), vectors["numberOfTests"])
        for case, result in zip(tests, got):
            with self.subTest(tcId=case["tcId"]):
                if case["result"] == "valid":
                    self.assertEqual(result.get("indices"), case["indices"], result)
                    self.assertEqual(result["sent"], case["sent"])
                else:
                    self.assertIn("refused", result)

    # --- participate.html ---------------------------------------------------------------------

    def test_page_adopts_a_stored_identity(self):
        with open(self.paths["alice"], encoding="ascii") as file:
            certificate_pem = file.read()
        with open(os.path.join(self.ca, "ca.cert.pem"), encoding="ascii") as file:
            ca_pem = file.read()
        browser = fixtures.browser()
        try:
            browser.navigate(fixtures.origin() + "/web/participant/participate.html")
            title = browser.wait_until("/^(NOT ENROLLED|ENROLLED|ERROR)/.test(document.title) && document.title", timeout=TIMEOUT)
            self.assertEqual(title, "NOT ENROLLED", browser.execute("return window.veilParticipant"))
            open_page()
            call("await t.store.saveIdentity({id: 'alice', signingSeed: t.fromHex(args[0]), tlsPrivateKey: null,"
                 " certificatePem: args[1], caPem: args[2]});", self.alice_seed, certificate_pem, ca_pem)
            browser.navigate(fixtures.origin() + "/web/participant/participate.html?coordinator_id=coordinator")
            title = browser.wait_until("/^(NOT ENROLLED|ENROLLED|ERROR)/.test(document.title) && document.title", timeout=TIMEOUT)
            self.assertEqual(title, "ENROLLED", browser.execute("return window.veilParticipant"))
            text = browser.execute("return document.body.innerText")
            self.assertIn("Enrolled as alice", text)
            self.assertNotIn(self.alice_seed, browser.execute("return document.documentElement.outerHTML"))
            self.assertNotIn(self.alice_seed, json.dumps(browser.execute("return window.veilParticipant.identity")))
        finally:
            open_page()
            call("await t.store.deleteIdentity();")


# The agent in the page: alice at position 1 of alice, bob, carol, with a stand-in trainer.
AGENT_SETUP = """
    const setup = args[0];
    const der = Object.fromEntries(Object.entries(setup.der).map(([k, v]) => [k, t.fromHex(v)]));
    const other = Object.fromEntries(Object.entries(setup.other).map(([k, v]) => [k, t.fromHex(v)]));
    const b64 = t.participant.toBase64;
    let trainerCalls = 0;
    const trainer = {
      trainLocally: async (request) => {
        trainerCalls += 1;
        return {delta: new Float64Array(request.parameters.length).fill(0.01), examples: request.dataset.count};
      },
    };
    const dataset = {features: new Float64Array(8), labels: Int32Array.from([0, 1, 0, 1]), count: 4, featureCount: 2};
    // alice stored afresh (her identity, and so an empty log of the sessions she took part in).
    async function storeAlice() {
      await t.store.deleteIdentity();
      await t.store.saveIdentity({id: "alice", signingSeed: t.fromHex(setup.seed), tlsPrivateKey: null,
                                  certificatePem: t.x509.derToPem(der.alice), caPem: t.x509.derToPem(der.ca)});
    }
    function makeAgent(options) {
      return new t.participant.BrowserParticipant({
        sodium: t.sodium, secagg: t.secagg, trainer, dataset,
        identity: {id: "alice", signingSeed: t.fromHex(setup.seed), certificateDer: der.alice},
        caDer: der.ca, coordinatorId: options.coordinatorId ?? "coordinator", policy: options.policy ?? {},
        sessionLog: options.sessionLog ?? t.store.sessionLog("alice"),
      });
    }
    // A BrowserParticipant as the page makes one: from the stored identity, with its session log.
    async function agentFromStore() {
      const stored = await t.store.loadIdentity();
      return new t.participant.BrowserParticipant({
        sodium: t.sodium, secagg: t.secagg, trainer, dataset,
        identity: {id: stored.id, signingSeed: stored.signingSeed, certificateDer: t.x509.pemToDer(stored.certificatePem)},
        caDer: t.x509.pemToDer(stored.caPem), coordinatorId: "coordinator",
        sessionLog: t.store.sessionLog(stored.id),
      });
    }
"""

ASSIGNMENT = """
    async function key(name) {
      return (await t.x509.verifyCertificate(der[name], der.ca, "participant")).signingKey;
    }
    async function assignment(o) {
      const keys = [await key("alice"), await key("bob"), await key("carol")];
      if (o.dropOwnKey) keys[0] = new Uint8Array(32).fill(7);
      if (o.shortKey) keys[2] = keys[2].subarray(0, 31);
      const coordinator = o.coordinatorOther ? other.coordinator : der[o.coordinator ?? "coordinator"];
      const neighbours = [{position: 2, certificate: b64(der.bob)}, {position: 3, certificate: b64(der.carol)}];
      if (o.swapNeighbours) [neighbours[0].certificate, neighbours[1].certificate] = [neighbours[1].certificate, neighbours[0].certificate];
      if (o.dropNeighbour) neighbours.pop();
      if (o.keyHolderNeighbour) neighbours[1].certificate = b64(der.kh);
      const features = o.features ?? 2, classes = 2, parameters = classes * (features + 1);
      const a = {
        round: "5",
        session: {
          clientCount: 3, threshold: o.threshold ?? 3, neighborCount: 2, bits: 32,
          dimension: o.dimension ?? (o.subset ? o.subset + 2 : parameters + 1), adversary: 1,
          corruptFraction: 0.05, dropoutFraction: 0.1, securityBits: 40,
          nonce: b64(new Uint8Array(32).fill(o.nonceByte ?? 1)),
          coordinatorCertificate: b64(coordinator),
          rosterSigningKeys: keys.map(b64),
          neighborCertificates: neighbours,
        },
        position: o.position ?? 1,
        model: {vectors: [{values: new Array(parameters).fill(0)}]},
        training: {algorithm: "fedavg", localEpochs: 1, batchSize: 2, learningRate: 0.1, weightScale: 10,
                   seed: "7", model: "softmax", features, classes},
        encoding: {clip: 4, fractionalBits: 16, bits: 32, maxAddends: 3},
        roundDeadlineMillis: 30000,
      };
      if (o.dpClip) a.training.dpClip = o.dpClip;
      if (o.subset) { a.encoding.subsetSize = o.subset; a.encoding.subsetSeed = b64(new Uint8Array(32).fill(3)); }
      if (o.paillier) { a.paillier = {modulus: b64(new Uint8Array(256).fill(1)), bits: 32}; delete a.session; }
      if (o.distributedDp) a.distributedDp = {noise: "ddg", clip: 1, bits: 32, dimension: parameters, minimumParticipants: 3};
      if (o.asynchronous) a.asynchronous = {version: "3", maxStaleness: 2, baseVersion: "2", offerDigest: b64(new Uint8Array(32))};
      return a;
    }
"""


def random_double(rng):
    c = rng.random()
    if c < 0.15:
        return 0.0
    if c < 0.2:
        return -0.0
    if c < 0.24:
        return rng.choice([float("nan"), float("inf"), float("-inf"), 5e-324, 1.7976931348623157e308])
    return rng.uniform(-1e3, 1e3) if c < 0.6 else rng.choice([0.5, 1.0, -2.25, 0.01, 1e-9])


def random_u32(rng):
    return rng.choice([0, 0, 1, 127, 128, 300, 16383, 16384, 2**31, 2**32 - 1, rng.randrange(2**32)])


def random_u64(rng):
    return rng.choice([0, 1, 127, 128, 2**53 + 1, 2**63, 2**64 - 1, rng.randrange(2**64)])


def random_bytes(rng):
    return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 32, 200])))


def random_text(rng):
    return rng.choice(["", "fedavg", "mlp:16,8", "softmax", "caf\u00e9 \u2211", "x" * 200])


def fill(rng, message, fields):
    """Sets each field of `message` (name → how to draw its value) with probability 0.7, after
    marking the message present (present but possibly empty)."""
    message.SetInParent()
    for name, draw in fields.items():
        if rng.random() < 0.7:
            setattr(message, name, draw(rng))


def random_assignment(pb, rng):
    """A RoundAssignment with random plan fields (some absent, some present but empty) and the
    RoundPlan Swift would build from it (RoundPlanDigest.encoded)."""
    a = pb.RoundAssignment()
    a.round = random_u64(rng)
    a.position = 1 + rng.randrange(5)
    if rng.random() < 0.9:
        a.model.SetInParent()
        for _ in range(rng.choice([0, 1, 2, 3])):
            a.model.vectors.add().values.extend(random_double(rng) for _ in range(rng.choice([0, 1, 5, 40])))
    if rng.random() < 0.9:
        fill(rng, a.training, {
            **dict.fromkeys(["algorithm", "model"], random_text),
            **dict.fromkeys(["local_epochs", "batch_size", "features", "classes"], random_u32),
            **dict.fromkeys(["learning_rate", "momentum", "weight_decay", "proximal_mu", "weight_scale", "dp_clip"],
                            random_double),
            "seed": random_u64})
    if rng.random() < 0.9:
        fill(rng, a.encoding, {
            "clip": random_double,
            **dict.fromkeys(["fractional_bits", "bits", "max_addends", "subset_size"], random_u32),
            "subset_seed": random_bytes})
    if rng.random() < 0.4:
        fill(rng, a.distributed_dp, {
            "noise": random_text,
            **dict.fromkeys(["clip", "beta", "unit_scale", "unit_local_stddev"], random_double),
            **dict.fromkeys(["bits", "dimension", "minimum_participants"], random_u32),
            "rotation_seed": random_bytes})
    if rng.random() < 0.3:
        fill(rng, a.asynchronous, {"version": random_u64, "max_staleness": random_u32, "base_version": random_u64,
                                   "offer_digest": random_bytes})
    if rng.random() < 0.3:
        a.session.client_count = 3  # not part of the plan
    plan = pb.RoundPlan()
    plan.model.CopyFrom(a.model)
    plan.training.CopyFrom(a.training)
    plan.encoding.CopyFrom(a.encoding)
    if a.HasField("distributed_dp"):
        plan.distributed_dp.CopyFrom(a.distributed_dp)
    if a.HasField("asynchronous"):
        plan.asynchronous.CopyFrom(a.asynchronous)
    return a, plan


if __name__ == "__main__":
    unittest.main()
