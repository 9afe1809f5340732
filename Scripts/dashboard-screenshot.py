#!/usr/bin/env python3
"""Make docs/dashboard.png, the README's picture of the live dashboard.

Runs `veil simulate` with the dashboard on a free port (the federation of SIMULATE_ARGS: 20
rounds, 8 participants, central DP whose budget alert fires late, two participants dropping out
in the last round), opens the printed URL in headless Chromium 1400 px wide, waits until the
federation has finished and the page shows its last round, and saves the whole page as a PNG.
Standard library only; the browser is driven by python/tests/webdriver.py (chromedriver and
chromium from Debian's chromium and chromium-driver packages).

    python3 Scripts/dashboard-screenshot.py                 # writes docs/dashboard.png
    python3 Scripts/dashboard-screenshot.py --output /tmp/d.png --veil .build/release/veil
"""

import argparse
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
WEBDRIVER = os.path.join(ROOT, "python", "tests", "webdriver.py")
# The README's command (docs/README.md): keep the two in step.
SIMULATE_ARGS = [
    "simulate", "--rounds", "20", "--clients", "8", "--seed", "3",
    "--dp", "central", "--epsilon", "30", "--dp-budget", "33", "--dp-alert", "0.8",
    "--drop-participant", "3:20", "--drop-participant", "6:20",
    "--dashboard-port", "0", "--dashboard-hold", "120",
]
URL_LINE = re.compile(r"dashboard: (http://127\.0\.0\.1:\d+)/#token=([0-9A-Za-z_-]+)")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def load_webdriver():
    spec = importlib.util.spec_from_file_location("veil_webdriver", WEBDRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(origin, token):
    request = urllib.request.Request(origin + "/api/snapshot", headers={"Authorization": "Bearer " + token})
    with OPENER.open(request, timeout=10) as response:
        return json.loads(response.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--veil", default=os.environ.get("VEIL_BINARY") or os.path.join(ROOT, ".build", "debug", "veil"))
    parser.add_argument("--output", default=os.path.join(ROOT, "docs", "dashboard.png"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--max-height", type=int, default=3000,
                        help="crop the picture to this many pixels (the page is taller only with many alerts)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the federation")
    options = parser.parse_args()

    webdriver = load_webdriver()
    browser = webdriver.Browser(args=tuple(a for a in webdriver.DEFAULT_ARGS if not a.startswith("--window-size"))
                                + ("--window-size=%d,2000" % options.width, "--hide-scrollbars"))
    print("$ veil " + " ".join(SIMULATE_ARGS), file=sys.stderr)
    process = subprocess.Popen([options.veil] + SIMULATE_ARGS, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = {"stdout": bytearray(), "stderr": bytearray()}

    def read(name, stream):
        for chunk in iter(lambda: stream.read1(65536), b""):
            output[name] += chunk

    readers = [threading.Thread(target=read, args=(n, s), daemon=True)
               for n, s in (("stdout", process.stdout), ("stderr", process.stderr))]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + options.timeout
        while not (match := URL_LINE.search(bytes(output["stderr"]).decode("utf-8", "replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("veil simulate printed no dashboard URL:\n" + output["stderr"].decode("utf-8", "replace"))
            time.sleep(0.05)
        origin, token = match.groups()
        browser.navigate(origin + "/#token=" + token)

        # Finished: no current round and the snapshot unchanged over a second.
        previous = None
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the federation did not finish:\n" + output["stderr"].decode("utf-8", "replace"))
            current = snapshot(origin, token)
            comparable = dict(current, generated=None, coordinator=None)
            if current.get("current") is None and current["federation"]["rounds_completed"] > 0 and comparable == previous:
                break
            previous = comparable
            time.sleep(1.0)
        federation = current["federation"]
        rounds = "%d / %d" % (federation["rounds_completed"], federation["rounds_target"])
        browser.wait_until("document.querySelector('#overview dd[data-field=rounds]').textContent === %s && "
                           "document.getElementById('status').className === 'live'" % json.dumps(rounds), 30)
        time.sleep(1.0)
        errors = browser.execute("return window.veilErrors")
        if errors:
            raise SystemExit("the page reported errors: %s" % errors)
        height = min(options.max_height, browser.execute("return document.documentElement.scrollHeight"))
        browser.set_window_size(options.width, height)
        inner = browser.execute("return window.innerHeight")
        if inner < height:  # the window's height may count some browser frame: make the viewport the page's
            browser.set_window_size(options.width, 2 * height - inner)
        time.sleep(0.5)
        browser.screenshot(options.output)
        size = os.path.getsize(options.output)
        print("%s: %d bytes, %d × about %d px, %s rounds, %d alerts" % (
            options.output, size, options.width, height, rounds, len(current["alerts"])), file=sys.stderr)
    finally:
        browser.quit()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # ends --dashboard-hold
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
