"""The federation CA's enrolment endpoint (`veil ca enrol`, Specs/wire.md §2.3) as a real process,
over TLS: one-time tokens (`veil ca token`) are used exactly once, even by 8 clients at once;
a token is only for its id and role, and is not used up by a request it refuses; an expired
token is refused and removed; malformed bodies, wrong methods and paths get their statuses;
CORS preflights are answered only for the allowed origin; no token reaches the endpoint's logs
or the CA's folder. Last, end to end in headless Chromium: web/tests/enrol-e2e.html makes
its keys with web/participant/enrol.js and enrols against the endpoint, trusting exactly the
endpoint's key (--ignore-certificate-errors-spki-list).

Each test gets its own CA folder and its own endpoint process (port 0, the URL read from its
stdout), stopped in a cleanup that runs even when the test fails; the cleanup also checks that
no token the test made appears in the endpoint's stdout/stderr or in any file under the CA.

Standard library only, plus the `veil` binary (VEIL_BINARY, else .build/debug/veil) and
openssl, and Chromium + chromedriver for the browser test; skipped when a tool is missing
unless VEIL_REQUIRE_TOOLS=1.

    VEIL_REQUIRE_TOOLS=1 VEIL_BINARY=.build/debug/veil python3 -m unittest python/tests/test_enrolment_endpoint.py -v
"""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # browser_support.py is a sibling, whether run by discover or as python.tests.…
from browser_support import ModuleFixtures, Process, end_processes, extension_values, openssl_binary, run, veil_binary  # noqa: E402

PAGE_PATH = "/web/tests/enrol-e2e.html"
HTTP_TIMEOUT = 15.0
PAGE_TIMEOUT = 30.0

OID_ROLE = "1.3.6.1.4.1.32473.1.1"
OID_SIGNING_KEY = "1.3.6.1.4.1.32473.1.2"
TOKEN_PATTERN = re.compile(r"^[0-9a-f]{64}$")
URL_PATTERN = re.compile(r"^enrolment endpoint: (https://127\.0\.0\.1:(\d+)/enrol)$", re.MULTILINE)


class Endpoint(Process):
    """One `veil ca enrol` process on port 0 (a `Process`: its output goes to files)."""

    def __init__(self, veil, ca, certificate, key, origins, log_dir, name="endpoint"):
        arguments = [veil, "ca", "enrol", "--dir", ca, "--certificate", certificate, "--key", key,
                     "--host", "127.0.0.1", "--port", "0"]
        for origin in origins:
            arguments += ["--allow-origin", origin]
        super().__init__(name, arguments, log_dir)
        try:
            match = self.wait_for(URL_PATTERN.pattern, "stdout", 15.0)
        except BaseException:
            self.stop()
            raise
        self.url, self.port = match.group(1), int(match.group(2))


# --- the page server and the browser, one each for the module -----------------------------------

fixtures = ModuleFixtures()


def tearDownModule():
    fixtures.close()
    end_processes()


