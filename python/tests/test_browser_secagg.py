"""The masking participant in browser JavaScript (web/participant/secagg.js) against the SecAgg
vectors, in a real headless Chromium: web/tests/secagg-test.html replays every transcript of
Vectors/secagg/veil_secagg.json client by client (every message each participant sends must equal
the transcript's, byte for byte, and it must complete exactly when the transcript says), re-runs the
honest transcripts end to end with a small honest coordinator, runs every substitution case
(participant-side refusals and complaints; server-side cases only reach their message), and checks
Vectors/secagg/veil_secagg_parameters.json through the parameter rules and the participant's policy.
The counts are computed here from the JSON files, independently of the page. A page told to flip
one bit of one recorded coordinator message must fail. Standard library only; skipped when Chromium
or chromedriver is missing unless VEIL_REQUIRE_TOOLS=1.

    VEIL_REQUIRE_TOOLS=1 python3 -m unittest python/tests/test_browser_secagg.py -v
"""

import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # browser_support.py is a sibling
from browser_support import ROOT, ModuleFixtures, veil_binary  # noqa: E402

PAGE_PATH = "/web/tests/secagg-test.html"
SECAGG = os.path.join(ROOT, "Vectors", "secagg", "veil_secagg.json")
PARAMETERS = os.path.join(ROOT, "Vectors", "secagg", "veil_secagg_parameters.json")
TIMEOUT = 600.0  # generous: two shared cores, and the lead may be compiling

fixtures = ModuleFixtures()


def tearDownModule():
    fixtures.close()


def load(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def expected_counts():
    """From the JSON files: transcripts, honest transcripts (no rogue), participant-side and
    server-side substitutions, parameter cases."""
    secagg, parameters = load(SECAGG), load(PARAMETERS)
    tests = [t for g in secagg["testGroups"] for t in g["tests"]]
    transcripts = [t for t in tests if t["kind"] == "transcript"]
    substitutions = [t for t in tests if t["kind"] == "substitution"]
    assert len(tests) == secagg["numberOfTests"] == len(transcripts) + len(substitutions)
    return {
        "transcripts": len(transcripts),
        "endToEnd": sum(1 for t in transcripts if "substitutedIndex" not in t),
        "participant": sum(1 for t in substitutions if t["party"] != 0),
        "server": sum(1 for t in substitutions if t["party"] == 0),
        "substitutions": len(substitutions),
        "parameters": sum(len(g["tests"]) for g in parameters["testGroups"]),
    }


def run_page(query=""):
    browser = fixtures.browser()
    started = time.monotonic()
    browser.navigate(fixtures.origin() + PAGE_PATH + query)
    browser.wait_until("/^(PASS|FAIL|BENCH)/.test(document.title)", timeout=TIMEOUT, interval=0.5)
    elapsed = time.monotonic() - started
    return browser.execute("return document.title"), elapsed


class BrowserSecAggTest(unittest.TestCase):
    def test_every_case_passes(self):
        counts = expected_counts()
        title, elapsed = run_page()
        results = fixtures.browser().execute("return window.veilSecAggResults")
        print("\nsecagg page: %s in %.1f s" % (title, elapsed), file=sys.stderr)
        for name in ("transcripts", "substitutions", "parameters"):
            print("  %-14s %r" % (name, {k: v for k, v in results[name].items() if k != "failures"}), file=sys.stderr)
        self.assertIsNone(results["error"], results["error"])
        for name in ("transcripts", "substitutions", "parameters"):
            with self.subTest(bucket=name):
                self.assertEqual(results[name]["failures"], [])
                self.assertEqual((results[name]["cases"], results[name]["passed"]), (counts[name], counts[name]))
        self.assertEqual(results["transcripts"]["endToEnd"], counts["endToEnd"])
        self.assertEqual(results["substitutions"]["participant"], counts["participant"])
        self.assertEqual(results["substitutions"]["server"], counts["server"])
        for floor in results["policyFloors"]:
            self.assertEqual(floor["got"], floor["want"], floor)
        total = counts["transcripts"] + counts["substitutions"] + counts["parameters"]
        self.assertEqual((results["cases"], results["passed"], results["failed"]), (total, total, 0))
        self.assertEqual(title, "PASS %d" % total)
        # Every participant of the plain complete-graph run completed.
        self.assertEqual(results["outcomes"]["1"], {str(u): "completed" for u in range(1, 6)})

    def test_a_flipped_bit_fails_the_page(self):
        title, _ = run_page("?mutate=1")
        results = fixtures.browser().execute("return window.veilSecAggResults")
        self.assertTrue(title.startswith("FAIL"), title)
        self.assertEqual(results["failed"], 1)
        self.assertEqual(len(results["transcripts"]["failures"]), 1)
        failure = results["transcripts"]["failures"][0]
        self.assertTrue(failure.startswith("tcId 1:"), failure)
        self.assertIn("invalidSignature", failure)  # the client aborted on the altered message

    def test_masking_benchmark(self):
        """The browser's masking (d = 100,000, b = 32, n = 5) beside its raw WebAssembly keystream,
        and the native participant's (`veil bench secagg`, one core) beside its own, in the same run.
        A debug build of veil is not optimised: its numbers are printed, not compared."""
        title, _ = run_page("?bench=1")
        bench = fixtures.browser().execute("return window.veilSecAggBench")
        self.assertTrue(title.startswith("BENCH"), title)
        self.assertEqual((bench["dimension"], bench["bits"], bench["clients"]), (100000, 32, 5))
        self.assertGreater(bench["keystreamMedianMs"], 0)
        line = "\nmasking d = 100000, b = 32, n = 5: browser %.1f ms (%.1f × its keystream, %.1f ms)" % (
            bench["medianMs"], bench["medianMs"] / bench["keystreamMedianMs"], bench["keystreamMedianMs"])
        veil = veil_binary()
        native = subprocess.run([veil, "bench", "secagg", "--clients", "5", "--dim", "100000", "--dropout", "0",
                                 "--bits", "32", "--json"], capture_output=True, text=True, timeout=300)
        self.assertEqual(native.returncode, 0, native.stderr)
        report = json.loads(native.stdout)
        mask, keystream = report["client_mask_seconds_one_core"] * 1000, report["client_keystream_seconds_one_core"] * 1000
        line += "; native %.1f ms (%.1f × its keystream, %.1f ms; %s); browser/native %.1f" % (
            mask, mask / keystream, keystream, "debug build" if "/debug/" in veil else "as built", bench["medianMs"] / mask)
        print(line, file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
