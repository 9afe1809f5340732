"""What the browser and CA tests share: the repository served read-only on loopback, one headless
Chromium per test module, the `veil` and `openssl` binaries, and Veil's certificate extensions.

A missing tool skips the test on a developer's machine and fails it where VEIL_REQUIRE_TOOLS=1
(`.ci/run`, which installs them).
"""

import atexit
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # webdriver.py is a sibling, whether run by discover or as python.tests.…
import webdriver  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
REQUIRE_TOOLS = os.environ.get("VEIL_REQUIRE_TOOLS") == "1"


def skip_or_fail(message):
    if REQUIRE_TOOLS:
        raise RuntimeError(message)
    raise unittest.SkipTest(message)


def veil_binary():
    path = os.path.abspath(os.environ.get("VEIL_BINARY") or os.path.join(ROOT, ".build", "debug", "veil"))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        skip_or_fail("no veil binary at %s (build it, or set VEIL_BINARY)" % path)
    return path


def openssl_binary():
    path = shutil.which("openssl")
    if path is None:
        skip_or_fail("openssl is not installed")
    return path


def run(*args, check=True, input=None, timeout=120):
    """Runs a command; text in and out unless `input` is bytes. Fails with its output."""
    result = subprocess.run(list(args), capture_output=True, text=input is None or isinstance(input, str),
                            input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError("%s exited with %d:\n%s%s" % (" ".join(args), result.returncode, result.stdout, result.stderr))
    return result


def extension_values(openssl, pem_path):
    """The OCTET STRING hex of each Veil extension (1.3.6.1.4.1.32473.1.n) in a certificate or a
    request, by OID."""
    values = {}
    lines = run(openssl, "asn1parse", "-in", pem_path).stdout.splitlines()
    for index, line in enumerate(lines):
        match = re.search(r"OBJECT\s+:(1\.3\.6\.1\.4\.1\.32473\.1\.\d)\s*$", line)
        if match:
            following = lines[index + 1]
            hexdump = re.search(r"OCTET STRING\s+\[HEX DUMP\]:([0-9A-F]+)", following)
            assert hexdump, following
            values[match.group(1)] = hexdump.group(1).lower()
    return values


class RepositoryHandler(http.server.SimpleHTTPRequestHandler):
    """The repository root, read-only, with the WebAssembly and module MIME types, nothing
    cached and nothing logged (a page's address may carry a token)."""

    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map, **{
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".html": "text/html",
        ".sha256": "text/plain",
    })

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=ROOT, **kwargs)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class ModuleFixtures:
    """One page server and one browser for a test module, started when first asked for (starting
    Chromium is the slow part); `close()` in the module's tearDownModule."""

    def __init__(self, handler=RepositoryHandler):
        self.handler = handler
        self._server = None
        self._browser = None
        self._browser_args = None

    def origin(self):
        """http://127.0.0.1:PORT, serving the repository root."""
        if self._server is None:
            self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
            self._server.daemon_threads = True
            threading.Thread(target=self._server.serve_forever, name="veil-test-pages", daemon=True).start()
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def browser(self, *extra_args):
        """The module's browser, started again when asked for with other arguments."""
        if self._browser is not None and self._browser_args != extra_args:
            self._browser.quit()
            self._browser = None
        if self._browser is None:
            try:
                self._browser = webdriver.Browser(args=webdriver.DEFAULT_ARGS + tuple(extra_args))
            except webdriver.MissingToolError as error:
                skip_or_fail(str(error))
            self._browser_args = extra_args
        return self._browser

    def close(self):
        if self._browser is not None:
            self._browser.quit()
            self._browser = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- processes: every one started is ended, whatever happens -------------------------------------

_processes = set()


def _end(process):
    """SIGTERM the process group, SIGKILL it if it lingers; safe to call twice."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)
    _processes.discard(process)


@atexit.register  # also when a run is interrupted between a start and its cleanup
def end_processes():
    """Ends every process started by `Process` and not yet ended (a test module's tearDown)."""
    for process in list(_processes):
        _end(process)


class Process:
    """One process in its own group, stdout and stderr to files in `folder` (read afterwards)."""

    def __init__(self, name, arguments, folder, cwd=None):
        self.name = name
        self.stdout_path = os.path.join(folder, name + ".stdout")
        self.stderr_path = os.path.join(folder, name + ".stderr")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                            start_new_session=True, cwd=cwd)
        _processes.add(self.process)

    def read(self, which):
        with open(self.stdout_path if which == "stdout" else self.stderr_path, "r", errors="replace") as file:
            return file.read()

    def stdout(self):
        return self.read("stdout")

    def stderr(self):
        return self.read("stderr")

    def tail(self, limit=2500):
        return "--- %s (exit %s) stdout:\n%s\n--- %s stderr:\n%s" % (
            self.name, self.process.poll(), self.stdout()[-limit:], self.name, self.stderr()[-limit:])

    def wait_for(self, pattern, which, timeout):
        """The first match of `pattern` in the process's stdout or stderr, once printed."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.read(which), re.MULTILINE)
            if match:
                return match
            if self.process.poll() is not None:
                raise AssertionError("%s exited before printing %r:\n%s" % (self.name, pattern, self.tail()))
            if time.monotonic() >= deadline:
                raise AssertionError("%s printed no %r within %.0f s:\n%s" % (self.name, pattern, timeout, self.tail()))
            time.sleep(0.02)

    def stop(self):
        _end(self.process)
        return self.process.returncode