# --- HTTPS, openssl -----------------------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class EnrolmentEndpointTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.veil = veil_binary()
        cls.openssl = openssl_binary()
        cls.origin = fixtures.origin()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="veil-enrol-endpoint-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.ca = os.path.join(self.tmp, "CA")
        self.tokens = []
        run(self.veil, "ca", "init", "--dir", self.ca)
        run(self.veil, "ca", "issue", "--dir", self.ca, "--id", "enrol-endpoint", "--role", "coordinator",
            "--host", "localhost")
        self.tls_certificate = os.path.join(self.ca, "enrol-endpoint.cert.pem")
        self.tls_key = os.path.join(self.ca, "enrol-endpoint.key.pem")
        self.context = ssl.create_default_context(cafile=os.path.join(self.ca, "ca.cert.pem"))
        self.endpoints = []
        self.endpoint = self.start_endpoint()

    def start_endpoint(self, certificate=None, key=None, name="endpoint"):
        endpoint = Endpoint(self.veil, self.ca, certificate or self.tls_certificate, key or self.tls_key,
                            [self.origin], self.tmp, name)
        self.endpoints.append(endpoint)
        # Cleanups run last in, first out: this one before the folder is removed.
        self.addCleanup(self.stop_and_check_secrets, endpoint)
        return endpoint

    def stop_and_check_secrets(self, endpoint):
        """Stops the endpoint (even when the test failed), then: no token in its logs or the CA."""
        endpoint.stop()
        self.assert_no_token_leaked(endpoint)

    def assert_no_token_leaked(self, endpoint):
        logs = endpoint.stdout() + endpoint.stderr()
        for token in self.tokens:
            self.assertNotIn(token, logs, "a token is in the endpoint's log")
            self.assertNotIn(token.upper(), logs.upper(), "a token is in the endpoint's log")
        for folder, _, files in os.walk(self.ca):
            for name in files:
                path = os.path.join(folder, name)
                with open(path, "rb") as file:
                    content = file.read().lower()
                for token in self.tokens:
                    self.assertNotIn(token, name, path)
                    self.assertNotIn(token.encode("ascii"), content, "a token is in %s" % path)
                    self.assertNotIn(bytes.fromhex(token), content, "a token's bytes are in %s" % path)

    # Helpers

    def token(self, id, minutes=None):
        arguments = [self.veil, "ca", "token", "--dir", self.ca, "--id", id]
        if minutes is not None:
            arguments += ["--minutes", str(minutes)]
        token = run(*arguments).stdout.strip()
        self.assertRegex(token, TOKEN_PATTERN)
        self.tokens.append(token)
        return token

    def request(self, id, role="participant", name=None):
        """`veil ca request` in a folder of its own; the request PEM's path."""
        out = os.path.join(self.tmp, "holders", name or id)
        run(self.veil, "ca", "request", "--id", id, "--role", role, "--out", out)
        return os.path.join(out, id + ".csr.pem")

    @staticmethod
    def read(path):
        with open(path, "r", encoding="ascii") as file:
            return file.read()

    def connect(self, endpoint=None):
        connection = http.client.HTTPSConnection("localhost", (endpoint or self.endpoint).port,
                                                 context=self.context, timeout=HTTP_TIMEOUT)
        connection.connect()  # the TLS handshake: verifies the chain to CA/ca.cert.pem and the name localhost
        return connection

    def call(self, method, path, body=None, headers=None, connection=None):
        connection = connection or self.connect()
        try:
            headers = dict(headers or {})
            if body is not None:
                headers.setdefault("Content-Type", "application/json")
            connection.putrequest(method, path)
            for name, value in headers.items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders()
            if body is not None:
                try:
                    connection.send(body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the server may answer (413) and close before it has read it all
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def post(self, token, request_path, **kwargs):
        body = json.dumps({"token": token, "request": self.read(request_path)}).encode("utf-8")
        return self.call("POST", "/enrol", body, **kwargs)

    def assert_error(self, answer, status, contains=None):
        self.assertEqual(answer.status, status, answer)
        self.assertEqual(answer.headers.get("content-type"), "application/json", answer.headers)
        error = answer.json()["error"]
        self.assertIsInstance(error, str)
        if contains is not None:
            self.assertIn(contains, error)
        return error

    def token_file(self, token):
        return os.path.join(self.ca, "enrolment", hashlib.sha256(token.encode("ascii")).hexdigest() + ".json")

    def certificates_on_disk(self, id):
        return os.path.exists(os.path.join(self.ca, id + ".cert.pem"))

    def assert_certificate(self, pem, id, request_path):
        """The certificate is for `id`, with the request's key and signing key, issued by the CA."""
        path = os.path.join(self.tmp, "answer-%s-%d.cert.pem" % (id, time.monotonic_ns()))
        with open(path, "w", encoding="ascii") as file:
            file.write(pem)
        subject = run(self.openssl, "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253").stdout.strip()
        self.assertEqual(subject, "subject=CN=%s" % id)
        run(self.openssl, "verify", "-CAfile", os.path.join(self.ca, "ca.cert.pem"), path)
        certificate_values = extension_values(self.openssl, path)
        self.assertEqual(certificate_values[OID_ROLE], "0c0b" + b"participant".hex())
        if request_path is not None:
            request_values = extension_values(self.openssl, request_path)
            self.assertRegex(request_values[OID_SIGNING_KEY], r"^0420[0-9a-f]{64}$")
            self.assertEqual(certificate_values[OID_SIGNING_KEY], request_values[OID_SIGNING_KEY])
            key_of = lambda *args: run(self.openssl, *args, "-noout", "-pubkey").stdout  # noqa: E731
            self.assertEqual(key_of("x509", "-in", path), key_of("req", "-in", request_path))
        return certificate_values

    # 1

    def test_enrols_once_with_a_token(self):
        self.assertEqual(self.endpoint.url, "https://127.0.0.1:%d/enrol" % self.endpoint.port)
        request = self.request("alice")
        token = self.token("alice")
        self.assertTrue(os.path.exists(self.token_file(token)))
        answer = self.post(token, request)
        self.assertEqual(answer.status, 200, answer)
        self.assertEqual(answer.headers.get("content-type"), "application/json")
        self.assertEqual(answer.headers.get("cache-control"), "no-store")
        body = answer.json()
        self.assertEqual(set(body), {"certificate", "ca"})
        self.assert_certificate(body["certificate"], "alice", request)
        self.assertEqual(body["ca"], self.read(os.path.join(self.ca, "ca.cert.pem")))
        self.assertTrue(self.certificates_on_disk("alice"))
        self.assertEqual(self.read(os.path.join(self.ca, "alice.cert.pem")), body["certificate"])
        self.assertFalse(os.path.exists(self.token_file(token)))  # used up
        self.assert_error(self.post(token, request), 403, "unknown or already used")

    # 2

    def test_clients_race_for_one_token(self):
        count = 8  # as many connections as one address may hold
        requests = [self.request("racer", name="racer-%d" % i) for i in range(count)]
        bodies = [json.dumps({"token": None, "request": self.read(path)}) for path in requests]
        token = self.token("racer")
        bodies = [json.dumps({"token": token, "request": json.loads(b)["request"]}).encode() for b in bodies]
        connections = [self.connect() for _ in range(count)]  # handshakes done: the POSTs go out together
        barrier = threading.Barrier(count)
        answers = [None] * count

        def client(index):
            try:
                barrier.wait(10)
                answers[index] = self.call("POST", "/enrol", bodies[index], connection=connections[index])
            except BaseException as error:  # noqa: BLE001 - reported below
                answers[index] = error

        threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertFalse(any(thread.is_alive() for thread in threads))
        self.assertTrue(all(isinstance(a, Answer) for a in answers), answers)
        statuses = sorted(a.status for a in answers)
        self.assertEqual(statuses.count(200), 1, statuses)
        self.assertTrue(all(s in (403, 409) for s in statuses if s != 200), statuses)
        winner = next(i for i, a in enumerate(answers) if a.status == 200)
        self.assert_certificate(answers[winner].json()["certificate"], "racer", requests[winner])
        on_disk = [name for name in os.listdir(self.ca) if name.endswith(".cert.pem")]
        self.assertEqual(sorted(on_disk), ["ca.cert.pem", "enrol-endpoint.cert.pem", "racer.cert.pem"])
        self.assertEqual(self.read(os.path.join(self.ca, "racer.cert.pem")), answers[winner].json()["certificate"])
        print("\n  race: %s" % ", ".join("%d×%d" % (statuses.count(s), s) for s in sorted(set(statuses))),
              file=sys.stderr, end="")

    def test_two_endpoints_on_one_ca_certify_an_id_once(self):
        """helper-45's attack: two tokens for one id, spent at once at two endpoint processes
        sharing the CA folder. Both used to be answered 200 (the record was renamed over the
        other); the record is now linked to its name, so exactly one wins."""
        other = self.start_endpoint(name="second")
        for trial in range(4):
            id = "twin-%d" % trial
            paths = [self.request(id, name="%s-%d" % (id, i)) for i in range(2)]
            tokens = [self.token(id), self.token(id)]
            bodies = [json.dumps({"token": t, "request": self.read(p)}).encode() for t, p in zip(tokens, paths)]
            connections = [self.connect(self.endpoint), self.connect(other)]
            barrier = threading.Barrier(2)
            answers = [None, None]

            def client(index):
                barrier.wait(10)
                answers[index] = self.call("POST", "/enrol", bodies[index], connection=connections[index])

            threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            statuses = sorted(a.status for a in answers)
            self.assertEqual(statuses[0], 200, statuses)
            self.assertIn(statuses[1], (409, 200), statuses)
            self.assertNotEqual(statuses, [200, 200], "one id certified twice")

    def test_one_address_cannot_hold_every_connection(self):
        """Eight idle connections from 127.0.0.1 are all it may hold: a ninth is closed at once,
        while another address (127.0.0.2) still enrols."""
        idle = []
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", self.endpoint.port), timeout=5)
            idle.append(sock)
        self.addCleanup(lambda: [s.close() for s in idle])
        time.sleep(0.3)
        ninth = socket.create_connection(("127.0.0.1", self.endpoint.port), timeout=5)
        try:
            ninth.settimeout(5)
            try:
                self.assertEqual(ninth.recv(1), b"", "a ninth connection from one address was kept open")
            except ConnectionResetError:
                pass
        finally:
            ninth.close()
        token = self.token("other-address")
        request = self.read(self.request("other-address"))
        raw = socket.create_connection(("127.0.0.1", self.endpoint.port), timeout=5,
                                       source_address=("127.0.0.2", 0))
        connection = http.client.HTTPSConnection("localhost", self.endpoint.port, context=self.context,
                                                 timeout=HTTP_TIMEOUT)
        connection.sock = self.context.wrap_socket(raw, server_hostname="localhost")
        answer = self.call("POST", "/enrol", json.dumps({"token": token, "request": request}).encode(),
                           connection=connection)
        self.assertEqual(answer.status, 200, answer)

    # 3

    def test_a_token_is_only_for_its_id_and_role_and_survives_a_refusal(self):
        alice_token = self.token("alice")
        second_token = self.token("alice")
        mallory = self.request("mallory")
        self.assert_error(self.post(alice_token, mallory), 403, "another id")
        self.assertFalse(self.certificates_on_disk("mallory"))
        self.assertTrue(os.path.exists(self.token_file(alice_token)))  # not used up
        key_holder = self.request("alice", role="key-holder", name="alice-key-holder")
        self.assert_error(self.post(second_token, key_holder), 403, "key-holder")
        self.assertFalse(self.certificates_on_disk("alice"))
        self.assertTrue(os.path.exists(self.token_file(second_token)))
        alice = self.request("alice")
        answer = self.post(alice_token, alice)
        self.assertEqual(answer.status, 200, answer)
        self.assert_certificate(answer.json()["certificate"], "alice", alice)
        # The second token is still live, but alice is certified now.
        self.assert_error(self.post(second_token, self.request("alice", name="alice-again")), 409, "already certified")

    # 4

    def test_an_expired_token_is_refused_and_removed(self):
        request = self.request("late")
        token = self.token("late")
        path = self.token_file(token)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path, "r+", encoding="utf-8") as file:  # in place: the mode stays 0600
            record = json.load(file)
            self.assertEqual(set(record), {"id", "role", "expires"})
            self.assertEqual((record["id"], record["role"]), ("late", "participant"))
            self.assertGreater(record["expires"], time.time())
            record["expires"] = int(time.time()) - 60
            file.seek(0)
            file.truncate()
            json.dump(record, file)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assert_error(self.post(token, request), 403, "expired")
        self.assertFalse(os.path.exists(path))
        self.assertFalse(self.certificates_on_disk("late"))
        self.assert_error(self.post(token, request), 403, "unknown or already used")

    # 5

    def test_bodies_methods_and_paths(self):
        request = self.read(self.request("bob"))
        token = self.token("bob")
        self.assert_error(self.call("POST", "/enrol", b"not json"), 400, "not a JSON object")
        self.assert_error(self.call("POST", "/enrol", b"[1, 2]"), 400, "not a JSON object")
        body = json.dumps({"token": token, "request": request, "extra": 1}).encode()
        self.assert_error(self.call("POST", "/enrol", body), 400, "1 unknown key(s)")
        # A key is never repeated into the answer (nor the log this test's clean-up reads): a
        # newline in it would forge a log line, a token sent as a key would be written down.
        sneaky = json.dumps({"token": token, "request": request, token + "\nFAKE enrolled": 1}).encode()
        answer = self.call("POST", "/enrol", sneaky)
        self.assertEqual(answer.status, 400)
        self.assertNotIn(token, answer.body.decode())
        self.assertNotIn("FAKE", answer.body.decode())
        self.assert_error(self.call("POST", "/enrol", json.dumps({"token": 7, "request": request}).encode()), 400)
        self.assert_error(self.call("POST", "/enrol", b"x" * (17 << 10)), 413)
        # 17 KiB of a JSON body with the live token in it: refused by size, the token not used up.
        padded = json.dumps({"token": token, "request": request + " " * (17 << 10)}).encode()
        self.assert_error(self.call("POST", "/enrol", padded), 413)
        self.assertTrue(os.path.exists(self.token_file(token)))
        answer = self.call("GET", "/enrol")
        self.assert_error(answer, 405)
        self.assertEqual(answer.headers.get("allow"), "POST, OPTIONS")
        self.assert_error(self.call("GET", "/nope"), 404)
        self.assert_error(self.call("POST", "/nope", b"{}"), 404)
        healthz = self.call("GET", "/healthz")
        self.assertEqual((healthz.status, healthz.body), (200, b"ok\n"))
        # Nothing above used the token up.
        answer = self.post(token, self.request("bob", name="bob-2"))
        self.assertEqual(answer.status, 200, answer)

    # 6

    def test_cors(self):
        allowed = self.origin
        preflight = {"Origin": allowed, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}
        answer = self.call("OPTIONS", "/enrol", headers=preflight)
        self.assertEqual(answer.status, 204, answer)
        self.assertEqual(answer.headers.get("access-control-allow-origin"), allowed)
        self.assertIn("POST", answer.headers.get("access-control-allow-methods", ""))
        self.assertIn("content-type", answer.headers.get("access-control-allow-headers", "").lower())
        for origin in ("https://evil.example", allowed + "0", allowed.replace("127.0.0.1", "localhost"), "null"):
            with self.subTest(origin=origin):
                answer = self.call("OPTIONS", "/enrol", headers=dict(preflight, Origin=origin))
                self.assert_error(answer, 403)
                self.assertNotIn("access-control-allow-origin", answer.headers)
                self.assertNotIn("access-control-allow-methods", answer.headers)
        answer = self.call("OPTIONS", "/enrol")  # no Origin at all
        self.assert_error(answer, 403)
        # A POST with an Origin not allowed: whatever it gets, a page of that origin may not read it.
        token = self.token("carol")
        answer = self.post(token, self.request("carol", name="carol-evil"), headers={"Origin": "https://evil.example"})
        self.assertNotIn("access-control-allow-origin", answer.headers)
        answer = self.call("POST", "/enrol", b"{}", headers={"Origin": "https://evil.example"})
        self.assert_error(answer, 400)
        self.assertNotIn("access-control-allow-origin", answer.headers)
        # The allowed origin's POSTs carry the header, refused or not.
        answer = self.call("POST", "/enrol", b"{}", headers={"Origin": allowed})
        self.assert_error(answer, 400)
        self.assertEqual(answer.headers.get("access-control-allow-origin"), allowed)

    # 7

    def test_no_token_in_the_logs_or_the_ca_folder(self):
        tokens = [self.token("dave"), self.token("erin"), self.token("frank")]
        request = self.request("dave")
        self.assertEqual(self.post(tokens[0], request).status, 200)
        self.assertEqual(self.post(tokens[0], request).status, 403)  # used
        self.assertEqual(self.post(tokens[1], request).status, 403)  # another id
        self.call("POST", "/enrol", json.dumps({"token": tokens[2], "request": "x"}).encode())
        self.call("POST", "/enrol", json.dumps({"token": tokens[2][:63] + "g", "request": self.read(request)}).encode())
        self.call("GET", "/enrol?token=" + tokens[2])
        self.call("OPTIONS", "/enrol", headers={"Origin": "https://evil.example"})
        self.assertEqual(self.endpoint.stop(), 0)  # SIGTERM: a clean exit
        logs = self.endpoint.stdout() + self.endpoint.stderr()
        self.assertIn("enrolled", logs)  # the logs are there, and say what happened
        self.assertIn("enrolment refused", logs)
        self.assert_no_token_leaked(self.endpoint)
        self.assertEqual(len(os.listdir(os.path.join(self.ca, "enrolment"))), 2)  # erin's and frank's: hashes only
        print("\n  %d log lines, none with a token" % len(logs.splitlines()), file=sys.stderr, end="")

    # 8

    def test_browser_enrols_end_to_end(self):
        spki = self.spki_sha256_base64(self.tls_certificate)
        browser = self.browser(spki)
        token = self.token("web-alice")
        title, result = self.open_page(browser, self.endpoint, token, "web-alice")
        self.assertEqual(title, "ENROLLED", result)
        self.assertEqual(set(result), {"id", "certificatePem", "caPem", "signingPublicKeyHex"})  # no seed
        self.assertRegex(result["signingPublicKeyHex"], r"^[0-9a-f]{64}$")
        self.assertNotIn(token, browser.current_url())  # the page took it out of its address
        values = self.assert_certificate(result["certificatePem"], "web-alice", None)
        self.assertEqual(values[OID_SIGNING_KEY], "0420" + result["signingPublicKeyHex"])
        self.assertEqual(result["caPem"], self.read(os.path.join(self.ca, "ca.cert.pem")))
        self.assertEqual(self.read(os.path.join(self.ca, "web-alice.cert.pem")), result["certificatePem"])
        # The same token again, from a fresh page: refused by the endpoint, the status read by the page.
        title, result = self.open_page(browser, self.endpoint, token, "web-alice")
        self.assertTrue(title.startswith("ERROR: 403 "), title)
        self.assertIn("unknown or already used", title)
        # The browser trusts exactly the pinned key: an endpoint with another key (from the same
        # CA, but not in the browser's store) is not reached, and its token stays unused.
        other = "other-endpoint"
        run(self.veil, "ca", "issue", "--dir", self.ca, "--id", other, "--role", "coordinator", "--host", "localhost")
        second = self.start_endpoint(os.path.join(self.ca, other + ".cert.pem"),
                                     os.path.join(self.ca, other + ".key.pem"), name="other")
        bob_token = self.token("web-bob")
        title, result = self.open_page(browser, second, bob_token, "web-bob")
        self.assertTrue(title.startswith("ERROR: 0 "), title)
        self.assertTrue(os.path.exists(self.token_file(bob_token)))
        self.assertFalse(self.certificates_on_disk("web-bob"))

    def spki_sha256_base64(self, certificate):
        """base64(SHA-256(DER SubjectPublicKeyInfo)) by openssl, checked against Python's own."""
        public_pem = run(self.openssl, "x509", "-in", certificate, "-noout", "-pubkey").stdout
        der = run(self.openssl, "pkey", "-pubin", "-outform", "DER", input=public_pem.encode()).stdout
        digest = run(self.openssl, "dgst", "-sha256", "-binary", input=der).stdout
        pin = run("base64", input=digest).stdout.decode().strip()
        self.assertEqual(pin, base64.b64encode(hashlib.sha256(der).digest()).decode())
        return pin

    def browser(self, spki):
        """The module's browser, started with the pin of this test's endpoint key. No
        --ignore-certificate-errors: only a certificate with this key is accepted (Chromium honours
        the list in headless mode; chromedriver gives it a --user-data-dir)."""
        return fixtures.browser("--ignore-certificate-errors-spki-list=" + spki)

    def open_page(self, browser, endpoint, token, id):
        query = urllib.parse.urlencode({"endpoint": "https://localhost:%d" % endpoint.port, "token": token, "id": id})
        browser.navigate(self.origin + PAGE_PATH + "?" + query)
        title = browser.wait_until("/^(ENROLLED|ERROR)/.test(document.title) && document.title",
                                   timeout=PAGE_TIMEOUT, interval=0.05)
        return title, browser.execute("return window.veilEnrolment")


if __name__ == "__main__":
    unittest.main()
