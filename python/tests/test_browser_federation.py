"""Browser participants in a real federation, end to end: `veil serve` with its WebSocket gateway
(serve.json `browser`, Specs/wire.md §1.1), two native `veil join` participants, the CA's
enrolment endpoint (`veil ca enrol`), and web/participant/participate.html in headless Chromium,
served by the coordinator itself at https://127.0.0.1:P/participate/ (the coordinator's and the
endpoint's keys pinned with --ignore-certificate-errors-spki-list).

1. Two natives and one browser tab complete a federation, and the browser's update is in the sum:
   softmax from zero, FedAvg, one round of one full-batch local step (batch_size ≥ every
   participant's rows, momentum and weight decay 0), so the released model is exactly
   w1 = −η · (mean softmax cross-entropy gradient at w = 0 over the union of all rows), computed
   here in Python. The browser's rows are the only ones with label 2, so w1 with and without them
   differ by far more than the fixed-point / float32 tolerance. The page enrols with a one-time
   token, is given its CSV as a local file through <input type=file>, and joins; w1 is read back
   with `veil model export` and onnxruntime (logits at x = 0: the bias; at e_j: W[:, j] + b).
2. The browser tab drops out mid-round (leave_after=2: it closes its WebSocket right after
   sending its R1 shares) and the round is recovered like any other dropout: honest-but-curious,
   n = 3, t = 2 (the page's own policy set to that through its "Your policy" form, as a user
   would); the round completes with the two natives as survivors and w1 is the natives-only
   expectation. 2b: a malformed policy in the address is refused by name. 2c: a link may make
   "Your policy" stricter, never weaker: a weaker value is refused naming the key, a stricter
   one is in force for that visit, and the policy saved through the form survives a reload.
3. The WASM vector page (web/tests/vectors.html) passes in the same Chromium instance.

Standard library plus numpy and onnxruntime, the `veil` binary (VEIL_BINARY), openssl, Chromium
and chromedriver; skipped when a tool is missing unless VEIL_REQUIRE_TOOLS=1.

    VEIL_REQUIRE_TOOLS=1 VEIL_BINARY=.build/debug/veil python3 -m unittest python/tests/test_browser_federation.py -v
"""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # browser_support.py is a sibling, whether run by discover or as python.tests.…
from browser_support import ROOT, ModuleFixtures, Process, end_processes, openssl_binary, run, skip_or_fail, veil_binary  # noqa: E402
import webdriver  # noqa: E402

PAGE_FOLDER = os.path.join(ROOT, "web", "participant")
FEATURES, CLASSES = 3, 3
LEARNING_RATE = 0.5
TOLERANCE = 1e-4  # float32 weights in the ONNX file, fixed-point payloads: errors of order 1e-7
FAR = 1e-2  # the expectations with and without the browser's rows differ by far more than this
FEDERATION_TIMEOUT = 90.0

# Natives: labels 0 and 1 only. The browser: the only rows with label 2.
NATIVE_ROWS = {
    "p1": [([0.5, -1.0, 0.25], 0), ([1.0, 0.0, -0.5], 1), ([-0.75, 0.5, 1.0], 0),
           ([0.25, 0.25, 0.25], 1), ([2.0, -0.5, 0.0], 0), ([-1.0, 1.5, 0.5], 1)],
    "p2": [([0.0, 1.0, -1.0], 1), ([1.5, -0.25, 0.75], 0), ([-0.5, -0.5, 2.0], 1),
           ([0.75, 1.25, -0.25], 0), ([1.0, 1.0, 1.0], 1)],
}
BROWSER_ROWS = [([2.0, 2.0, 3.0], 2), ([1.5, 2.5, 2.0], 2), ([3.0, 1.0, 2.5], 2), ([2.5, 2.0, 1.5], 2)]


# --- the module's CA, keys, page server and browser ----------------------------------------------

fixtures = ModuleFixtures()
shared = {}


