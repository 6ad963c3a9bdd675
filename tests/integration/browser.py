"""Debian's chromium, headless, driven over its DevTools protocol (a websocket): open
a page, run a script in it and get its value, wait for the DOM, save a screenshot.
Started on a free loopback port with its own profile directory, stopped by its PID."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket

from harness import wait_until


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, directory):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=directory)
        exe = chromium_path()
        assert exe, "chromium is not installed (scripts/install-deps.sh installs it)"
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--user-data-dir=" + self.profile,
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1200,800",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        wait_until(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 30, "chromium to start")
        self.port = int(open(port_file).read().split()[0])
        pages = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port, timeout=10))
        page = next(p for p in pages if p.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.seq = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.seq += 1
        mine = self.seq
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def open(self, url):
        self.call("Page.navigate", url=url)
        wait_until(lambda: self.js("document.readyState") == "complete", 20, "the page to load")

    def js(self, expression):
        """The value of `expression` (awaited when it is a promise)."""
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if r.get("exceptionDetails"):
            raise AssertionError("script failed: %s" % r["exceptionDetails"].get("exception", r["exceptionDetails"]))
        return r.get("result", {}).get("value")

    def wait_js(self, expression, timeout=20, what=None):
        wait_until(lambda: self.js(expression), timeout, what or expression)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
