"""The browser participant's trainer (web/participant/trainer.js, Specs/learning.md §2 and §4.1)
against the native trainer's known answers, in a real headless Chromium: every case of
Vectors/trainer/veil_local_training.json — softmax and MLP training whose every double must have
the listed bits, and CSV text read or refused as listed — must pass in
web/tests/trainer-test.html, the case count taken from the JSON here. With ?perturb=1 (each
plan's learning rate one bit off) every training case must fail, or the comparison proves
nothing. The page also times softmax training on 1,000 rows × 20 features (printed). Standard
library only; skipped when Chromium or chromedriver is missing unless VEIL_REQUIRE_TOOLS=1.

    VEIL_REQUIRE_TOOLS=1 python3 -m unittest python/tests/test_browser_trainer.py -v
"""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # browser_support.py is a sibling, whether run by discover or as python.tests.…
from browser_support import ROOT, ModuleFixtures  # noqa: E402

VECTOR_FILE = os.path.join(ROOT, "Vectors", "trainer", "veil_local_training.json")
PAGE_PATH = "/web/tests/trainer-test.html"
TIMEOUT = 180.0

fixtures = ModuleFixtures()


def tearDownModule():
    fixtures.close()


def listed_cases():
    """(all cases, training cases, CSV cases), counted from the JSON, not from the page."""
    with open(VECTOR_FILE, encoding="utf-8") as file:
        data = json.load(file)
    tests = [test for group in data["testGroups"] for test in group["tests"]]
    assert len(tests) == data["numberOfTests"]
    train = sum(1 for test in tests if test["operation"] == "train")
    return len(tests), train, len(tests) - train


def run_page(query=""):
    browser = fixtures.browser()
    browser.navigate(fixtures.origin() + PAGE_PATH + query)
    browser.wait_until("/^(PASS|FAIL)/.test(document.title)", timeout=TIMEOUT, interval=0.25)
    return browser.execute("return document.title"), browser.execute("return window.veilTrainerResults")


class BrowserTrainerTest(unittest.TestCase):
    def test_every_case_is_reproduced_bit_for_bit(self):
        total, train, csv = listed_cases()
        self.assertGreaterEqual(train, 12)
        self.assertGreaterEqual(csv, 1)
        title, results = run_page()
        bench = results["bench"] or {}
        print("\ntrainer page: %s in %.0f ms; softmax 1000x20, 10 classes, 1 epoch, batch 32: %.2f ms (best of 5: %s)"
              % (title, results["elapsedMs"], bench.get("bestMs", float("nan")),
                 ", ".join("%.1f" % ms for ms in bench.get("runsMs", []))), file=sys.stderr)
        self.assertIsNone(results["error"], results["error"])
        self.assertEqual(results["failures"], [])
        self.assertEqual((results["cases"], results["passed"], results["failed"]), (total, total, 0))
        self.assertEqual((results["trainCases"], results["csvCases"]), (train, csv))
        self.assertEqual(results["mismatchedDoubles"], 0)
        self.assertEqual(title, "PASS %d" % total)
        self.assertGreater(bench["bestMs"], 0)

    def test_a_learning_rate_one_bit_off_fails_every_training_case(self):
        total, train, csv = listed_cases()
        title, results = run_page("?perturb=1")
        self.assertTrue(title.startswith("FAIL"), title)
        self.assertIsNone(results["error"], results["error"])
        self.assertTrue(results["perturbed"])
        self.assertEqual(results["failed"], train)
        self.assertEqual(results["passed"], csv)
        self.assertGreater(results["mismatchedDoubles"], 0)
        self.assertTrue(all("delta:" in failure for failure in results["failures"]), results["failures"])


if __name__ == "__main__":
    unittest.main()