def setUpModule():
    veil = veil_binary()
    openssl = openssl_binary()
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        skip_or_fail("numpy and onnxruntime are needed: %s" % error)
    folder = tempfile.mkdtemp(prefix="veil-browser-federation-")
    ca = os.path.join(folder, "CA")
    run(veil, "ca", "init", "--dir", ca)
    run(veil, "ca", "issue", "--dir", ca, "--id", "coordinator", "--role", "coordinator", "--host", "localhost")
    run(veil, "ca", "issue", "--dir", ca, "--id", "enrol-endpoint", "--role", "coordinator", "--host", "localhost")
    for id in NATIVE_ROWS:
        run(veil, "ca", "issue", "--dir", ca, "--id", id, "--role", "participant")
    pins = [spki_pin(openssl, os.path.join(ca, name + ".cert.pem")) for name in ("coordinator", "enrol-endpoint")]
    shared.update(veil=veil, openssl=openssl, folder=folder, ca=ca, pins=pins)


def tearDownModule():
    fixtures.close()
    end_processes()
    if "folder" in shared:
        shutil.rmtree(shared["folder"], ignore_errors=True)


def spki_pin(openssl, certificate):
    """base64(SHA-256(DER SubjectPublicKeyInfo)), Chromium's --ignore-certificate-errors-spki-list form."""
    public_pem = run(openssl, "x509", "-in", certificate, "-noout", "-pubkey").stdout
    der = run(openssl, "pkey", "-pubin", "-outform", "DER", input=public_pem.encode()).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def browser():
    """One Chromium for the whole module (the same pins every time, so never restarted)."""
    return fixtures.browser("--ignore-certificate-errors-spki-list=" + ",".join(shared["pins"]))


# --- the expectation ------------------------------------------------------------------------------

def expected_model(rows):
    """w1 = −η · mean over rows of ∇ cross-entropy at w = 0: (W (C×F), b (C)) as nested lists."""
    W = [[0.0] * FEATURES for _ in range(CLASSES)]
    b = [0.0] * CLASSES
    for x, y in rows:
        for c in range(CLASSES):
            d = 1.0 / CLASSES - (1.0 if y == c else 0.0)
            for j in range(FEATURES):
                W[c][j] += d * x[j]
            b[c] += d
    n = len(rows)
    return [[-LEARNING_RATE * v / n for v in row] for row in W], [-LEARNING_RATE * v / n for v in b]


def write_csv(path, rows):
    with open(path, "w", encoding="ascii") as file:
        for x, y in rows:
            file.write(",".join(repr(v) for v in x) + ",%d\n" % y)


def distance(a, b):
    (Wa, ba), (Wb, bb) = a, b
    return max([abs(p - q) for ra, rb in zip(Wa, Wb) for p, q in zip(ra, rb)] + [abs(p - q) for p, q in zip(ba, bb)])


# --- one federation -------------------------------------------------------------------------------

