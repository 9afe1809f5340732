"""The browser participant's enrolment request (web/participant/enrol.js, Specs/browser.md
section 2) against the real CA: in headless Chromium, web/tests/enrol-test.html makes a
PKCS #10 request with WebCrypto (P-256) and libsodium.wasm (Ed25519); `veil ca sign` must issue
a certificate for it unchanged, with CN = id and the Ed25519 public key the page made. The
request must have the same ASN.1 structure as the one `veil ca request` writes natively. An
invalid id is refused in JavaScript before any key is made; a participant's request signed as
a key holder, and a request whose binding was signed for another id, are refused by the CA.

Standard library only, plus the `veil` binary (VEIL_BINARY, else .build/debug/veil) and
openssl; skipped when Chromium, chromedriver, veil or openssl is missing unless
VEIL_REQUIRE_TOOLS=1.

    VEIL_REQUIRE_TOOLS=1 VEIL_BINARY=.build/debug/veil python3 -m unittest python/tests/test_browser_enrolment.py -v
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # browser_support.py is a sibling, whether run by discover or as python.tests.…
from browser_support import ModuleFixtures, extension_values, openssl_binary, run, veil_binary  # noqa: E402

PAGE_PATH = "/web/tests/enrol-test.html"
TIMEOUT = 120.0  # generous: the machine may be compiling at the same time

# Valid ids, among them the longest allowed and one with every punctuation mark allowed.
VALID_IDS = [
    "alice",
    "p.07-b_x",
    "A" + "b9.-_" * 12 + "Zz0",  # 64 characters
    "x",
]
# Ids the page must refuse before it makes anything (None: no id parameter at all).
INVALID_IDS = ["", "ca", "a" * 65, "a b", "a/b", "caf\u00e9", "a\nb", "a@b", None]

OID_ROLE = "1.3.6.1.4.1.32473.1.1"
OID_SIGNING_KEY = "1.3.6.1.4.1.32473.1.2"
OID_BINDING = "1.3.6.1.4.1.32473.1.3"
# DER SubjectPublicKeyInfo of a P-256 key up to its point: id-ecPublicKey, prime256v1, BIT STRING, 0x04.
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200" "04")


fixtures = ModuleFixtures()


def tearDownModule():
    fixtures.close()


def make_request(**params):
    """Open the test page with these query parameters; (title, window.veilEnrolment)."""
    browser = fixtures.browser()
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    browser.navigate(fixtures.origin() + PAGE_PATH + ("?" + query if query else ""))
    browser.wait_until("/^(READY|ERROR)/.test(document.title)", timeout=TIMEOUT, interval=0.1)
    return browser.execute("return document.title"), browser.execute("return window.veilEnrolment")


def asn1_structure(openssl, pem_path):
    """`openssl asn1parse` of a request as (depth, header length, length, type, value) rows, with
    the values that differ between any two requests (keys, signatures) and the lengths that
    follow the signature's (the outer SEQUENCE, the signature BIT STRING) left out."""
    rows = []
    lines = run(openssl, "asn1parse", "-in", pem_path).stdout.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"\s*(\d+):d=(\d+)\s+hl=(\d+)\s+l=\s*(\d+)\s+(prim|cons):\s*(.*?)\s*$", line)
        assert match, line
        depth, header, length = int(match.group(2)), int(match.group(3)), int(match.group(4))
        kind, _, value = match.group(6).partition(":")
        kind = re.sub(r"\s+", " ", kind.strip())
        if depth == 0 or index == len(lines) - 1:
            length = None  # the signature's length varies (70–72 bytes), and with it these
        if kind == "OCTET STRING [HEX DUMP]" and not value.startswith("0C"):
            value = "<bytes>"  # the keys and the binding; the role's UTF8String is kept
        if kind == "UTF8STRING":
            value = "<id>"
        rows.append((depth, header, length, kind, value))
    return rows


def request_der(openssl, pem_path):
    return subprocess.run([openssl, "req", "-in", pem_path, "-outform", "DER"], capture_output=True, check=True).stdout


class BrowserEnrolmentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.veil = veil_binary()
        cls.openssl = openssl_binary()
        fixtures.browser()
        cls.tmp = tempfile.mkdtemp(prefix="veil-enrolment-")
        cls.ca = os.path.join(cls.tmp, "CA")
        run(cls.veil, "ca", "init", "--dir", cls.ca)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write_request(self, name, pem):
        path = os.path.join(self.tmp, name + ".csr.pem")
        with open(path, "w", encoding="ascii") as file:
            file.write(pem)
        return path

    def sign(self, request, role, out, check=False):
        return run(self.veil, "ca", "sign", "--dir", self.ca, "--request", request, "--role", role, "--out", out, check=check)

    def browser_request(self, id, role="participant", **extra):
        title, result = make_request(id=id, role=role, **extra)
        self.assertEqual(title, "READY", result)
        self.assertRegex(result["signingPublicKeyHex"], r"^[0-9a-f]{64}$")
        self.assertNotIn("signingSeed", result)
        self.assertTrue(result["seedZeroed"])
        self.assertIs(result["tlsKeyExtractable"], False)  # the P-256 private key never leaves WebCrypto
        self.assertEqual(result["tlsKeyUsages"], ["sign"])
        self.assertEqual(result["tlsKeyAlgorithm"], {"name": "ECDSA", "namedCurve": "P-256"})
        self.assertTrue(result["requestPem"].startswith("-----BEGIN CERTIFICATE REQUEST-----\n"))
        self.assertTrue(result["requestPem"].endswith("\n-----END CERTIFICATE REQUEST-----\n"))
        self.assertTrue(all(len(line) <= 64 for line in result["requestPem"].splitlines()))
        return result

    def test_requests_are_certified_by_the_real_ca(self):
        for id in VALID_IDS:
            with self.subTest(id=id):
                result = self.browser_request(id)
                request = self.write_request(id, result["requestPem"])
                run(self.openssl, "req", "-in", request, "-noout", "-verify")  # its signature by the TLS key
                certificate = os.path.join(self.tmp, id + ".cert.pem")
                signed = self.sign(request, "participant", certificate)
                self.assertEqual(signed.returncode, 0, signed.stderr)
                text = run(self.openssl, "x509", "-in", certificate, "-noout", "-text").stdout
                self.assertRegex(text, r"Subject: CN\s*=\s*%s\n" % re.escape(id))
                self.assertIn("DNS:%s" % id, text)
                self.assertIn("TLS Web Client Authentication", text)
                values = extension_values(self.openssl, certificate)
                self.assertEqual(values[OID_SIGNING_KEY], "0420" + result["signingPublicKeyHex"])
                self.assertEqual(values[OID_ROLE], "0c0b" + b"participant".hex())
                self.assertNotIn(OID_BINDING, values)  # the binding stays in the request
                # The certificate's key is the request's key.
                key_of = lambda *args: run(self.openssl, *args, "-noout", "-pubkey").stdout  # noqa: E731
                self.assertEqual(key_of("x509", "-in", certificate), key_of("req", "-in", request))
                print("\n  %-66s %d-byte request, %.1f ms" % (id, result["requestBytes"], result["elapsedMs"][0]),
                      file=sys.stderr, end="")

    def test_key_holder_request_is_certified_as_key_holder(self):
        result = self.browser_request("holder-1", role="key-holder")
        request = self.write_request("holder-1", result["requestPem"])
        certificate = os.path.join(self.tmp, "holder-1.cert.pem")
        signed = self.sign(request, "key-holder", certificate)
        self.assertEqual(signed.returncode, 0, signed.stderr)
        values = extension_values(self.openssl, certificate)
        self.assertEqual(values[OID_ROLE], "0c0a" + b"key-holder".hex())
        self.assertEqual(values[OID_SIGNING_KEY], "0420" + result["signingPublicKeyHex"])

    def test_same_structure_as_the_native_request(self):
        for id in ("x", VALID_IDS[2]):
            with self.subTest(id=id):
                native_dir = os.path.join(self.tmp, "native-" + str(len(id)))
                run(self.veil, "ca", "request", "--id", id, "--role", "participant", "--out", native_dir)
                native = os.path.join(native_dir, id + ".csr.pem")
                browser = self.write_request("structure-" + str(len(id)), self.browser_request(id)["requestPem"])
                native_rows, browser_rows = asn1_structure(self.openssl, native), asn1_structure(self.openssl, browser)
                self.assertEqual(browser_rows, native_rows)
                self.assertEqual(len(browser_rows), 30)
                # Byte for byte up to the TLS key's point: everything after the outer header (whose
                # length follows the signature's) through the SPKI's fixed P-256 prefix.
                native_der, browser_der = request_der(self.openssl, native), request_der(self.openssl, browser)
                point = native_der.index(P256_SPKI_PREFIX) + len(P256_SPKI_PREFIX)
                self.assertEqual(browser_der.index(P256_SPKI_PREFIX) + len(P256_SPKI_PREFIX), point)
                self.assertEqual(browser_der[4:point], native_der[4:point])
                self.assertEqual(browser_der[:2], native_der[:2])  # SEQUENCE, two length bytes

    def test_invalid_ids_are_refused_before_anything_is_made(self):
        for id in INVALID_IDS:
            with self.subTest(id=id):
                title, result = make_request(id=id)
                self.assertTrue(title.startswith("ERROR: EnrolmentInputError: "), title)
                self.assertNotIn("requestPem", result)
                self.assertEqual(result["calls"], {"generateKey": 0, "getRandomValues": 0, "signSeedKeypair": 0})
        title, result = make_request(id="alice", role="coordinator")  # a page is never a coordinator
        self.assertTrue(title.startswith("ERROR: EnrolmentInputError: invalid role"), title)
        self.assertEqual(result["calls"], {"generateKey": 0, "getRandomValues": 0, "signSeedKeypair": 0})

    def test_participant_request_is_refused_as_key_holder(self):
        result = self.browser_request("mallory-kh")
        request = self.write_request("mallory-kh", result["requestPem"])
        certificate = os.path.join(self.tmp, "mallory-kh.cert.pem")
        refused = self.sign(request, "key-holder", certificate)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("participant", refused.stderr + refused.stdout)
        self.assertFalse(os.path.exists(certificate))
        self.assertFalse(os.path.exists(os.path.join(self.ca, "mallory-kh.cert.pem")))

    def test_binding_for_another_id_is_refused(self):
        result = self.browser_request("mallory", tamper="binding")
        request = self.write_request("mallory-tampered", result["requestPem"])
        run(self.openssl, "req", "-in", request, "-noout", "-verify")  # the request itself is well signed
        certificate = os.path.join(self.tmp, "mallory.cert.pem")
        refused = self.sign(request, "participant", certificate)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("binding does not verify", refused.stderr + refused.stdout)
        self.assertFalse(os.path.exists(certificate))

    def test_der_encoder(self):
        """enrol.js's DER pieces against encodings computed here: lengths at the short/long form
        boundaries, OIDs, and r ‖ s → ECDSA-Sig-Value with leading zeros and high bits."""
        def der_int(value):
            body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")  # room for a sign bit
            while len(body) > 1 and body[0] == 0 and body[1] < 0x80:
                body = body[1:]
            return bytes([0x02, len(body)]) + body

        cases = {
            "r_high_s_low": (bytes([0x80]) + bytes(31), bytes(31) + bytes([1])),
            "r_leading_zeros": (bytes(2) + bytes([0x7f]) + bytes(29), bytes([0x00, 0x80]) + bytes([0xff]) * 30),
            "all_ff": (bytes([0xff]) * 32, bytes([0xff]) * 32),
            "zero": (bytes(32), bytes(32)),
        }
        results = fixtures.browser().execute_async("""
            const [cases, done] = arguments;
            import("/web/participant/enrol.js").then((m) => { try {
              const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
              const out = { sig: {}, len: {}, oid: {} };
              for (const [name, rs] of Object.entries(cases)) {
                out.sig[name] = hex(m.ecdsaP1363ToDer(Uint8Array.from(rs.match(/../g).map((h) => parseInt(h, 16)))));
              }
              for (const n of [0, 127, 128, 255, 256, 65535, 65536]) out.len[n] = hex(m.tlv(4, new Uint8Array(n)).subarray(0, 6));
              for (const o of ["2.5.4.3", "1.2.840.113549.1.9.14", "1.2.840.10045.4.3.2", "1.3.6.1.4.1.32473.1.3"]) out.oid[o] = hex(m.oid(o));
              done(out);
            } catch (e) { done({ error: String(e) }); } }, (e) => done({ error: String(e) }));
        """, {name: (r + s).hex() for name, (r, s) in cases.items()})
        self.assertNotIn("error", results, results)
        for name, (r, s) in cases.items():
            body = der_int(int.from_bytes(r, "big")) + der_int(int.from_bytes(s, "big"))
            self.assertEqual(results["sig"][name], (bytes([0x30, len(body)]) + body).hex(), name)
        self.assertEqual(results["len"], {
            "0": "0400", "127": "047f00000000", "128": "048180000000", "255": "0481ff000000",
            "256": "048201000000", "65535": "0482ffff0000", "65536": "048301000000",
        })
        self.assertEqual(results["oid"], {
            "2.5.4.3": "0603550403",
            "1.2.840.113549.1.9.14": "06092a864886f70d01090e",
            "1.2.840.10045.4.3.2": "06082a8648ce3d040302",
            "1.3.6.1.4.1.32473.1.3": "060a2b0601040181fd590103",
        })

    def test_timing(self):
        result = self.browser_request("timing", repeat="20")
        times = sorted(result["elapsedMs"])
        print("\n  20 requests: median %.1f ms, min %.1f ms, max %.1f ms; libsodium.wasm load %.1f ms; %d bytes"
              % (times[len(times) // 2], times[0], times[-1], result["sodiumLoadMs"], result["requestBytes"]),
              file=sys.stderr, end="")
        self.assertEqual(len(times), 20)


if __name__ == "__main__":
    unittest.main()
