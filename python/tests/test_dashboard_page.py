"""The monitoring dashboard (Sources/VeilService/Monitoring/Resources/dashboard.html) in a real
headless Chromium: report mode against the sample snapshot, strings from the snapshot kept as
text, charts with 0, 1 and 1000 rounds, and live mode against a small fake coordinator that
streams server-sent events. Standard library only; skipped when Chromium or chromedriver is
missing unless VEIL_REQUIRE_TOOLS=1.

    python3 -m unittest discover -s python/tests -p test_dashboard_page.py
"""

import copy
import http.server
import json
import os
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # browser_support.py is a sibling, whether run by discover or as python.tests.…
from browser_support import ROOT, ModuleFixtures  # noqa: E402

PAGE = os.path.join(ROOT, "Sources", "VeilService", "Monitoring", "Resources", "dashboard.html")
SAMPLE = os.path.join(HERE, "data", "monitoring-snapshot.json")
SNAPSHOT_ELEMENT = '<script id="veil-snapshot" type="application/json"></script>'
TIMEOUT = 30.0  # generous: the machine may be compiling at the same time
# Every per-round chart and the series it draws, with the snapshot value each series plots.
CHART_SERIES = {
    "chart-accuracy": {"accuracy": lambda r: r.get("accuracy")},
    "chart-loss": {"loss": lambda r: r.get("loss")},
    "chart-bytes": {"bytes_in": lambda r: r.get("bytes_in"), "bytes_out": lambda r: r.get("bytes_out")},
    "chart-survivors": {
        "survivors": lambda r: r.get("survivors"),
        "cohort": lambda r: r.get("cohort"),
        "threshold": lambda r: r.get("threshold"),
    },
    "chart-epsilon": {"epsilon_max": lambda r: r.get("epsilon_max"), "epsilon_mean": lambda r: r.get("epsilon_mean")},
}


def embed_snapshot(page, snapshot_json):
    """The report-mode page: snapshot_json as the body of the veil-snapshot element.

    Every `<` becomes `\\u003c` (in JSON it only occurs inside strings, where the escape means
    the same), so no string in the data can close the element or open an HTML comment, which
    changes how the parser looks for `</script>`. `veil report` does the same in Swift.
    """
    if page.count(SNAPSHOT_ELEMENT) != 1:
        raise ValueError("the page must hold exactly one empty %s" % SNAPSHOT_ELEMENT)
    body = snapshot_json.replace("<", "\\u003c")
    opening = SNAPSHOT_ELEMENT[: -len("</script>")]
    return page.replace(SNAPSHOT_ELEMENT, opening + body + "</script>")