class Federation:
    """A coordinator with the browser gateway, the enrolment endpoint and two natives, in a folder."""

    def __init__(self, test, name, honest_but_curious=False):
        self.test = test
        self.veil = shared["veil"]
        self.ca = shared["ca"]
        self.folder = os.path.join(shared["folder"], name)
        os.makedirs(self.folder)
        self.processes = []
        self.browser_port = webdriver.free_port()
        self.origin = "https://127.0.0.1:%d" % self.browser_port
        self.honest_but_curious = honest_but_curious
        for id, rows in NATIVE_ROWS.items():
            write_csv(os.path.join(self.folder, id + ".csv"), rows)
        self.browser_csv = os.path.join(self.folder, "browser.csv")
        write_csv(self.browser_csv, BROWSER_ROWS)
        serve = {
            "federation": "browser-e2e", "host": "127.0.0.1", "port": 0, "metrics_port": None,
            "tls": self.tls("coordinator"), "state": os.path.join(self.folder, "coordinator.sqlite"),
            "rounds": 1, "min_participants": 3, "cohort_size": 3, "model": "softmax",
            "features": FEATURES, "classes": CLASSES, "algorithm": "fedavg", "local_epochs": 1,
            "batch_size": 64, "learning_rate": LEARNING_RATE, "momentum": 0, "weight_decay": 0,
            "round_deadline_seconds": 15, "training_deadline_seconds": 60, "registration_timeout_seconds": 60,
            "max_round_attempts": 1, "evaluate": None,
            "threat_model": "honest-but-curious" if honest_but_curious else "malicious",
            "browser": {"port": self.browser_port, "page": PAGE_FOLDER},
        }
        self.serve_config = os.path.join(self.folder, "serve.json")
        with open(self.serve_config, "w", encoding="utf-8") as file:
            json.dump(serve, file, indent=1)

    def tls(self, id):
        return {"ca": os.path.join(self.ca, "ca.cert.pem"), "certificate": os.path.join(self.ca, id + ".cert.pem"),
                "key": os.path.join(self.ca, id + ".key.pem"), "signing_key": os.path.join(self.ca, id + ".signing.key")}

    def start(self, name, arguments):
        process = Process(name, arguments, self.folder)
        self.processes.append(process)
        self.test.addCleanup(process.stop)
        return process

    def start_all(self):
        self.endpoint = self.start("enrol", [self.veil, "ca", "enrol", "--dir", self.ca,
                                             "--certificate", os.path.join(self.ca, "enrol-endpoint.cert.pem"),
                                             "--key", os.path.join(self.ca, "enrol-endpoint.key.pem"),
                                             "--host", "127.0.0.1", "--port", "0", "--allow-origin", self.origin])
        self.enrol_url = "https://127.0.0.1:%s" % self.endpoint.wait_for(
            r"^enrolment endpoint: https://127\.0\.0\.1:(\d+)/enrol$", "stdout", 15).group(1)
        self.serve = self.start("serve", [self.veil, "serve", "--config", self.serve_config])
        self.grpc_port = int(self.serve.wait_for(r"^listening on 127\.0\.0\.1:(\d+)", "stderr", 30).group(1))
        self.joins = []
        for id in NATIVE_ROWS:
            config = {"host": "127.0.0.1", "port": self.grpc_port, "tls": self.tls(id),
                      "dataset": "csv:" + os.path.join(self.folder, id + ".csv"), "report_resources": False}
            if self.honest_but_curious:
                config["policy"] = {"adversary": "honest-but-curious", "min_contributors": 2, "min_cohort": 3}
            path = os.path.join(self.folder, "join-%s.json" % id)
            with open(path, "w", encoding="utf-8") as file:
                json.dump(config, file, indent=1)
            self.joins.append(self.start("join-" + id, [self.veil, "join", "--config", path]))

    def token(self, id):
        token = run(self.veil, "ca", "token", "--dir", self.ca, "--id", id).stdout.strip()
        self.test.assertRegex(token, r"^[0-9a-f]{64}$")
        return token

    def diagnostics(self, page=None):
        parts = [p.tail() for p in self.processes]
        if page is not None:
            parts.append(page.diagnostics())
        return "\n".join(parts)

    def wait_for_serve(self, page=None):
        try:
            self.serve.process.wait(FEDERATION_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("veil serve did not finish within %.0f s:\n%s"
                                 % (FEDERATION_TIMEOUT, self.diagnostics(page))) from None
        if self.serve.process.returncode != 0:
            raise AssertionError("veil serve exited with %d:\n%s" % (self.serve.process.returncode, self.diagnostics(page)))

    def round_line(self):
        match = re.search(r"^round\s+1\s+(\S+)\s+survivors\s+(\d+)/(\d+)\s+t\s+(\S+)", self.serve.stdout(), re.MULTILINE)
        self.test.assertIsNotNone(match, "no line for round 1 in serve's stdout:\n%s" % self.diagnostics())
        return match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)

    def released_model(self):
        """w1 from `veil model export` and onnxruntime: (W (C×F), b (C))."""
        import numpy
        import onnxruntime
        out = os.path.join(self.folder, "model.onnx")
        run(self.veil, "model", "export", "--config", self.serve_config, "--out", out)
        session = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"])
        inputs = numpy.concatenate([numpy.zeros((1, FEATURES)), numpy.eye(FEATURES)]).astype(numpy.float32)
        logits = session.run(["logits"], {session.get_inputs()[0].name: inputs})[0].astype(float)
        bias = logits[0]
        weights = (logits[1:] - bias).T  # row c: class c's weights
        return [list(map(float, row)) for row in weights], list(map(float, bias))


