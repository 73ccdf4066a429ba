"""Load a page in headless Chromium and report what a reader would see, with the Python standard library
only: the Chrome DevTools Protocol over --remote-debugging-pipe (JSON messages, NUL-terminated, on file
descriptors 3 and 4 of the browser), so no websocket client and no network port are needed.

`load(path)` returns console errors, uncaught exceptions, requests that left the file, and what an inline
expression evaluated in the page returned (the figures' sizes, the tables' rows as text).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")

# what the test asks of the page once it has loaded: every figure decoded, its natural and drawn size,
# every table row as text (cells separated by tabs) and the whole text
PROBE = """(async () => {
  const images = [...document.images];
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  const box = e => e.getBoundingClientRect();
  return JSON.stringify({
    images: images.map(i => ({alt: i.alt, complete: i.complete, natural: [i.naturalWidth, i.naturalHeight],
                              shown: [box(i).width, box(i).height]})),
    svgs: [...document.querySelectorAll('svg')].map(s => ({shown: [box(s).width, box(s).height]})),
    rows: [...document.querySelectorAll('tr')].map(r => [...r.cells].map(c => c.innerText.trim()).join('\\t')),
    text: document.body.innerText,
    scripts: document.scripts.length,
  });
})()"""


def find_browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@dataclass
class Page:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    probe: dict = field(default_factory=dict)


class Browser:
    def __init__(self, binary: str):
        self.profile = tempfile.mkdtemp(prefix="planner-chromium-")
        to_browser, self._in = os.pipe()  # we write commands; the browser reads its fd 3
        self._out, from_browser = os.pipe()  # the browser writes its fd 4; we read

        def pipes():  # in the child: its fds 3 and 4, inheritable (first out of the way: a pipe may be fd 3 or 4 already)
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=pipes, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in)
        os.close(self._out)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                raise TimeoutError("no answer from the browser")
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                raise RuntimeError(f"the browser closed its pipe (exit {self.proc.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60.0) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._in, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            got = self._read(deadline)
            if got.get("id") == self._next:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return got["result"]
            self.events.append(got)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            got = self._read(deadline)
            if got.get("method") == method:
                return got
            self.events.append(got)


def load(path: Path, binary: str) -> Page:
    """Open `path` (a local file) in a fresh headless browser and probe it after its load event."""
    browser = Browser(binary)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.events.clear()  # what about:blank did before we watched is not the page's
        url = Path(path).resolve().as_uri()
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired")
        result = browser.send("Runtime.evaluate", {"expression": PROBE, "awaitPromise": True, "returnByValue": True},
                              session=session)
        page = Page(probe=json.loads(result["result"]["value"]))
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                page.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                page.console_errors.append(params["entry"].get("text", ""))
            elif method == "Runtime.exceptionThrown":
                page.exceptions.append(params["exceptionDetails"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                requested = params["request"]["url"]
                if requested != url and not requested.startswith("data:"):
                    page.requests.append(requested)
        return page
    finally:
        browser.close()
