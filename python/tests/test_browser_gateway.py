"""The coordinator's WebSocket binding (Specs/wire.md §1.1) attacked by a hostile peer speaking
the real protocol to the real `veil serve`: who may authenticate, with what answer, and what a
connection may send. The browser itself joins a federation in test_browser_federation.py.

Needs the veil binary (VEIL_BINARY, or .build/debug/veil), openssl and PyNaCl; skipped when one
is missing, except where VEIL_REQUIRE_TOOLS=1 (.ci/run).
"""

import base64
import json
import os
import re
import socket
import ssl
import struct
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from browser_support import ROOT, Process, openssl_binary, run, skip_or_fail, veil_binary  # noqa: E402
from ws_client import Closed, HandshakeRefused, WebSocket  # noqa: E402

try:
    import nacl.signing
except ImportError:  # pragma: no cover - .ci/run installs it
    nacl = None

CONTEXT = b"veil/v1/browser/authenticate\x00"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if nacl is None:
            skip_or_fail("PyNaCl is not installed")
        cls.veil = veil_binary()
        cls.openssl = openssl_binary()
        cls.folder = tempfile.TemporaryDirectory(prefix="veil-gateway-")
        d = cls.folder.name
        for args in (["init", "--dir", d], ["issue", "--dir", d, "--id", "coordinator", "--role", "coordinator"],
                     ["issue", "--dir", d, "--id", "alice", "--role", "participant"],
                     ["issue", "--dir", d, "--id", "bob", "--role", "participant"],
                     ["issue", "--dir", d, "--id", "key-holder", "--role", "key-holder"]):
            run(cls.veil, "ca", *args)
        other = os.path.join(d, "other-ca")
        run(cls.veil, "ca", "init", "--dir", other)
        run(cls.veil, "ca", "issue", "--dir", other, "--id", "alice", "--role", "participant")
        cls.port = free_port()
        with open(os.path.join(d, "serve.json"), "w") as f:
            json.dump({"tls": {"ca": "ca.cert.pem", "certificate": "coordinator.cert.pem",
                               "key": "coordinator.key.pem", "signing_key": "coordinator.signing.key"},
                       "port": 0, "metrics_port": None, "rounds": 1, "min_participants": 3, "cohort_size": 3,
                       "state": "state.sqlite", "registration_timeout_seconds": 600, "max_message_bytes": 65536,
                       "browser": {"port": cls.port, "page": os.path.join(ROOT, "web", "participant")}}, f)
        # Its output to files: a pipe nobody reads would stall it once full.
        cls.serve = Process("serve", [cls.veil, "serve", "--config", "serve.json"], d, cwd=d)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", cls.port), timeout=1):
                    break
            except OSError:
                if cls.serve.process.poll() is not None:
                    raise AssertionError("veil serve exited:\n%s" % cls.serve.tail())
                time.sleep(0.2)
        else:
            raise AssertionError("the browser port never opened")

    @classmethod
    def tearDownClass(cls):
        cls.serve.stop()
        cls.folder.cleanup()

    # helpers

    def path(self, *parts):
        return os.path.join(self.folder.name, *parts)

    def der(self, pem):
        return run(self.openssl, "x509", "-in", pem, "-outform", "DER", input=b"").stdout

    def seed(self, path):
        with open(path) as f:
            return bytes.fromhex(f.read().strip())

    def answer(self, nonce, holder="alice", coordinator="coordinator", folder=None):
        folder = folder or self.folder.name
        statement = CONTEXT + nonce + struct.pack("<I", len(coordinator.encode())) + coordinator.encode()
        signature = nacl.signing.SigningKey(self.seed(os.path.join(folder, holder + ".signing.key"))).sign(
            statement).signature
        certificate = self.der(os.path.join(folder, holder + ".cert.pem"))
        return {"authenticate": {"certificate": base64.b64encode(certificate).decode(),
                                 "signature": base64.b64encode(signature).decode()}}

    def connect(self, origin=None):
        ws = WebSocket("127.0.0.1", self.port, origin=origin)
        self.addCleanup(ws.close)
        challenge = ws.receive_json()
        self.assertEqual(set(challenge), {"challenge"})
        nonce = base64.b64decode(challenge["challenge"]["nonce"])
        self.assertEqual(len(nonce), 32)
        return ws, nonce

    def assertRefused(self, ws, fragment):
        failure = ws.receive_json()
        self.assertEqual(failure["failure"]["code"], "FAILURE_NOT_A_PARTICIPANT", failure)
        self.assertIn(fragment, failure["failure"]["message"])
        with self.assertRaises(Closed) as closed:
            ws.receive()
        self.assertEqual(closed.exception.code, 1008)

    # the binding's promises

    def test_a_participant_that_signs_the_challenge_is_welcomed_under_its_certificate_id(self):
        ws, nonce = self.connect(origin="https://127.0.0.1:%d" % self.port)
        ws.send_json(self.answer(nonce))
        ws.send_json({"hello": {"protocolVersion": 1, "sampleCount": "10"}})
        welcome = ws.receive_json()
        self.assertEqual(welcome["welcome"]["participantId"], "alice")

    def test_every_connection_gets_a_fresh_challenge(self):
        nonces = {self.connect()[1] for _ in range(5)}
        self.assertEqual(len(nonces), 5)

    def test_an_answer_for_another_coordinator_is_refused(self):
        ws, nonce = self.connect()
        ws.send_json(self.answer(nonce, coordinator="coordinator-2"))
        self.assertRefused(ws, "signature does not verify")

    def test_an_answer_replayed_on_another_connection_is_refused(self):
        first, nonce = self.connect()
        answer = self.answer(nonce)
        second, _ = self.connect()
        second.send_json(answer)
        self.assertRefused(second, "signature does not verify")

    def test_a_signature_by_another_participant_is_refused(self):
        ws, nonce = self.connect()
        forged = self.answer(nonce, holder="bob")
        forged["authenticate"]["certificate"] = self.answer(nonce)["authenticate"]["certificate"]
        ws.send_json(forged)
        self.assertRefused(ws, "signature does not verify")

    def test_a_key_holder_cannot_authenticate_here(self):
        ws, nonce = self.connect()
        ws.send_json(self.answer(nonce, holder="key-holder"))
        self.assertRefused(ws, "key-holder")

    def test_a_certificate_of_another_ca_is_refused(self):
        ws, nonce = self.connect()
        ws.send_json(self.answer(nonce, folder=self.path("other-ca")))
        self.assertRefused(ws, "not issued")

    def openssl_participant(self, name, critical):
        """A participant certificate made by openssl, signed with the CA's key, with Veil's
        extensions and an unknown extension 1.2.3.4 (critical or not); and its signing key."""
        folder = tempfile.mkdtemp(dir=self.folder.name)
        key, csr, cert, ext = (os.path.join(folder, n) for n in ("key.pem", "csr.pem", "cert.pem", "ext.cnf"))
        run(self.openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-subj", "/CN=" + name, "-out", csr)
        signing = nacl.signing.SigningKey.generate()
        with open(ext, "w") as f:
            f.write("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                    "extendedKeyUsage = clientAuth\nsubjectAltName = DNS:%s\n" % name)
            f.write("1.3.6.1.4.1.32473.1.1 = DER:0C0B%s\n" % b"participant".hex())
            f.write("1.3.6.1.4.1.32473.1.2 = DER:0420%s\n" % bytes(signing.verify_key).hex())
            f.write("1.2.3.4 = %sDER:0500\n" % ("critical," if critical else ""))
        run(self.openssl, "x509", "-req", "-in", csr, "-CA", self.path("ca.cert.pem"), "-CAkey",
            self.path("ca.key.pem"), "-set_serial", "0x%s" % os.urandom(15).hex(), "-days", "2", "-sha256",
            "-extfile", ext, "-out", cert)
        return self.der(cert), signing

    def test_a_certificate_with_an_unknown_critical_extension_is_refused(self):
        for critical in (False, True):
            certificate, signing = self.openssl_participant("carol-%s" % critical, critical)
            ws, nonce = self.connect()
            statement = CONTEXT + nonce + struct.pack("<I", len(b"coordinator")) + b"coordinator"
            ws.send_json({"authenticate": {"certificate": base64.b64encode(certificate).decode(),
                                           "signature": base64.b64encode(signing.sign(statement).signature).decode()}})
            if critical:
                self.assertRefused(ws, "critical extension 1.2.3.4")
            else:  # the same certificate without the flag: this is what the refusal was about
                ws.send_json({"hello": {"protocolVersion": 1}})
                self.assertEqual(ws.receive_json()["welcome"]["participantId"], "carol-False")

    def test_hello_before_the_answer_is_refused(self):
        ws, _ = self.connect()
        ws.send_json({"hello": {"protocolVersion": 1}})
        self.assertRefused(ws, "must answer the challenge")

    def test_an_unknown_field_in_the_answer_is_refused(self):
        ws, nonce = self.connect()
        answer = self.answer(nonce)
        answer["authenticate"]["role"] = "coordinator"
        ws.send_json(answer)
        self.assertRefused(ws, "")

    def test_an_unknown_field_after_authentication_is_malformed_not_fatal(self):
        ws, nonce = self.connect()
        ws.send_json(self.answer(nonce, holder="bob"))
        ws.send_json({"hello": {"protocolVersion": 1}, "extra": 1})
        failure = ws.receive_json()
        self.assertEqual(failure["failure"]["code"], "FAILURE_MALFORMED", failure)
        ws.send_json({"hello": {"protocolVersion": 1}})
        self.assertEqual(ws.receive_json()["welcome"]["participantId"], "bob")

    def test_a_binary_frame_closes_the_connection(self):
        ws, _ = self.connect()
        ws.send_frame(2, b"\x0a\x00")
        with self.assertRaises(Closed) as closed:
            ws.receive()
        self.assertEqual(closed.exception.code, 1003)

    def test_a_frame_over_the_limit_closes_the_connection(self):
        ws, _ = self.connect()
        try:
            ws.send_frame(1, b" " * (4 * 65536 + 1))
        except OSError:
            pass  # the server may close while the frame is still being written
        with self.assertRaises(Closed) as closed:
            ws.receive()
        self.assertIn(closed.exception.code, (1009, None))

    def test_a_page_of_another_origin_cannot_open_the_socket(self):
        for origin in ("https://evil.example", "http://127.0.0.1:%d" % self.port, "null"):
            with self.assertRaises(HandshakeRefused) as refused:
                WebSocket("127.0.0.1", self.port, origin=origin)
            self.assertIn(" 403 ", refused.exception.status_line + " ", origin)

    def test_an_unanswered_challenge_ends_the_connection(self):
        ws, _ = self.connect()
        started = time.time()
        self.assertRefused(ws, "not answered in time")
        self.assertLess(time.time() - started, 20)

    def test_a_large_frame_before_authentication_closes_the_connection_at_once(self):
        ws, _ = self.connect()
        started = time.time()
        try:
            ws.send_frame(1, b"{" + b" " * (1 << 20))
        except OSError:
            pass  # closed while the frame was still being written
        with self.assertRaises((Closed, OSError)):
            ws.receive()
        self.assertLess(time.time() - started, 5)
        self.assertEqual(self.fetch("/healthz")[2], b"ok\n")

    def test_a_connection_that_never_finishes_its_handshake_or_request_is_closed(self):
        idle = socket.create_connection(("127.0.0.1", self.port), timeout=30)  # TLS never started
        self.addCleanup(idle.close)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        partial = context.wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=30))
        self.addCleanup(partial.close)
        partial.sendall(b"GET /participate/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the end
        started = time.time()
        self.assertEqual(idle.recv(1), b"")
        try:
            self.assertEqual(partial.recv(1), b"")
        except (ssl.SSLError, OSError):
            pass
        self.assertLess(time.time() - started, 20)

    def test_an_unmasked_frame_or_a_reserved_bit_is_a_protocol_error(self):
        for broken in ({"masked": False}, {"rsv": 4}, {"rsv": 1}):
            ws, nonce = self.connect()
            ws.send_frame(1, json.dumps(self.answer(nonce)).encode(), **broken)
            with self.assertRaises(Closed) as closed:
                ws.receive()
            self.assertEqual(closed.exception.code, 1002, broken)

    def test_the_senders_text_is_not_repeated_at_length(self):
        ws, nonce = self.connect()
        answer = self.answer(nonce)
        answer["authenticate"]["x" * 3000] = 1
        ws.send_json(answer)
        failure = ws.receive_json()
        self.assertEqual(failure["failure"]["code"], "FAILURE_NOT_A_PARTICIPANT")
        self.assertLess(len(failure["failure"]["message"]), 400)

    # the page

    def fetch(self, path):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen("https://127.0.0.1:%d%s" % (self.port, path), context=context) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def test_the_page_is_served_with_its_policy_and_nothing_outside_its_folder(self):
        status, headers, body = self.fetch("/participate")
        self.assertEqual(status, 200)
        with open(os.path.join(ROOT, "web", "participant", "participate.html"), "rb") as f:
            self.assertEqual(body, f.read())
        self.assertIn("script-src 'self' 'wasm-unsafe-eval'", headers["Content-Security-Policy"])
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        status, headers, body = self.fetch("/participate/libsodium.wasm")
        self.assertEqual((status, headers["Content-Type"]), (200, "application/wasm"))
        for path in ("/participate/../serve.json", "/participate/%2e%2e/serve.json", "/serve.json",
                     "/participate/.hidden", "/participate/ca.key.pem"):
            self.assertEqual(self.fetch(path)[0], 404, path)
        self.assertEqual(self.fetch("/healthz")[2], b"ok\n")

    def test_the_page_is_whole_and_offline(self):
        """Everything participate.html loads, followed through its scripts' static and dynamic
        imports and the module URLs they fetch, is served from the page's own folder (no CDN, no
        other origin), and how large it is."""
        references = re.compile(r"""(?:src|href)="([^"]+)"|(?:from|import)\s*\(?\s*"(\./[^"]+)"|new URL\("(\./[^"]+)""")
        seen, queue, sizes = set(), ["participate.html"], {}
        while queue:
            name = queue.pop()
            if name in seen:
                continue
            seen.add(name)
            status, headers, body = self.fetch("/participate/" + name)
            self.assertEqual(status, 200, name)
            sizes[name] = len(body)
            if name.endswith((".html", ".js")):
                for match in references.finditer(body.decode()):
                    target = next(group for group in match.groups() if group)
                    self.assertFalse(re.match(r"^[a-z]+:", target), "%s loads %s from elsewhere" % (name, target))
                    queue.append(os.path.normpath(target).lstrip("./"))
        self.assertIn("libsodium.wasm", sizes)
        self.assertIn("secagg.js", sizes)
        self.assertIn("trainer.js", sizes)
        total = sum(sizes.values())
        print("\n  the page: %d files, %d bytes (libsodium.wasm %d, the rest %d)" % (
            len(sizes), total, sizes["libsodium.wasm"], total - sizes["libsodium.wasm"]), file=sys.stderr, end="")
        self.assertLess(total, 1 << 20)


if __name__ == "__main__":
    unittest.main()
