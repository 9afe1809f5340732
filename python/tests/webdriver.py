"""A minimal W3C WebDriver client for headless Chromium, standard library only.

The browser tests (the dashboard page, the live federation) need a real browser but must run
offline on a plain Debian machine, so this talks to /usr/bin/chromedriver over HTTP with urllib
instead of depending on Selenium. Only the handful of commands the tests use are wrapped.

    with Browser() as browser:
        browser.navigate("file:///tmp/page.html")
        browser.wait_until("document.title !== ''")
        title = browser.execute("return document.title")
        browser.screenshot("/tmp/page.png")
"""

import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMEDRIVER = os.environ.get("VEIL_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM = os.environ.get("VEIL_CHROMIUM", "/usr/bin/chromium")
DEFAULT_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1400,2200",
)
# The W3C key under which a command's response names a web element.
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(RuntimeError):
    """A WebDriver command failed, or the driver could not be started."""


class MissingToolError(WebDriverError):
    """chromedriver or chromium is not installed; callers may skip rather than fail."""


class JavaScriptError(WebDriverError):
    """A script run by execute() threw; the message is the browser's."""


def free_port():
    """A TCP port nothing listens on right now (the OS picks it, so parallel runs do not clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_tools(chromedriver=CHROMEDRIVER, chromium=CHROMIUM):
    """Raise MissingToolError naming every missing executable, so the message says what to install."""
    missing = [path for path in (chromedriver, chromium) if not (os.path.isfile(path) and os.access(path, os.X_OK))]
    if missing:
        raise MissingToolError(
            "missing browser tools: %s (on Debian: apt-get install chromium chromium-driver)" % ", ".join(missing)
        )


class Browser:
    """One chromedriver process and one browser session; quit() ends both."""

    def __init__(self, chromedriver=CHROMEDRIVER, chromium=CHROMIUM, args=DEFAULT_ARGS,
                 startup_timeout=60.0, command_timeout=120.0):
        check_tools(chromedriver, chromium)
        self.command_timeout = command_timeout
        self.session_id = None
        self.process = None
        # The driver's own log goes to a file so a failed start can quote it without filling pipes.
        self._log = tempfile.NamedTemporaryFile(prefix="chromedriver-", suffix=".log", delete=False)
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        try:
            # A new process group, so quit() can end the browser children too if the driver leaves them.
            self.process = subprocess.Popen(
                [chromedriver, "--port=%d" % self.port],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            self._wait_for_driver(startup_timeout)
            capabilities = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": list(args)},
                "goog:loggingPrefs": {"browser": "ALL"},  # console messages, for console_log()
            }}}
            value = self._request("POST", "/session", capabilities, timeout=startup_timeout)
            self.session_id = value["sessionId"]
        except BaseException:
            self.quit()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.quit()

    # Commands

    def navigate(self, url):
        """Load url and wait for its load event (the WebDriver default page-load strategy)."""
        self._command("POST", "/url", {"url": url})

    def current_url(self):
        return self._command("GET", "/url")

    def execute(self, script, *args):
        """Run script as a function body (use `return`) and give back its JSON-able result."""
        return self._command("POST", "/execute/sync", {"script": script, "args": list(args)})

    def execute_async(self, script, *args):
        """Like execute, but the script ends by calling arguments[arguments.length - 1](result)."""
        return self._command("POST", "/execute/async", {"script": script, "args": list(args)})

    def wait_until(self, expression, timeout=20.0, interval=0.1):
        """Poll a JavaScript expression until it is truthy and return its value.

        A script error counts as "not yet" (the page may still be building what the expression
        reads); on timeout the last value or error is in the message, to say what was missing.
        """
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                value = self.execute("return (%s);" % expression)
                if value:
                    return value
                last = "last value %r" % (value,)
            except JavaScriptError as error:
                last = "last error %s" % error
            if time.monotonic() >= deadline:
                raise TimeoutError("%s still false after %.1f s (%s)" % (expression, timeout, last))
            time.sleep(interval)

    def find_element(self, css):
        """The first element matching a CSS selector (a WebDriver element reference)."""
        value = self._command("POST", "/element", {"using": "css selector", "value": css})
        return value[ELEMENT_KEY]

    def send_keys(self, css, text):
        """Type text into the element a CSS selector finds; for an <input type=file>, text is a
        local file's absolute path, which the browser then holds as the chosen file."""
        element = self.find_element(css)
        self._command("POST", "/element/%s/value" % element, {"text": text})

    def click(self, css):
        self._command("POST", "/element/%s/click" % self.find_element(css), {})

    def clear(self, css):
        """Empty an <input> or <textarea> (WebDriver Element Clear), e.g. before send_keys."""
        self._command("POST", "/element/%s/clear" % self.find_element(css), {})

    def select(self, css, value):
        """Choose the <option value=value> of the <select> a CSS selector finds, as a user would
        (by clicking the option, which fires the select's input and change events)."""
        self.click("%s option[value=\"%s\"]" % (css, value.replace("\\", "\\\\").replace('"', '\\"')))

    def fill(self, css, text):
        """Replace an input's value by typing: clear, then send_keys."""
        self.clear(css)
        self.send_keys(css, text)

    def console_log(self):
        """The browser console's entries since the last call (chromedriver's log type "browser"),
        as "LEVEL message" lines; [] when the driver does not offer the log."""
        try:
            entries = self._command("POST", "/se/log", {"type": "browser"}) or []
        except WebDriverError:
            return []
        return ["%s %s" % (entry.get("level"), entry.get("message")) for entry in entries]

    def set_window_size(self, width, height):
        """Resize the window, e.g. to the page's height before a screenshot of the whole page."""
        self._command("POST", "/window/rect", {"width": int(width), "height": int(height)})

    def screenshot(self, path):
        """Save the viewport as a PNG file and return its path."""
        png = base64.b64decode(self._command("GET", "/screenshot"))
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with open(path, "wb") as file:
            file.write(png)
        return path

    def quit(self):
        """Close the session and stop the driver; safe to call twice."""
        if self.session_id is not None:
            try:
                self._request("DELETE", "/session/%s" % self.session_id, timeout=30)
            except (WebDriverError, OSError):
                pass  # the driver may already be gone; the process group is ended below either way
            self.session_id = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            try:
                # Chromium processes the driver started are in its group; end any it left behind.
                os.killpg(self.process.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            self.process = None
        if self._log is not None:
            self._log.close()
            os.unlink(self._log.name)
            self._log = None

    # Transport

    def _wait_for_driver(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WebDriverError("chromedriver exited with %d:\n%s" % (self.process.returncode, self._log_tail()))
            try:
                if self._request("GET", "/status", timeout=2).get("ready"):
                    return
            except (WebDriverError, OSError):
                pass  # not listening yet
            time.sleep(0.1)
        raise WebDriverError("chromedriver not ready after %.0f s:\n%s" % (timeout, self._log_tail()))

    def _command(self, method, path, body=None):
        if self.session_id is None:
            raise WebDriverError("no browser session (quit() was called or the start failed)")
        return self._request(method, "/session/%s%s" % (self.session_id, path), body)

    def _request(self, method, path, body=None, timeout=None):
        """Send one command and return the response's "value", raising on a WebDriver error."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json; charset=utf-8")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.command_timeout) as response:
                payload = json.loads(response.read().decode("utf-8") or "{}")
        except urllib.error.HTTPError as error:
            # WebDriver errors come as 4xx/5xx with {"value": {"error", "message"}} in the body.
            try:
                value = json.loads(error.read().decode("utf-8")).get("value") or {}
            except ValueError:
                value = {}
            message = "%s %s: %s: %s" % (method, path, value.get("error", error.code), value.get("message", error.reason))
            if value.get("error") == "javascript error":
                raise JavaScriptError(message) from None
            raise WebDriverError(message) from None
        return payload.get("value")

    def _log_tail(self, limit=4000):
        try:
            with open(self._log.name, "r", errors="replace") as file:
                return file.read()[-limit:]
        except OSError:
            return "(no chromedriver log)"