class Page:
    """participate.html in the module's browser."""

    def __init__(self, federation, **query):
        self.browser = browser()
        self.browser.console_log()  # drop what earlier pages logged
        self.url = federation.origin + "/participate/?" + urllib.parse.urlencode(query)
        self.browser.navigate(self.url)

    def title(self):
        return self.browser.execute("return document.title")

    def state(self):
        return self.browser.execute("""
            const s = window.veilParticipant;
            if (!s) return null;
            return JSON.parse(JSON.stringify({status: s.status, lastError: s.lastError, rounds: s.rounds,
                tally: s.tally, welcome: s.welcome, finished: s.finished,
                identity: s.identity ? s.identity.id : null, rows: s.dataset ? s.dataset.count : null, policy: s.policy}));""")

    def diagnostics(self):
        try:
            title, state = self.title(), self.state()
        except webdriver.WebDriverError as error:
            return "--- page: unreadable (%s)" % error
        return "--- page title: %r\n--- page state: %s\n--- console:\n%s" % (
            title, json.dumps(state, indent=1)[:4000], "\n".join(self.browser.console_log())[-4000:])

    def wait_title(self, pattern, timeout, federation):
        deadline = time.monotonic() + timeout
        while True:
            title = self.title()
            if re.search(pattern, title):
                return title
            if title.startswith("ERROR"):
                raise AssertionError("the page failed while waiting for %r:\n%s" % (pattern, federation.diagnostics(self)))
            if time.monotonic() >= deadline:
                raise AssertionError("the page's title is still %r after %.0f s, waiting for %r:\n%s"
                                     % (title, timeout, pattern, federation.diagnostics(self)))
            time.sleep(0.1)

    def set_policy(self, federation, adversary, min_cohort, min_contributors):
        """Sets "Your policy" through the page's form, as a user would, and saves it."""
        self.browser.wait_until("window.veilParticipant && window.veilParticipant.policy", timeout=20)
        self.browser.select("#policy-adversary", adversary)
        self.browser.fill("#policy-min-cohort", str(min_cohort))
        self.browser.fill("#policy-min-contributors", str(min_contributors))
        self.browser.click("#policy-save")
        expected = {"adversary": adversary, "minCohort": min_cohort, "minContributors": min_contributors}
        try:
            self.browser.wait_until("JSON.stringify(window.veilParticipant.policy.saved) === %s" % json.dumps(json.dumps(expected, separators=(",", ":"))),
                                    timeout=10)
        except TimeoutError as error:
            raise AssertionError("the policy was not saved: %s\n%s" % (error, federation.diagnostics(self))) from None

    def policy(self):
        return self.browser.execute("return window.veilParticipant.policy")

    def wait_error(self, timeout=20):
        deadline = time.monotonic() + timeout
        title = self.title()
        while not title.startswith("ERROR") and time.monotonic() < deadline:
            time.sleep(0.05)
            title = self.title()
        return title

    def enrol_and_join(self, federation, csv_path):
        """ENROLLED by the token; the CSV picked as a local file; then Join clicked."""
        self.wait_title(r"^ENROLLED$", 30, federation)
        self.browser.send_keys("#csv-file", csv_path)
        try:
            self.browser.wait_until("window.veilParticipant.dataset && window.veilParticipant.dataset.count", timeout=20)
        except TimeoutError as error:
            raise AssertionError("the CSV file was not taken: %s\n%s" % (error, federation.diagnostics(self))) from None
        self.browser.wait_until("!document.getElementById('join-button').disabled", timeout=10)
        self.browser.click("#join-button")


