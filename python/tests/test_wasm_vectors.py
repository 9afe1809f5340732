"""libsodium compiled to WebAssembly (web/participant/libsodium.wasm, Specs/browser.md section 1)
and Veil's constructions in JavaScript (web/participant/veil-crypto.js), run against the project's
vector files in a real headless Chromium: web/tests/vectors.html must run every case of
every file it lists, as the files say, with no failure and nothing skipped. A .wasm whose bytes
were altered must be refused by the loader's SHA-256 check. Standard library only; skipped when
Chromium or chromedriver is missing unless VEIL_REQUIRE_TOOLS=1.

    VEIL_REQUIRE_TOOLS=1 python3 -m unittest python/tests/test_wasm_vectors.py -v
"""

import hashlib
import json
import os
import re
import sys
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # browser_support.py is a sibling, whether run by discover or as python.tests.…
from browser_support import ROOT, ModuleFixtures, RepositoryHandler  # noqa: E402

PARTICIPANT = os.path.join(ROOT, "web", "participant")
WASM = os.path.join(PARTICIPANT, "libsodium.wasm")
WASM_SHA256 = os.path.join(PARTICIPANT, "libsodium.wasm.sha256")
SODIUM_JS = os.path.join(PARTICIPANT, "sodium.js")
VECTORS = os.path.join(ROOT, "Vectors")
PAGE_PATH = "/web/tests/vectors.html"
TAMPERED_PREFIX = "/tampered"  # the same tree, with one byte of libsodium.wasm flipped
TIMEOUT = 180.0  # generous: the machine may be compiling at the same time

# Every vector file the page must run, with its algorithm (web/tests/vectors.js FILES).
FILES = {
    "x25519/rfc7748.json": "XDH",
    "x25519/x25519_test.json": "XDH",
    "ed25519/rfc8032.json": "EDDSA",
    "ed25519/ed25519_test.json": "EDDSA",
    "xchacha20poly1305/draft_irtf_cfrg_xchacha.json": "XCHACHA20-POLY1305",
    "sha256/sha256_fips180.json": "SHA-256",
    "kdf/hkdf_sha256_rfc5869.json": "HKDF-SHA-256",
    "kdf/veil_kdf.json": "VEIL-KDF",
    "drbg/veil_chacha20_generator.json": "VEIL-CHACHA20-DRBG",
    "mask/veil_mask_expansion.json": "VEIL-MASK-EXPANSION",
    "shamir/veil_shamir.json": "VEIL-SHAMIR",
    "codec/veil_fixed_point.json": "VEIL-FIXED-POINT",
    "ristretto255/veil_ristretto255.json": "VEIL-RISTRETTO255",
}


def expected_cases(name):
    """The number of cases in one vector file, counted here from the JSON (not from the page)."""
    with open(os.path.join(VECTORS, name), encoding="utf-8") as file:
        data = json.load(file)
    return sum(len(group["tests"]) for group in data["testGroups"])


def sha256_file(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


class Handler(RepositoryHandler):
    """The repository root; under TAMPERED_PREFIX the same files, except that libsodium.wasm has
    one byte flipped."""

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(TAMPERED_PREFIX + "/"):
            path = path[len(TAMPERED_PREFIX):]
            if path == "/web/participant/libsodium.wasm":
                with open(WASM, "rb") as file:
                    body = bytearray(file.read())
                body[len(body) // 2] ^= 0x01  # still a plausible module; only the hash tells
                self.send_response(200)
                self.send_header("Content-Type", "application/wasm")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(bytes(body))
                return
            self.path = path
        super().do_GET()


fixtures = ModuleFixtures(Handler)


def tearDownModule():
    fixtures.close()


def run_page(url):
    """Load the vector page and wait for its verdict: (title, results, seconds)."""
    browser = fixtures.browser()
    started = time.monotonic()
    browser.navigate(url)
    browser.wait_until("/^(PASS|FAIL)/.test(document.title)", timeout=TIMEOUT, interval=0.25)
    elapsed = time.monotonic() - started
    return browser.execute("return document.title"), browser.execute("return window.veilVectorResults"), elapsed


class WasmArtifactTest(unittest.TestCase):
    def test_hash_file_matches_the_module(self):
        with open(WASM_SHA256, encoding="ascii") as file:
            listed = file.read()
        self.assertRegex(listed, r"^[0-9a-f]{64}\n$")
        self.assertEqual(sha256_file(WASM), listed.strip())

    def test_loader_pins_the_same_hash(self):
        with open(SODIUM_JS, encoding="utf-8") as file:
            pinned = re.findall(r'^export const LIBSODIUM_WASM_SHA256 = "([0-9a-f]{64})";$', file.read(), re.M)
        self.assertEqual(pinned, [sha256_file(WASM)])

    def test_module_is_webassembly(self):
        with open(WASM, "rb") as file:
            self.assertEqual(file.read(8), b"\0asm\x01\0\0\0")


class WasmVectorsTest(unittest.TestCase):
    def test_every_case_of_every_file_passes(self):
        title, results, elapsed = run_page(fixtures.origin() + PAGE_PATH)
        print("\nvector page: %s in %.2f s (page's own timing %.0f ms)" % (title, elapsed, results["elapsedMs"]), file=sys.stderr)
        self.assertIsNone(results["error"], results["error"])
        self.assertEqual(sorted(results["files"]), sorted(FILES))
        total = 0
        for name, algorithm in FILES.items():
            report = results["files"][name]
            cases = expected_cases(name)
            total += cases
            acceptable = report["acceptable"]
            print("  %-48s %4d cases%s" % (name, report["cases"], "" if not sum(acceptable.values()) else
                  " (acceptable: %d accepted, %d refused)" % (acceptable["accepted"], acceptable["refused"])), file=sys.stderr)
            with self.subTest(file=name):
                self.assertEqual(report["algorithm"], algorithm)
                self.assertEqual(report["failures"], [])
                self.assertEqual((report["cases"], report["passed"], report["failed"], report["skipped"]), (cases, cases, 0, 0))
        self.assertEqual((results["cases"], results["passed"], results["failed"], results["skipped"]), (total, total, 0, 0))
        self.assertEqual(title, "PASS %d" % total)
        random = results["random"]
        print("  randombytes_buf: %r" % random, file=sys.stderr)
        self.assertTrue(random["distinct"] and random["nonZero"], random)
        self.assertGreater(random["randomGetCalls"], 0)  # the shim's random_get, i.e. crypto.getRandomValues
        self.assertEqual(results["wasmSha256"], sha256_file(WASM))

    def test_altered_module_is_refused(self):
        title, results, _ = run_page(fixtures.origin() + TAMPERED_PREFIX + PAGE_PATH)
        self.assertTrue(title.startswith("FAIL"), title)
        self.assertEqual(results["files"], {})  # nothing ran
        self.assertEqual(results["cases"], 0)
        self.assertIn("SodiumLoadError", results["error"])
        self.assertIn("refusing to instantiate", results["error"])
        self.assertIn("expected %s" % sha256_file(WASM), results["error"])


if __name__ == "__main__":
    unittest.main()
