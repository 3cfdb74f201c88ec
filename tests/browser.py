"""Open a Snakemake report in headless Chromium and read back what the browser made of it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# Without the networking flags Chromium waits on services a closed network never answers.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")

# Evaluated in the report's own page once it has loaded: decodes every embedded image the report's <img> would
# show, parses every embedded HTML table, and records what the app rendered. The report keeps its results in
# the page's `results`.
PROBE = """(async () => {
  if (document.readyState !== "complete") await new Promise(done => addEventListener("load", done));
  const found = {};
  for (const [path, entry] of Object.entries(results)) {
    const record = {mime: entry.mime_type, caption: entry.caption};
    if (entry.mime_type.startsWith("image/")) {
      const image = new Image();
      image.src = entry.data_uri;
      try { await image.decode(); } catch (error) { record.error = String(error); }
      record.width = image.naturalWidth;
    } else if (entry.mime_type === "text/html") {
      const page = new DOMParser().parseFromString(await (await fetch(entry.data_uri)).text(), "text/html");
      record.tables = page.querySelectorAll("table").length;
      record.rows = [...page.querySelectorAll("table tbody tr th")].map(cell => cell.textContent);
    }
    found[path] = record;
  }
  const shown = [...document.querySelectorAll("img")].map(image => image.naturalWidth);
  return {results: found, page_images: shown, app: document.getElementById("app").innerText};
})()"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, process, send_fd, receive_fd):
        self.process, self.send_fd, self.receive_fd, self.buffer, self.next_id = process, send_fd, receive_fd, b"", 0

    def call(self, method, session=None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self.send_fd, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.receive_fd, 1 << 16)
                if not chunk:
                    raise AssertionError(f"chromium exited: {self.process.stderr.read()[-2000:]!r}")
                self.buffer += chunk
            raw, _, self.buffer = self.buffer.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]


def evaluate(page: Path, expression: str):
    """The value of ``expression`` (a promise is awaited) in ``page`` opened in headless Chromium."""
    to_browser, browser_in = os.pipe()
    browser_out, from_browser = os.pipe()

    def child_fds():  # Chromium reads commands on fd 3 and answers on fd 4; fresh copies first, as either may be 3
        reads, writes = os.dup(to_browser), os.dup(from_browser)
        os.dup2(reads, 3)
        os.dup2(writes, 4)

    # Chromium's helper processes may still be writing to the profile as it closes.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen([chromium(), *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                    "about:blank"], preexec_fn=child_fds, close_fds=False,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_browser)
        os.close(from_browser)
        tools = _DevTools(process, browser_in, browser_out)
        try:
            target = tools.call("Target.createTarget", url="about:blank")["targetId"]
            session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            # navigate answers once the page's document is committed, so the expression runs in it, not in about:blank
            tools.call("Page.navigate", session, url=page.resolve().as_uri())
            result = tools.call("Runtime.evaluate", session, expression=expression, awaitPromise=True,
                                returnByValue=True)
            if "exceptionDetails" in result:
                raise AssertionError(f"in the page: {result['exceptionDetails']}")
            return result["result"]["value"]
        finally:
            try:
                tools.call("Browser.close")
                process.wait(timeout=60)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
            os.close(browser_in)
            os.close(browser_out)


def probe(report: Path) -> dict:
    """What Chromium decoded and rendered: {results: {path: record}, page_images: [width], app: text}."""
    return evaluate(report, PROBE)

