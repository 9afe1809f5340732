"""The live dashboard against a real federation (the monitoring issue's acceptance test).

`veil simulate` runs a small federation over loopback mutual TLS with the dashboard on a free
port: six participants, eight rounds, central DP with a per-participant budget whose alert
fraction is passed half-way, and one participant that goes silent in the last round (a dropout
the secure sum recovers from). Headless Chromium opens the printed URL while the rounds run;
the test checks that the page goes live and re-renders as rounds complete (the same page: no
reload), then, once the federation has finished, that what the page shows matches
`/api/snapshot` — charts, participants and their ε bars, the dropout, the budget alert — with
no JavaScript errors and no request to another origin. From Python it checks the bearer token
on `/api/snapshot` and `/api/events`, and `/metrics` with `promtool check metrics`.

Standard library and webdriver.py only. Skipped when the veil binary, Chromium, chromedriver or
promtool is missing, unless VEIL_REQUIRE_TOOLS=1.

    VEIL_BINARY=.build/debug/veil python3 -m unittest discover -s python/tests -p test_dashboard_live.py -v
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # webdriver.py is a sibling
import webdriver  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PROMTOOL = os.environ.get("VEIL_PROMTOOL", "/usr/bin/promtool")
REQUIRE_TOOLS = os.environ.get("VEIL_REQUIRE_TOOLS") == "1"

ROUNDS = 8
CLIENTS = 6
DROPPED_INDEX = 2  # 0-based: participant-3
BUDGET = 6.0
ALERT_FRACTION = 0.5
TRAINER_SECONDS = 0.5
# The dropout is in the last round: a participant dropped by --drop-participant does not come
# back, and with everyone selected every round the next round would wait for it (60 s) and fail.
# ε = 4 over the whole run against a budget of 6 passes the alert fraction (ε 3) in round 5
# without exhausting the budget, so all eight rounds run. The participants train with SLOW_TRAINER
# (--trainer), which takes TRAINER_SECONDS of wall-clock time whatever the machine's load, so each
# round lasts long enough to watch the page re-render round by round, without the CPU-bound
# training that made rounds take 1 s on an idle machine and 8 s on a busy one.
SIMULATE_ARGS = [
    "simulate", "--rounds", str(ROUNDS), "--clients", str(CLIENTS), "--seed", "7",
    "--dp", "central", "--epsilon", "4", "--dp-budget", str(BUDGET), "--dp-alert", str(ALERT_FRACTION),
    "--drop-participant", "%d:%d" % (DROPPED_INDEX, ROUNDS),
    "--dashboard-port", "0", "--dashboard-hold", "60",
]
# A trainer (Specs/trainer.md) that waits, then returns the global model unchanged: a zero update,
# to which the coordinator's DP noise is added. What the dashboard shows does not depend on the
# model learning anything; the wait makes the rounds' pace independent of the CPU.
SLOW_TRAINER = r"""
import json, os, shutil, sys, time
request_path = os.environ["VEIL_TRAINER_REQUEST"]
folder = os.path.dirname(request_path)
with open(request_path) as f:
    request = json.load(f)
time.sleep(float(sys.argv[1]))
for tensor in request["tensors"]:
    shutil.copyfile(os.path.join(folder, tensor["global"]), os.path.join(folder, tensor["result"]))
examples = 1
if request.get("data"):
    with open(request["data"]) as f:
        examples = max(1, sum(1 for line in f if line.strip()))
partial = os.path.join(folder, "result.json.partial")
with open(partial, "w") as f:
    json.dump({"format": "veil-trainer", "version": 1, "examples": examples}, f)