def read(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


def sample():
    return json.loads(read(SAMPLE))


def without_nulls(value):
    """The snapshot as Swift's JSONEncoder writes it: an unknown value's key is left out, not null."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def screenshot_dir():
    folder = os.environ.get("VEIL_SCREENSHOT_DIR") or os.path.join(tempfile.gettempdir(), "veil-dashboard-screenshots")
    os.makedirs(folder, exist_ok=True)
    return folder


fixtures = ModuleFixtures()


def tearDownModule():
    fixtures.close()


# Everything the assertions read, gathered in one round trip.
DOM_STATE = r"""
const q = (selector, root) => Array.from((root || document).querySelectorAll(selector));
const text = node => node ? node.textContent.trim() : null;
const charts = {};
for (const svg of q('svg.chart')) {
  const series = {};
  for (const g of q('g.series', svg)) series[g.getAttribute('data-series')] = q('circle.point', g).map(c => ({
    round: Number(c.getAttribute('data-round')), attempt: Number(c.getAttribute('data-attempt')),
    classes: c.getAttribute('class').split(' '), title: text(c.querySelector('title'))}));
  charts[svg.id] = {series,
    marks: q('.outcome-mark', svg).map(m => ({round: Number(m.getAttribute('data-round')),
      attempt: Number(m.getAttribute('data-attempt')), classes: m.getAttribute('class').split(' ')})),
    alertLines: q('.alert-line', svg).length, budgetLines: q('.budget-line', svg).length,
    empty: q('text.empty', svg).length, ticks: q('.axis text', svg).length};
}
const rows = selector => q(selector).map(tr => ({attrs: Object.assign({}, tr.dataset), classes: tr.className.split(' ').filter(Boolean),
  cells: q('td', tr).map(text)}));
return {
  mode: document.documentElement.getAttribute('data-mode'),
  renders: Number(document.documentElement.getAttribute('data-renders')),
  status: {classes: document.getElementById('status').className, text: text(document.getElementById('status'))},
  overview: Object.fromEntries(q('#overview dd[data-field]').map(dd => [dd.getAttribute('data-field'), text(dd)])),
  charts,
  participants: q('#participants tbody tr[data-id]').map(tr => {
    const bar = tr.querySelector('div.epsilon-bar'), track = bar && bar.parentNode, marker = track && track.querySelector('.epsilon-alert');
    return {id: tr.getAttribute('data-id'), classes: tr.className.split(' ').filter(Boolean),
      cells: Object.fromEntries(q('td', tr).map(td => [td.getAttribute('data-col'), text(td)])),
      bar: bar && {width: bar.style.width, classes: bar.className.split(' '), inTrack: track.classList.contains('epsilon-track'),
        pixels: bar.getBoundingClientRect().width, track: track.getBoundingClientRect().width,
        marker: marker && (marker.getBoundingClientRect().left + 1 - track.getBoundingClientRect().left)}};
  }),
  participantsText: text(document.querySelector('#participants tbody')),
  dropouts: q('#dropouts tbody tr[data-protocol-round]').map(tr => ({round: tr.getAttribute('data-protocol-round'),
    counts: Object.fromEntries(q('td[data-reason]', tr).map(td => [td.getAttribute('data-reason'), Number(td.textContent)]))})),
  aborts: rows('#aborts tbody tr[data-kind]'),
  declines: rows('#declines tbody tr[data-code]'),
  alertsActive: rows('#alerts-active [data-alert-id]'),
  alertsPast: rows('#alerts-past [data-alert-id]'),
  alertsActiveText: text(document.getElementById('alerts-active')),
  privacyHidden: document.getElementById('privacy').hidden,
  errors: window.veilErrors,
  resources: performance.getEntriesByType('resource').map(e => e.name),
};
"""


class EmbeddingTests(unittest.TestCase):
    """The report embedding alone, without a browser."""

    def test_the_snapshot_round_trips_and_cannot_close_its_element(self):
        snapshot = {"name": "</script><script>alert(1)</script>", "note": "<!--<script>", "plain": "a/b"}
        page = embed_snapshot(read(PAGE), json.dumps(snapshot))
        opening = SNAPSHOT_ELEMENT[: -len("</script>")]
        body = page[page.index(opening) + len(opening):]
        body = body[: body.index("</script>")]
        self.assertNotIn("</", body)
        self.assertNotIn("<!--", body)
        self.assertEqual(json.loads(body), snapshot)

    def test_a_page_without_the_element_is_refused(self):
        with self.assertRaises(ValueError):
            embed_snapshot("<html></html>", "{}")


class ReportModeTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.browser = fixtures.browser()
        cls.folder = tempfile.TemporaryDirectory(prefix="veil-dashboard-")

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def open_report(self, snapshot, name="report.html"):
        """Write the report page for snapshot, open it from disk, and return the DOM state."""
        path = os.path.join(self.folder.name, name)
        with open(path, "w", encoding="utf-8") as file:
            file.write(embed_snapshot(read(PAGE), json.dumps(snapshot, ensure_ascii=False)))
        self.browser.navigate("file://" + path)
        self.browser.wait_until("document.documentElement.getAttribute('data-renders') === '1'", TIMEOUT)
        state = self.browser.execute(DOM_STATE)
        self.assertEqual(state["errors"], [], "JavaScript errors")
        self.assertEqual(state["resources"], [], "a report must not load anything")
        return state

    def assert_charts_match(self, state, snapshot):
        """Each series: one point per attempt with a value, in order, classed by outcome; failed attempts marked."""
        rounds = snapshot["rounds"]
        series = dict(CHART_SERIES)
        stages = sorted({stage for r in rounds for stage in (r.get("stage_seconds") or {})})
        series["chart-latency"] = {"seconds": lambda r: r.get("seconds")}
        for stage in stages:
            series["chart-latency"][stage] = lambda r, stage=stage: (r.get("stage_seconds") or {}).get(stage)
        failed = [(r["number"], r["attempt"], r["outcome"]) for r in rounds if r["outcome"] != "completed"]
        for chart, plotted in series.items():
            if chart == "chart-epsilon" and snapshot.get("privacy") is None:
                continue
            drawn = state["charts"][chart]
            if not rounds:
                self.assertEqual((drawn["series"], drawn["marks"], drawn["empty"]), ({}, [], 1), chart)
                continue
            self.assertEqual(sorted(drawn["series"]), sorted(plotted), chart)
            for key, value in plotted.items():
                expected = [(r["number"], r["attempt"], r["outcome"]) for r in rounds if value(r) is not None]
                points = drawn["series"][key]
                actual = [(p["round"], p["attempt"], next(c for c in p["classes"] if c in ("completed", "aborted", "interrupted")))
                          for p in points]
                self.assertEqual(actual, expected, "%s %s" % (chart, key))
                self.assertTrue(all("point" in p["classes"] and p["title"] for p in points), "%s %s tooltips" % (chart, key))
            marks = [(m["round"], m["attempt"], next(c for c in m["classes"] if c in ("aborted", "interrupted"))) for m in drawn["marks"]]
            self.assertEqual(marks, failed, chart + " outcome marks")
            plotted_any = any(value(r) is not None for value in plotted.values() for r in rounds)
            self.assertEqual(drawn["empty"], 0 if plotted_any else 1, chart + ": 'no data yet' exactly when nothing is plotted")

    def test_the_sample_snapshot(self):
        snapshot = sample()
        state = self.open_report(snapshot)
        self.assertEqual(state["mode"], "report")
        self.assertIn("report", state["status"]["classes"])
        self.assertTrue(state["status"]["text"].startswith("Report generated 20"), state["status"])
        federation = snapshot["federation"]
        self.assertEqual(state["overview"]["name"], federation["name"])
        self.assertEqual(state["overview"]["rounds"], "%d / %d" % (federation["rounds_completed"], federation["rounds_target"]))
        connected = sum(p["connected"] for p in snapshot["participants"])
        self.assertEqual(state["overview"]["connected"], "%d of %d" % (connected, len(snapshot["participants"])))
        self.assertIn(str(snapshot["current"]["round"]), state["overview"]["current"])
        self.assertEqual(state["overview"]["protocol_round"], snapshot["current"]["protocol_round"])
        self.assertEqual(state["overview"]["secure_sum"], federation["secure_sum"])
        self.assertEqual(state["overview"]["coordinator_cpu"], "%d %%" % round(snapshot["coordinator"]["cpu_fraction"] * 100))

        self.assert_charts_match(state, snapshot)
        epsilon = state["charts"]["chart-epsilon"]
        self.assertEqual((epsilon["alertLines"], epsilon["budgetLines"]), (1, 1))
        self.assertFalse(state["privacyHidden"])

        self.assert_participants(state, snapshot)
        self.assert_health_tables(state, snapshot)
        self.assert_alerts(state, snapshot)
        self.save_screenshot("dashboard-report.png")
        self.assert_sorting(snapshot)

    def assert_sorting(self, snapshot):
        """A header click sorts by that column, a second click reverses; unknown values stay last."""
        order = "return Array.from(document.querySelectorAll('#participants tbody tr')).map(tr => tr.getAttribute('data-id'))"
        known = sorted((p for p in snapshot["participants"] if p.get("epsilon") is not None), key=lambda p: p["epsilon"])
        unknown = [p["id"] for p in snapshot["participants"] if p.get("epsilon") is None]
        click = "document.querySelector('#participants th[data-key=epsilon]').click()"
        self.browser.execute(click)
        self.assertEqual(self.browser.execute(order), [p["id"] for p in known] + unknown)
        self.browser.execute(click)
        self.assertEqual(self.browser.execute(order), [p["id"] for p in reversed(known)] + unknown)
        self.assertEqual(self.browser.execute("return window.veilErrors"), [])

    def assert_participants(self, state, snapshot):
        participants = snapshot["participants"]
        self.assertEqual([row["id"] for row in state["participants"]], [p["id"] for p in participants])
        privacy = snapshot["privacy"]
        for row, p in zip(state["participants"], participants):
            cells = row["cells"]
            self.assertEqual(cells["id"], p["id"])
            self.assertEqual(cells["connected"], "yes" if p["connected"] else "no")
            self.assertEqual(cells["rounds"], "%d / %d / %d" % (p["selected"], p["completed"], p["dropped"]))
            self.assertEqual("excluded" in row["classes"], p["excluded"], p["id"])
            self.assertEqual("excluded" in cells["faults"], p["excluded"], p["id"])
            self.assertEqual("disconnected" in row["classes"], not p["connected"], p["id"])
            self.assertEqual(cells["reputation"], "—" if p.get("reputation") is None else "%.3f" % p["reputation"])
            resources = p.get("resources")
            if resources is None:
                self.assertEqual(cells["cpu"], "—")
            else:
                self.assertEqual(cells["battery"], "mains" if resources["battery"] < 0 else "%d %%" % round(resources["battery"] * 100))
                self.assertEqual(cells["gpu"], "—" if resources["gpu_utilisation"] < 0 else "%d %%" % round(resources["gpu_utilisation"] * 100))
                self.assertTrue(cells["memory"].endswith("MiB") and cells["network"].endswith("Mbit/s"), cells)
            if p.get("epsilon") is None:
                self.assertIsNone(row["bar"], p["id"])
                continue
            bar = row["bar"]
            fraction = min(1.0, p["epsilon"] / privacy["budget"])
            self.assertTrue(bar["inTrack"])
            self.assertAlmostEqual(float(bar["width"].rstrip("%")), fraction * 100, places=3, msg=p["id"])
            self.assertAlmostEqual(bar["pixels"] / bar["track"], fraction, delta=0.02, msg=p["id"])
            self.assertAlmostEqual(bar["marker"] / bar["track"], privacy["alert_fraction"], delta=0.03, msg=p["id"])
            self.assertEqual("near" in bar["classes"], p["epsilon"] / privacy["budget"] >= privacy["alert_fraction"], p["id"])
        self.assertTrue(any("near" in row["bar"]["classes"] for row in state["participants"] if row["bar"]),
                        "the sample has a participant near its budget")

    def assert_health_tables(self, state, snapshot):
        rounds = snapshot["rounds"]
        dropouts = {}
        for r in rounds:
            for d in r["dropouts"]:
                key = (d["protocol_round"], d["reason"])
                dropouts[key] = dropouts.get(key, 0) + d["count"]
        drawn = {(row["round"], reason): n for row in state["dropouts"] for reason, n in row["counts"].items() if reason and n}
        self.assertEqual(drawn, dropouts)
        for row in state["dropouts"]:
            self.assertEqual(row["counts"][""], sum(n for (pr, _), n in dropouts.items() if pr == row["round"]), "total")

        aborts = {}
        for r in rounds:
            if r["outcome"] != "completed":
                kind = r.get("abort_kind") or r["outcome"]  # an interruption has no abort kind
                count, reason = aborts.get(kind, (0, "—"))
                aborts[kind] = (count + 1, r.get("abort_reason") or reason)  # the latest reason given
        self.assertEqual({row["attrs"]["kind"]: (int(row["cells"][1]), row["cells"][3]) for row in state["aborts"]}, aborts)

        declines = {}
        for r in rounds:
            for code, n in r["declines"].items():
                declines[code] = declines.get(code, 0) + n
        self.assertEqual({row["attrs"]["code"]: int(row["cells"][1]) for row in state["declines"]}, declines)

    def assert_alerts(self, state, snapshot):
        alerts = snapshot["alerts"]
        firing = [a for a in alerts if a["state"] == "firing"]
        resolved = [a for a in alerts if a["state"] == "resolved"]
        self.assertTrue(firing and resolved, "the sample has both")
        self.assertEqual(sorted(row["attrs"]["alertId"] for row in state["alertsActive"]), sorted(a["id"] for a in firing))
        self.assertEqual(sorted(row["attrs"]["alertId"] for row in state["alertsPast"]), sorted(a["id"] for a in resolved))
        by_id = {a["id"]: a for a in alerts}
        for row in state["alertsActive"] + state["alertsPast"]:
            alert = by_id[row["attrs"]["alertId"]]
            self.assertIn("severity-" + alert["severity"], row["classes"])
            self.assertEqual(row["cells"][-1], alert["summary"])
            self.assertEqual(row["cells"][1], alert["rule"])
        for row in state["alertsPast"]:
            self.assertEqual(row["cells"][4], str(by_id[row["attrs"]["alertId"]]["resolved_round"]))
        self.assertNotIn("no active alerts", state["alertsActiveText"])

    def save_screenshot(self, name):
        """A picture of the whole page for a person to look at; the window grows to fit it."""
        height = self.browser.execute("return document.documentElement.scrollHeight")
        self.browser.set_window_size(1400, min(8000, height + 160))
        try:
            path = self.browser.screenshot(os.path.join(screenshot_dir(), name))
        finally:
            self.browser.set_window_size(1400, 2200)
        with open(path, "rb") as file:
            self.assertEqual(file.read(8), b"\x89PNG\r\n\x1a\n")
        sys.stderr.write("\nscreenshot: %s\n" % path)

    def test_keys_left_out_instead_of_null(self):
        snapshot = without_nulls(sample())
        state = self.open_report(snapshot, "without-nulls.html")
        self.assert_charts_match(state, snapshot)
        self.assert_participants(state, snapshot)
        self.assert_health_tables(state, snapshot)
        self.assert_alerts(state, snapshot)

    def test_strings_from_the_snapshot_are_text_not_html(self):
        snapshot = sample()
        hostile = '<img src=x onerror="window.pwned=1">'
        snapshot["federation"]["name"] = '<b id="injected">bold</b>'
        snapshot["participants"][0]["id"] = hostile
        snapshot["alerts"][0]["summary"] = "</script><script>window.pwned=2</script>"
        snapshot["alerts"][1]["subject"] = '"><svg onload="window.pwned=3">'
        snapshot["rounds"][3]["abort_reason"] = "<!--<script>window.pwned=4</script>"
        snapshot["rounds"][2]["dropouts"][0]["reason"] = "<i>silent</i>"
        snapshot["rounds"][1]["declines"] = {"<u>battery</u>": 1}
        state = self.open_report(snapshot)
        self.assertEqual(self.browser.execute(
            "return [window.pwned === undefined, document.querySelectorAll('main img, #injected, main i, main u, td svg').length]"), [True, 0])
        self.assertEqual(state["participants"][0]["id"], hostile)
        self.assertEqual(state["participants"][0]["cells"]["id"], hostile)
        self.assertEqual(state["overview"]["name"], '<b id="injected">bold</b>')
        summaries = [row["cells"][-1] for row in state["alertsActive"]]
        self.assertIn("</script><script>window.pwned=2</script>", summaries)
        self.assertIn("<i>silent</i>", {reason for row in state["dropouts"] for reason in row["counts"]})
        self.assertEqual([row["attrs"]["code"] for row in state["declines"] if "<u>" in row["attrs"]["code"]], ["<u>battery</u>"])
        self.assertIn("<!--<script>window.pwned=4</script>", [row["cells"][3] for row in state["aborts"]])

    def test_an_empty_federation_without_privacy(self):
        snapshot = sample()
        snapshot.update(rounds=[], participants=[], alerts=[], privacy=None, current=None, coordinator=None)
        snapshot["federation"]["rounds_completed"] = 0
        state = self.open_report(snapshot)
        self.assert_charts_match(state, snapshot)
        self.assertTrue(state["privacyHidden"])
        self.assertEqual(state["participants"], [])
        self.assertIn("no participants", state["participantsText"])
        self.assertIn("no active alerts", state["alertsActiveText"])
        self.assertEqual(state["overview"]["current"], "idle")

    def test_one_round(self):
        snapshot = sample()
        snapshot["rounds"] = snapshot["rounds"][:1]
        state = self.open_report(snapshot)
        self.assert_charts_match(state, snapshot)
        self.assertGreater(state["charts"]["chart-accuracy"]["ticks"], 2, "axes still have tick labels")

    def test_privacy_without_a_budget_shows_no_bars(self):
        snapshot = sample()
        snapshot["privacy"] = None
        state = self.open_report(snapshot)
        self.assertTrue(state["privacyHidden"])
        self.assertTrue(all(row["bar"] is None for row in state["participants"]))

    def test_a_thousand_rounds_are_downsampled(self):
        snapshot = sample()
        template = snapshot["rounds"][-1]
        rounds = []
        for n in range(1, 1001):
            if n % 100 == 0:  # ten aborted attempts, each retried
                rounds.append(dict(copy.deepcopy(template), number=n, attempt=1, outcome="aborted", accuracy=None, loss=None,
                                   abort_kind="missing_contributions", abort_reason="too few"))
            rounds.append(dict(copy.deepcopy(template), number=n, attempt=2 if n % 100 == 0 else 1, accuracy=0.5 + n / 2500, loss=1 / n))
        snapshot["rounds"] = rounds
        started = time.monotonic()
        state = self.open_report(snapshot, "thousand.html")
        self.assertLess(time.monotonic() - started, TIMEOUT)
        accuracy = state["charts"]["chart-accuracy"]
        points = accuracy["series"]["accuracy"]
        self.assertLessEqual(len(points), 520)
        self.assertGreaterEqual(len(points), 400)
        self.assertEqual((points[0]["round"], points[-1]["round"]), (1, 1000), "the ends are drawn")
        rounds_drawn = [p["round"] for p in points]
        self.assertEqual(rounds_drawn, sorted(rounds_drawn))
        bytes_in = state["charts"]["chart-bytes"]["series"]["bytes_in"]
        self.assertEqual(sum("aborted" in p["classes"] for p in bytes_in), 10, "failed attempts are always drawn")
        self.assertEqual(len(accuracy["marks"]), 10)


# ---- Live mode ------------------------------------------------------------------------------

class FakeCoordinator:
    """Serves the page at / and scripted event streams at /api/events, the way veil serve does.

    streams: one function per authorised connection, called with the handler; the last one is
    reused for any further connection. Every request is recorded for the assertions.
    """

    def __init__(self, token, streams):
        self.token = token
        self.streams = streams
        self.requests = []  # (monotonic time, request line, Authorization header)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        coordinator = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass  # keep test output quiet (and tokens out of it)

            def do_GET(self):
                with coordinator.lock:
                    coordinator.requests.append((time.monotonic(), self.requestline, self.headers.get("Authorization")))
                    authorised = [r for r in coordinator.requests if r[1].startswith("GET /api/events") and r[2] == "Bearer " + coordinator.token]
                if self.path == "/":
                    self.respond(200, "text/html; charset=utf-8", read(PAGE).encode("utf-8"))
                elif self.path == "/api/events":
                    if self.headers.get("Authorization") != "Bearer " + coordinator.token:
                        self.respond(401, "text/plain", b"unauthorised\n")
                        return
                    stream = coordinator.streams[min(len(authorised), len(coordinator.streams)) - 1]
                    try:
                        stream(self)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the page went away (navigated elsewhere): nothing to report
                else:
                    self.respond(404, "text/plain", b"not found\n")

            def respond(self, status, content_type, body):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/" % self.server.server_address[1]

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    def event_requests(self):
        with self.lock:
            return [r for r in self.requests if r[1].startswith("GET /api/events")]


def sse_snapshot(snapshot):
    """One snapshot event, the JSON spread over many data: lines and ended with CRLFs."""
    lines = json.dumps(snapshot, indent=1, ensure_ascii=False).split("\n")
    return ("event: snapshot\r\nid: 1\r\n" + "".join("data: %s\r\n" % line for line in lines) + "\r\n").encode("utf-8")


def start_stream(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()


def send_in_awkward_pieces(handler, payload):
    """Write payload split between \\r and \\n and inside a multi-byte character, to test the parser."""
    cuts = sorted({payload.index(b"\r\n") + 1, payload.index("ε".encode("utf-8")) + 1, len(payload) // 2, len(payload)})
    start = 0
    for cut in cuts:
        handler.wfile.write(payload[start:cut])
        handler.wfile.flush()
        start = cut
        time.sleep(0.05)


def snapshot_then_close(snapshot):
    def stream(handler):
        start_stream(handler)
        send_in_awkward_pieces(handler, b": hello\n\nevent: unrelated\ndata: not json\n\n" + sse_snapshot(snapshot))
        # returning closes the connection (HTTP/1.0): the page must notice and reconnect
    return stream


def unavailable(handler):
    handler.respond(503, "text/plain", b"restarting\n")


def snapshot_then_hold(snapshot, coordinator_stop):
    def stream(handler):
        start_stream(handler)
        handler.wfile.write(sse_snapshot(snapshot))
        handler.wfile.flush()
        while not coordinator_stop.wait(0.5):
            handler.wfile.write(b": heartbeat\n\n")  # keeps the connection visibly alive
            handler.wfile.flush()
    return stream


def later_snapshot():
    """The sample one round further on."""
    snapshot = sample()
    last = copy.deepcopy(snapshot["rounds"][-1])
    last.update(number=11, accuracy=0.866, loss=0.541, started=last["started"] + 160, finished=last["finished"] + 160)
    snapshot["rounds"].append(last)
    snapshot["federation"]["rounds_completed"] = 11
    snapshot["current"] = dict(snapshot["current"], round=12, protocol_round="R0AdvertiseKeys")
    snapshot["generated"] += 160
    return snapshot


class LiveModeTests(unittest.TestCase):
    TOKEN = "test-token-not-a-secret"

    @classmethod
    def setUpClass(cls):
        cls.browser = fixtures.browser()

    def state(self):
        state = self.browser.execute(DOM_STATE)
        self.assertEqual(state["errors"], [], "JavaScript errors")
        return state

    def test_streams_snapshots_and_reconnects_with_backoff(self):
        stop = threading.Event()
        coordinator = FakeCoordinator(self.TOKEN, [snapshot_then_close(sample()), unavailable, snapshot_then_hold(later_snapshot(), stop)])
        self.addCleanup(coordinator.close)
        self.addCleanup(stop.set)
        self.browser.navigate(coordinator.url + "#token=" + self.TOKEN)
        self.browser.wait_until("Number(document.documentElement.getAttribute('data-renders')) >= 1", TIMEOUT)
        self.assertEqual(self.browser.execute("return [location.hash, sessionStorage.getItem('veil-token')]"), ["", self.TOKEN],
                         "the token leaves the address bar and stays in the tab")
        self.assertEqual(self.state()["mode"], "live")

        # The first stream ends and the second attempt gets a 503: the page says so and retries.
        status = self.browser.wait_until(
            "document.getElementById('status').className === 'disconnected' && document.getElementById('status').textContent", TIMEOUT, 0.05)
        self.assertIn("disconnected, retrying", status)
        self.browser.wait_until("document.querySelector('#overview dd[data-field=rounds]').textContent === '11 / 20'", TIMEOUT)
        self.browser.wait_until("document.getElementById('status').className === 'live'", TIMEOUT)

        state = self.state()
        self.assertTrue(state["status"]["text"].startswith("Live · updated"), state["status"])
        later = later_snapshot()
        self.assertEqual([row["id"] for row in state["participants"]], [p["id"] for p in later["participants"]], "rows replaced, not added")
        self.assertEqual(len(state["charts"]["chart-accuracy"]["series"]["accuracy"]), sum(r["accuracy"] is not None for r in later["rounds"]))
        self.assertEqual(state["overview"]["protocol_round"], "R0AdvertiseKeys")

        requests = coordinator.event_requests()
        self.assertEqual(len(requests), 3, [r[1] for r in requests])
        self.assertTrue(all(r[2] == "Bearer " + self.TOKEN for r in requests))
        self.assertTrue(all(self.TOKEN not in r[1] for r in coordinator.requests), "the token is never in a URL")
        # 1 s after the end of the first stream, then 2 s after the 503 (allow for the first stream's 0.2 s of writing).
        first_gap, second_gap = requests[1][0] - requests[0][0], requests[2][0] - requests[1][0]
        self.assertGreater(first_gap, 0.9)
        self.assertGreater(second_gap, 1.9)
        self.assertGreater(second_gap, first_gap, "the wait doubles")
        self.browser.screenshot(os.path.join(screenshot_dir(), "dashboard-page-live.png"))

    def test_a_wrong_token_asks_for_the_right_one(self):
        stop = threading.Event()
        coordinator = FakeCoordinator(self.TOKEN, [snapshot_then_hold(sample(), stop)])
        self.addCleanup(coordinator.close)
        self.addCleanup(stop.set)
        self.browser.navigate(coordinator.url + "#token=wrong")
        message = self.browser.wait_until("!document.getElementById('auth').hidden && document.getElementById('auth-message').textContent", TIMEOUT)
        self.assertIn("Not authorised", message)
        self.assertIn("#token=", message)
        self.assertEqual(self.browser.execute("return [location.hash, document.getElementById('status').className]"), ["", "unauthorised"])
        time.sleep(1.5)
        self.assertEqual(len(coordinator.event_requests()), 1, "a refused token is not retried in a loop")

        self.browser.execute("document.getElementById('token-input').value = arguments[0]; document.getElementById('auth').requestSubmit();", self.TOKEN)
        self.browser.wait_until("document.documentElement.getAttribute('data-renders') === '1'", TIMEOUT)
        state = self.state()
        self.assertEqual(state["overview"]["rounds"], "10 / 20")
        self.assertTrue(self.browser.execute("return document.getElementById('auth').hidden"))
        self.assertEqual([r[2] for r in coordinator.event_requests()], ["Bearer wrong", "Bearer " + self.TOKEN])


if __name__ == "__main__":
    unittest.main()
