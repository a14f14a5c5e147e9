"""Open a report in headless Chromium and say what a reader would see.

Chromium is driven through the DevTools protocol over a pipe
(--remote-debugging-pipe: JSON messages ending in NUL on file descriptors 3
and 4), so no websocket client or browser download is needed; Debian's
`chromium` package is enough. `check_page` waits until every figure has drawn,
collects console errors and uncaught exceptions, and can take a full-page PNG.
"""
from __future__ import annotations

import base64
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
from typing import Any

from bench.errors import ConfigError

__all__ = ["find_chromium", "check_page", "Rendered", "CHROMIUM_FLAGS"]

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--enable-unsafe-swiftshader", "--use-angle=swiftshader")  # WebGL on the CPU
WIDTH = 1400
HEIGHT = 900  # the first screen a reader sees

# Names of the figure containers that hold a drawn plotly plot (an <svg class="main-svg">).
_DRAWN_JS = """(() => {
  const figs = [...document.querySelectorAll('div.figure[data-figure]')];
  return {total: figs.length, ready: document.readyState,
          drawn: figs.filter(f => f.querySelector('.js-plotly-plot .main-svg'))
                     .map(f => f.dataset.figure)};
})()"""


# The verdict's text if the whole verdict box is on the first screen (scrolled to the top).
_FIRST_SCREEN_JS = f"""(() => {{
  window.scrollTo(0, 0);
  const v = document.getElementById('verdict');
  if (!v) return '';
  const r = v.getBoundingClientRect();
  return (r.top >= 0 && r.bottom <= {HEIGHT} && r.height > 0) ? v.innerText : '';
}})()"""


def find_chromium() -> str | None:
    """$HDF_BENCH_CHROMIUM, else chromium / chromium-browser / google-chrome on PATH."""
    env = os.environ.get("HDF_BENCH_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)


@dataclass
class Rendered:
    """What the browser showed: drawn figure names, errors, the page height and a PNG."""

    drawn: list[str]
    total: int  # figure containers on the page
    errors: list[str] = field(default_factory=list)
    height: int = 0
    png: bytes | None = None
    seconds: float = 0.0
    first_screen: str = ""  # the verdict's text when all of it lies within the first screen


class _Pipe:
    """One DevTools connection: send a command, wait for its reply, keep the events."""

    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.proc, self.w, self.r = proc, write_fd, read_fd
        self.buf, self.next_id = b"", 0
        self.events: list[dict[str, Any]] = []

    def _read_one(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (code {self.proc.poll()})")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_one(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read_one(deadline))


def _launch(executable: str, profile: str) -> _Pipe:
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    # Move the child's ends above 3/4 so dup2 onto 3 and 4 never hits them.
    child_in = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
    child_out = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(to_chrome_r)
    os.close(from_chrome_w)

    def fds_3_and_4() -> None:  # runs in the child before exec
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)

    # close_fds=False keeps 3 and 4; every other fd Python opens is close-on-exec (PEP 446).
    proc = subprocess.Popen(
        [executable, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
         "about:blank"], preexec_fn=fds_3_and_4, close_fds=False,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(child_in)
    os.close(child_out)
    return _Pipe(proc, to_chrome_w, from_chrome_r)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                     for a in p.get("args", [])))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
    return out


def check_page(path: str | Path, *, screenshot: bool = True, timeout: float = 60.0,
               executable: str | None = None) -> Rendered:
    """Load a local HTML file, wait until its figures stop changing, and report."""
    exe = executable or find_chromium()
    if exe is None:
        raise ConfigError("chromium not found: install it (apt-get install chromium) "
                          "or set HDF_BENCH_CHROMIUM")
    url = Path(path).resolve().as_uri()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hdf-bench-chromium-") as profile:
        cdp = _launch(exe, profile)
        try:
            target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            sid = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                cdp.send(f"{domain}.enable", session=sid)
            cdp.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT,
                     "deviceScaleFactor": 1, "mobile": False}, session=sid)
            cdp.send("Page.navigate", {"url": url}, session=sid)
            cdp.wait_event("Page.loadEventFired", timeout)
            state: dict[str, Any] = {"drawn": [], "total": -1}
            stable = 0
            # Done: all drawn and unchanged for 3 polls; given up: unchanged for 3 s.
            while time.monotonic() - t0 < timeout:
                time.sleep(0.2)
                now = cdp.send("Runtime.evaluate", {"expression": _DRAWN_JS,
                               "returnByValue": True}, session=sid)["result"]["value"]
                stable = stable + 1 if now == state else 0
                state = now
                done = now["ready"] == "complete" and len(now["drawn"]) == now["total"]
                if (done and stable >= 3) or stable >= 15:
                    break
            height = cdp.send("Runtime.evaluate", {"expression":
                              "document.documentElement.scrollHeight", "returnByValue": True},
                              session=sid)["result"]["value"]
            first = cdp.send("Runtime.evaluate", {"expression": _FIRST_SCREEN_JS,
                             "returnByValue": True}, session=sid)["result"].get("value") or ""
            png = None
            if screenshot:
                shot = cdp.send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}},
                    session=sid, timeout=timeout)
                png = base64.b64decode(shot["data"])
            return Rendered(drawn=state["drawn"], total=state["total"], errors=_errors(cdp.events),
                            height=height, png=png, seconds=time.monotonic() - t0,
                            first_screen=first)
        finally:
            try:
                cdp.send("Browser.close", timeout=5)
            except (RuntimeError, TimeoutError, OSError):
                pass
            try:
                cdp.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cdp.proc.kill()
                cdp.proc.wait()
            os.close(cdp.w)
            os.close(cdp.r)