os.replace(partial, os.path.join(folder, request["result"]))
"""
URL_LINE = re.compile(r"dashboard: (http://127\.0\.0\.1:(\d+))/#token=([0-9A-Za-z_-]+)")
URL_TIMEOUT = 30.0
FEDERATION_TIMEOUT = 60.0
PAGE_TIMEOUT = 20.0

# No proxy: everything here is on 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def veil_binary():
    return os.environ.get("VEIL_BINARY") or os.path.join(ROOT, ".build", "debug", "veil")


def executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def missing(message):
    """Skip for a missing tool, or fail when the tools are required."""
    if REQUIRE_TOOLS:
        raise AssertionError(message + " (VEIL_REQUIRE_TOOLS=1)")
    raise unittest.SkipTest(message)


def screenshot_dir():
    folder = os.environ.get("VEIL_SCREENSHOT_DIR") or os.path.join(tempfile.gettempdir(), "veil-dashboard-screenshots")
    os.makedirs(folder, exist_ok=True)
    return folder


def http_get(url, token=None, timeout=10.0):
    """(status, body) of a GET; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Simulation:
    """`veil simulate` as a child process; stdout and stderr are read by threads and kept."""

    def __init__(self, binary, args):
        self.process = subprocess.Popen(
            [binary] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lock = threading.Lock()
        self.output = {"stdout": bytearray(), "stderr": bytearray()}
        self.readers = [threading.Thread(target=self._read, args=(name, stream), daemon=True)
                        for name, stream in (("stdout", self.process.stdout), ("stderr", self.process.stderr))]
        for reader in self.readers:
            reader.start()

    def _read(self, name, stream):
        while True:
            chunk = stream.read1(65536)
            if not chunk:
                return
            with self.lock:
                self.output[name] += chunk

    def text(self, name):
        with self.lock:
            # The progress bar redraws itself with carriage returns: show each redraw as a line.
            return self.output[name].decode("utf-8", "replace").replace("\r", "\n")

    def wait_for_url(self, timeout):
        """(origin, token) from the `dashboard: …` line on stderr."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = URL_LINE.search(self.text("stderr"))
            if match:
                return match.group(1), match.group(3)
            if self.process.poll() is not None:
                raise AssertionError("veil simulate exited with %d before printing the dashboard URL" % self.process.returncode)
            time.sleep(0.05)
        raise AssertionError("no dashboard URL on stderr after %.0f s" % timeout)

    def stop(self, grace=10.0):
        """SIGINT (ends the dashboard hold), then SIGKILL after grace seconds; the exit status."""
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGINT)
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for reader in self.readers:
            reader.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()
        return self.process.returncode


# Installed once after the page loads: a log of every render (the rounds it showed and the
# status), and a marker that a reload would wipe out.
PROBE = r"""
if (!window.veilProbe) {
  const html = document.documentElement;
  const probe = window.veilProbe = {log: []};
  const note = () => {
    const rounds = document.querySelector('#overview dd[data-field=rounds]');
    probe.log.push({renders: Number(html.getAttribute('data-renders') || 0), rounds: rounds ? rounds.textContent : null,
      status: document.getElementById('status').className});
  };
  note();
  new MutationObserver(note).observe(html, {attributes: true, attributeFilter: ['data-renders']});
}
return window.veilProbe.log.length;
"""

# Everything the final comparison reads, in one round trip.
DOM_STATE = r"""
const q = (selector, root) => Array.from((root || document).querySelectorAll(selector));
const points = (chart, series) => q('svg.chart#' + chart + ' g.series[data-series="' + series + '"] circle.point')
  .map(c => [Number(c.getAttribute('data-round')), Number(c.getAttribute('data-attempt'))]);
return {
  mode: document.documentElement.getAttribute('data-mode'),
  renders: Number(document.documentElement.getAttribute('data-renders')),
  status: document.getElementById('status').className,
  hash: location.hash,
  overview: Object.fromEntries(q('#overview dd[data-field]').map(dd => [dd.getAttribute('data-field'), dd.textContent.trim()])),
  accuracy: points('chart-accuracy', 'accuracy'),
  loss: points('chart-loss', 'loss'),
  survivors: points('chart-survivors', 'survivors'),
  epsilonMax: points('chart-epsilon', 'epsilon_max'),
  participants: q('#participants tbody tr[data-id]').map(tr => {
    const bar = tr.querySelector('div.epsilon-bar');
    const rounds = tr.querySelector('td[data-col=rounds]');
    return {id: tr.getAttribute('data-id'), rounds: rounds ? rounds.textContent.trim() : null,
      bar: bar && {width: bar.style.width, classes: bar.className.split(' ')}};
  }),
  dropouts: q('#dropouts tbody tr[data-protocol-round]').map(tr => ({round: tr.getAttribute('data-protocol-round'),
    counts: Object.fromEntries(q('td[data-reason]', tr).map(td => [td.getAttribute('data-reason'), Number(td.textContent)]))})),
  alertsActive: q('#alerts-active tr[data-alert-id]').map(tr => ({id: tr.getAttribute('data-alert-id'),
    cells: q('td', tr).map(td => td.textContent.trim())})),
  alertsPast: q('#alerts-past tr[data-alert-id]').map(tr => tr.getAttribute('data-alert-id')),
  privacyHidden: document.getElementById('privacy').hidden,
  errors: window.veilErrors,
  probe: window.veilProbe || null,
  navigations: performance.getEntriesByType('navigation').map(e => e.name),
  resources: performance.getEntriesByType('resource').map(e => e.name),
};
"""


class LiveDashboardTest(unittest.TestCase):
    def setUp(self):
        binary = veil_binary()
        if not executable(binary):
            missing("no veil binary at %s (set VEIL_BINARY or build it)" % binary)
        try:
            webdriver.check_tools()
        except webdriver.MissingToolError as error:
            missing(str(error))
        self.started = time.monotonic()
        folder = tempfile.TemporaryDirectory(prefix="veil-dashboard-live-")
        self.addCleanup(folder.cleanup)  # cleanups run last-added first: after the processes stop
        trainer = os.path.join(folder.name, "slow_trainer.py")
        with open(trainer, "w", encoding="utf-8") as file:
            file.write(SLOW_TRAINER)
        # --trainer is split at spaces: the interpreter's real path (not a shell shim), no site.
        python = os.path.realpath(sys.executable)
        if " " in python + trainer:
            self.skipTest("a space in %s or %s: --trainer splits its command at spaces" % (python, trainer))
        self.args = SIMULATE_ARGS + ["--trainer", "%s -I -S %s %s" % (python, trainer, TRAINER_SECONDS)]
        self.simulation = None
        self.browser = None
        self.addCleanup(self.stop_everything)
        # The browser first: Chromium's start is the slow part, and the page must open while
        # the rounds run.
        self.browser = webdriver.Browser()
        self.simulation = Simulation(binary, self.args)

    def stop_everything(self):
        if self.browser is not None:
            self.browser.quit()
            self.browser = None
        if self.simulation is not None:
            self.simulation.stop()

    def run(self, result=None):
        """On a failure or error, print what veil simulate wrote (cleanups have run by then)."""
        result = result if result is not None else self.defaultTestResult()
        problems = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        simulation = getattr(self, "simulation", None)
        if simulation is not None and len(result.failures) + len(result.errors) > problems:
            command = " ".join(getattr(self, "args", SIMULATE_ARGS))
            sys.stderr.write("\n---- veil %s: exit status %r\n---- stdout:\n%s\n---- stderr:\n%s\n---- end\n" % (
                command, simulation.process.returncode, simulation.text("stdout"), simulation.text("stderr")))
        return outcome

    # Helpers

    def snapshot(self):
        status, body = http_get(self.origin + "/api/snapshot", self.token)
        self.assertEqual(status, 200, body[:200])
        return json.loads(body)

    def wait_for_the_end(self):
        """The snapshot once the federation is over: no current round, rounds_completed and the
        whole snapshot unchanged over a second (participants leave just after the last round)."""
        deadline = time.monotonic() + FEDERATION_TIMEOUT
        previous = None
        while time.monotonic() < deadline:
            snapshot = self.snapshot()
            finished = snapshot.get("current") is None and snapshot["federation"]["rounds_completed"] > 0
            comparable = dict(snapshot, generated=None, coordinator=None)
            if finished and previous is not None and comparable == previous:
                return snapshot
            previous = comparable if finished else None
            if self.simulation.process.poll() is not None:
                self.fail("veil simulate exited with %d during the federation" % self.simulation.process.returncode)
            time.sleep(1.0)
        self.fail("the federation did not finish within %.0f s" % FEDERATION_TIMEOUT)

    # The test

    def test_a_live_federation(self):
        self.origin, self.token = self.simulation.wait_for_url(URL_TIMEOUT)
        self.browser.navigate(self.origin + "/#token=" + self.token)
        self.browser.execute(PROBE)
        self.browser.wait_until("document.getElementById('status').className === 'live'", PAGE_TIMEOUT, 0.05)
        self.assertEqual(self.browser.execute("return [document.documentElement.getAttribute('data-mode'), location.hash]"),
                         ["live", ""], "live mode, the token gone from the address bar")

        self.check_the_token_is_required()
        self.check_metrics()

        final = self.wait_for_the_end()
        federation = final["federation"]
        self.assertEqual((federation["rounds_completed"], federation["rounds_target"]), (ROUNDS, ROUNDS), "every round ran")
        # The page has the same snapshot once it shows the last round and no current one.
        expected_rounds = "%d / %d" % (federation["rounds_completed"], federation["rounds_target"])
        self.browser.wait_until(
            "document.querySelector('#overview dd[data-field=rounds]').textContent === %s && "
            "document.querySelector('#overview dd[data-field=current]').textContent === 'idle'" % json.dumps(expected_rounds),
            PAGE_TIMEOUT)
        time.sleep(0.5)  # a last event in flight (the server sends at most four a second)
        state = self.browser.execute(DOM_STATE)

        self.check_live_rendering(state)
        self.check_against_the_snapshot(state, final)
        self.assertEqual(state["errors"], [], "JavaScript errors")
        foreign = [name for name in state["navigations"] + state["resources"] if not name.startswith(self.origin + "/")]
        self.assertEqual(foreign, [], "requests to another origin than %s" % self.origin)
        self.save_screenshot("dashboard-live.png")

        # SIGINT ends the dashboard hold (the test's cleanup would kill it after 10 s).
        started = time.monotonic()
        self.simulation.stop()
        self.assertLess(time.monotonic() - started, 9.5, "SIGINT ended veil simulate's --dashboard-hold")
        self.assertLess(time.monotonic() - self.started, 90, "the whole test stays under 90 s")

    def check_the_token_is_required(self):
        for path in ("/api/snapshot", "/api/events"):
            for token in (None, "wrong-" + self.token, self.token[:-1], ""):
                status, _ = http_get(self.origin + path, token)
                self.assertEqual(status, 401, "%s with token %r" % (path, token))
        status, body = http_get(self.origin + "/api/snapshot", self.token)
        self.assertEqual(status, 200)
        self.assertIn("federation", json.loads(body))
        # The stream: 200, text/event-stream, and a snapshot event straight away.
        request = urllib.request.Request(self.origin + "/api/events", headers={"Authorization": "Bearer " + self.token})
        with OPENER.open(request, timeout=10) as response:
            self.assertEqual(response.status, 200)
            self.assertTrue(response.headers.get("Content-Type", "").startswith("text/event-stream"), response.headers)
            event, data = None, []
            while True:
                line = response.readline().decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif line == "" and data:
                    break
            self.assertEqual(event, "snapshot")
            self.assertIn("federation", json.loads("\n".join(data)))
        # The page itself and /metrics are open (the page holds no data).
        self.assertEqual(http_get(self.origin + "/")[0], 200)

    def check_metrics(self):
        status, body = http_get(self.origin + "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"veil_", body)
        if not executable(PROMTOOL):
            if REQUIRE_TOOLS:
                self.fail("promtool missing at %s (VEIL_REQUIRE_TOOLS=1)" % PROMTOOL)
            sys.stderr.write("\n(promtool missing at %s: /metrics not checked)\n" % PROMTOOL)
            return
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, "promtool check metrics:\n%s%s" % (
            check.stdout.decode(errors="replace"), check.stderr.decode(errors="replace")))

    def check_live_rendering(self, state):
        """The page was rendered again and again by the stream as rounds completed, not reloaded."""
        probe = state["probe"]
        self.assertIsNotNone(probe, "the page was reloaded (the probe installed after the first load is gone)")
        self.assertEqual(len(state["navigations"]), 1, state["navigations"])
        log = probe["log"]
        renders = [entry["renders"] for entry in log]
        self.assertEqual(renders, sorted(renders), "data-renders only grows")
        completed = [int(entry["rounds"].split(" / ")[0]) for entry in log
                     if entry["rounds"] and entry["status"] == "live" and entry["renders"] > 0]
        self.assertEqual(completed, sorted(completed), "rounds completed only grows: %s" % log)
        during = sorted({n for n in completed if n < ROUNDS})
        self.assertGreaterEqual(len(during), 3, "renders during the federation showed rounds %s (log %s)" % (during, log))
        self.assertGreaterEqual(state["renders"] - (renders[0] if renders else 0), 5, log)
        self.assertEqual(state["status"], "live")

    def check_against_the_snapshot(self, state, snapshot):
        rounds = snapshot["rounds"]
        attempts = [(r["number"], r["attempt"]) for r in rounds]
        self.assertEqual(len(attempts), ROUNDS, "one attempt per round")
        self.assertEqual(state["mode"], "live")
        self.assertEqual(state["overview"]["rounds"], "%d / %d" % (ROUNDS, ROUNDS))
        self.assertEqual(state["overview"]["current"], "idle")

        # Charts: a point per attempt with a value.
        def plotted(key):
            return [[r["number"], r["attempt"]] for r in rounds if r.get(key) is not None]

        self.assertEqual(state["accuracy"], plotted("accuracy"))
        self.assertEqual(state["loss"], plotted("loss"))
        self.assertEqual(len(state["accuracy"]), ROUNDS, "every round has an accuracy")
        self.assertEqual(state["survivors"], [list(a) for a in attempts])
        self.assertEqual([r["survivors"] for r in rounds], [CLIENTS] * (ROUNDS - 1) + [CLIENTS - 1],
                         "everyone survives but the dropped participant in the last round")
        self.assertFalse(state["privacyHidden"])
        self.assertEqual(state["epsilonMax"], plotted("epsilon_max"))

        # Participants: one row each, in the snapshot's order, each with its ε bar.
        participants = snapshot["participants"]
        self.assertEqual(len(participants), CLIENTS)
        self.assertEqual([row["id"] for row in state["participants"]], [p["id"] for p in participants])
        privacy = snapshot["privacy"]
        self.assertEqual((privacy["mode"], privacy["budget"], privacy["alert_fraction"]), ("central", BUDGET, ALERT_FRACTION))
        for row, p in zip(state["participants"], participants):
            self.assertEqual(row["rounds"], "%d / %d / %d" % (p["selected"], p["completed"], p["dropped"]), p["id"])
            self.assertIsNotNone(p.get("epsilon"), p["id"])
            self.assertIsNotNone(row["bar"], "%s has no ε bar" % p["id"])
            ratio = p["epsilon"] / privacy["budget"]
            self.assertAlmostEqual(float(row["bar"]["width"].rstrip("%")), min(1.0, ratio) * 100, places=3, msg=p["id"])
            self.assertEqual("near" in row["bar"]["classes"], ratio >= privacy["alert_fraction"], p["id"])
        dropped = [p["id"] for p in participants if p["dropped"]]
        self.assertEqual(dropped, ["participant-%d" % (DROPPED_INDEX + 1)], "the dropped participant")

        # The dropout: protocol round × reason, as in the snapshot.
        dropouts = {}
        for r in rounds:
            for d in r["dropouts"]:
                dropouts[(d["protocol_round"], d["reason"])] = dropouts.get((d["protocol_round"], d["reason"]), 0) + d["count"]
        self.assertEqual(sum(dropouts.values()), 1, dropouts)
        self.assertEqual([len(r["dropouts"]) for r in rounds], [0] * (ROUNDS - 1) + [1], "the dropout is in the last round")
        drawn = {(row["round"], reason): n for row in state["dropouts"] for reason, n in row["counts"].items() if reason}
        self.assertEqual(drawn, dropouts)

        # Alerts: the firing ones active, including the budget alert of every participant that passed the fraction.
        alerts = snapshot["alerts"]
        active = sorted(a["id"] for a in alerts if a["state"] != "resolved")
        self.assertEqual(sorted(row["id"] for row in state["alertsActive"]), active)
        self.assertEqual(sorted(state["alertsPast"]), sorted(a["id"] for a in alerts if a["state"] == "resolved"))
        budget = [a for a in alerts if a["detector"] == "budget_exhaustion" and a["state"] == "firing"]
        self.assertEqual(sorted(a["subject"] for a in budget),
                         sorted(p["id"] for p in participants if p["epsilon"] / BUDGET >= ALERT_FRACTION))
        self.assertTrue(budget, "a budget alert fired")
        rows = {row["id"]: row["cells"] for row in state["alertsActive"]}
        for alert in budget:
            self.assertIn(alert["id"], rows)
            self.assertEqual(rows[alert["id"]][1:3], [alert["rule"], alert["subject"]], alert["id"])
            self.assertEqual(rows[alert["id"]][-1], alert["summary"], alert["id"])

    def save_screenshot(self, name):
        height = self.browser.execute("return document.documentElement.scrollHeight")
        self.browser.set_window_size(1400, min(8000, height + 160))
        path = self.browser.screenshot(os.path.join(screenshot_dir(), name))
        with open(path, "rb") as file:
            self.assertEqual(file.read(8), b"\x89PNG\r\n\x1a\n")
        sys.stderr.write("\nscreenshot: %s\n" % path)


if __name__ == "__main__":
    unittest.main()