class BrowserFederationTest(unittest.TestCase):
    def test_1_two_natives_and_a_browser_complete_a_federation(self):
        federation = Federation(self, "complete")
        federation.start_all()
        page = Page(federation, enrol=federation.enrol_url, id="browser1", token=federation.token("browser1"))
        page.enrol_and_join(federation, federation.browser_csv)
        self.assertEqual(page.state()["rows"], len(BROWSER_ROWS))
        page.wait_title(r"^FINISHED$", FEDERATION_TIMEOUT, federation)
        federation.wait_for_serve(page)
        state = page.state()
        rounds = state["rounds"]
        self.assertEqual([(r["round"], r["state"], r["survivors"]) for r in rounds], [("1", "completed", 3)],
                         federation.diagnostics(page))
        self.assertEqual(rounds[0]["auditReceipt"], "verified", rounds[0])
        self.assertEqual(state["tally"]["completed"], 1)
        self.assertEqual(state["welcome"]["participantId"], "browser1")
        # Served by the coordinator it connects to: the page says whose code it is (wire.md §1.1).
        note = page.browser.execute("return document.getElementById('trust-note').textContent")
        self.assertIn("served by the coordinator it connects to", note)
        outcome, survivors, cohort, threshold = federation.round_line()
        self.assertEqual((outcome, survivors, cohort), ("completed", 3, 3), federation.diagnostics(page))
        released = federation.released_model()
        with_browser = expected_model(NATIVE_ROWS["p1"] + NATIVE_ROWS["p2"] + BROWSER_ROWS)
        without = expected_model(NATIVE_ROWS["p1"] + NATIVE_ROWS["p2"])
        self.assertGreater(distance(with_browser, without), 10 * FAR)
        self.assertLess(distance(released, with_browser), TOLERANCE,
                        "released %r, expected %r (without the browser: %r)" % (released, with_browser, without))
        self.assertGreater(distance(released, without), FAR)
        print("\n  round 1: %d/%d survivors, t %s; |w1 − expected| = %.2g" % (
            survivors, cohort, threshold, distance(released, with_browser)), file=sys.stderr, end="")

    def test_2_a_browser_that_leaves_mid_round_is_a_recovered_dropout(self):
        federation = Federation(self, "dropout", honest_but_curious=True)
        federation.start_all()
        page = Page(federation, enrol=federation.enrol_url, id="browser2", token=federation.token("browser2"),
                    leave_after="2")
        page.wait_title(r"^ENROLLED$", 30, federation)
        # The user's own policy, set on the page (a link may not lower the default malicious / 3 / 3).
        page.set_policy(federation, "honest-but-curious", 3, 2)
        self.assertEqual(page.policy()["effective"], {"adversary": "honest-but-curious", "minCohort": 3, "minContributors": 2})
        page.enrol_and_join(federation, federation.browser_csv)
        page.wait_title(r"^LEFT$", FEDERATION_TIMEOUT, federation)
        federation.wait_for_serve(page)
        state = page.state()
        # It trained and sent R0 and R1 (its keys and its shares), then left: never told of the result.
        self.assertEqual([(r["round"], r["state"], r["examples"]) for r in state["rounds"]], [("1", "masking", 4)],
                         federation.diagnostics(page))
        self.assertRegex(federation.serve.stderr(), r"id=browser2 reason=\w+ round=1 .*participant dropped",
                         federation.diagnostics(page))
        outcome, survivors, cohort, threshold = federation.round_line()
        self.assertEqual((outcome, survivors, cohort, threshold), ("completed", 2, 3, "2"), federation.diagnostics(page))
        released = federation.released_model()
        natives = expected_model(NATIVE_ROWS["p1"] + NATIVE_ROWS["p2"])
        with_browser = expected_model(NATIVE_ROWS["p1"] + NATIVE_ROWS["p2"] + BROWSER_ROWS)
        self.assertLess(distance(released, natives), TOLERANCE,
                        "released %r, expected the natives' %r" % (released, natives))
        self.assertGreater(distance(released, with_browser), FAR)
        print("\n  round 1: %d/%d survivors, t %s; |w1 − natives-only| = %.2g" % (
            survivors, cohort, threshold, distance(released, natives)), file=sys.stderr, end="")

    def test_2b_a_bad_policy_in_the_address_is_refused(self):
        federation = Federation(self, "bad-policy")
        # Only the page is needed: serve alone (no participant ever joins; it is stopped in the cleanup).
        federation.serve = federation.start("serve", [federation.veil, "serve", "--config", federation.serve_config])
        federation.serve.wait_for(r"^listening on 127\.0\.0\.1:(\d+)", "stderr", 30)
        for query, words in ((dict(adversary="paranoid"), "adversary must be malicious or honest-but-curious"),
                             (dict(min_cohort="1"), "min_cohort must be at least 2"),
                             (dict(min_contributors="two"), "min_contributors must be a whole number"),
                             (dict(leave_after="0"), "leave_after must be at least 1")):
            with self.subTest(query=query):
                page = Page(federation, **query)
                deadline = time.monotonic() + 20
                title = page.title()
                while not title.startswith("ERROR") and time.monotonic() < deadline:
                    time.sleep(0.05)
                    title = page.title()
                self.assertTrue(title.startswith("ERROR: the participant's policy is refused"), title)
                self.assertIn(words, title)

    def test_2c_a_link_may_make_the_policy_stricter_never_weaker(self):
        federation = Federation(self, "stricter-only")
        federation.serve = federation.start("serve", [federation.veil, "serve", "--config", federation.serve_config])
        federation.serve.wait_for(r"^listening on 127\.0\.0\.1:(\d+)", "stderr", 30)
        # Below the defaults (veil join's: malicious, 3, 3): refused, naming the key.
        for query, asked in ((dict(adversary="honest-but-curious"), "adversary=honest-but-curious"),
                             (dict(min_cohort="2"), "min_cohort=2"),
                             (dict(min_contributors="2", min_cohort="4"), "min_contributors=2")):
            with self.subTest(query=query):
                page = Page(federation, **query)
                title = page.wait_error()
                self.assertTrue(title.startswith("ERROR: the participant's policy is refused: the link asks for " + asked), title)
                error = page.browser.execute("return document.getElementById('error').textContent")
                self.assertIn('if you mean it, change "Your policy" on this page', error)
                self.assertTrue(page.browser.execute("return document.getElementById('join-button').disabled"))
                self.assertIsNone(page.policy()["effective"])
        # Stricter: in force for this visit, and shown.
        page = Page(federation, min_cohort="5", min_contributors="4")
        page.wait_title(r"^NOT ENROLLED$", 20, federation)
        self.assertEqual(page.policy()["effective"], {"adversary": "malicious", "minCohort": 5, "minContributors": 4})
        shown = page.browser.execute("return document.getElementById('policy-effective').textContent")
        self.assertIn("minimum cohort 5, minimum contributors 4", shown)
        self.assertIn("made stricter by the link", shown)
        # Not saved by the link: the next visit without it has the defaults.
        page = Page(federation)
        page.wait_title(r"^NOT ENROLLED$", 20, federation)
        self.assertEqual(page.policy()["effective"], {"adversary": "malicious", "minCohort": 3, "minContributors": 3})
        # The user lowers their own policy on the page: saved, kept across a reload, and then the floor for links.
        page.set_policy(federation, "honest-but-curious", 4, 2)
        page = Page(federation, adversary="honest-but-curious", min_contributors="2")
        page.wait_title(r"^NOT ENROLLED$", 20, federation)
        self.assertEqual(page.policy()["effective"], {"adversary": "honest-but-curious", "minCohort": 4, "minContributors": 2})
        self.assertEqual(page.browser.execute("return document.getElementById('policy-min-cohort').value"), "4")
        page = Page(federation, adversary="malicious", min_contributors="3")
        page.wait_title(r"^NOT ENROLLED$", 20, federation)
        self.assertEqual(page.policy()["effective"], {"adversary": "malicious", "minCohort": 4, "minContributors": 3})
        page = Page(federation, min_cohort="3")
        self.assertIn("the link asks for min_cohort=3, weaker than your policy's 4", page.wait_error())

    def test_3_wasm_vectors_pass_in_the_same_browser(self):
        instance = browser()
        instance.navigate(fixtures.origin() + "/web/tests/vectors.html")
        instance.wait_until("/^(PASS|FAIL)/.test(document.title)", timeout=180, interval=0.25)
        title = instance.execute("return document.title")
        results = instance.execute("return window.veilVectorResults")
        self.assertRegex(title, r"^PASS \d+$", (results or {}).get("error"))
        self.assertEqual((results["failed"], results["skipped"]), (0, 0))
        self.assertIs(instance, browser())  # not restarted: the instance of tests 1 and 2


if __name__ == "__main__":
    unittest.main()
