"""Open a Snakemake report in headless Chromium and read back what the browser made of it."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

# Without the networking flags Chromium waits on services a closed network never answers.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")

# Runs in the report's own page once it has loaded: decodes every embedded image the report's <img> would show,
# parses every embedded HTML table, and records what the app rendered. The report keeps its results in `results`.
PROBE = """<script>
window.addEventListener("load", async () => {
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
  const out = document.createElement("pre");
  out.id = "ipbench-probe";
  out.textContent = JSON.stringify({results: found, page_images: shown, app: document.getElementById("app").innerText});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(report: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        command = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=60000", *args,
                   report.resolve().as_uri()]
        # The timeout only guards against a hang; nothing asserts on how long the browser took.
        return subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout


def probe(report: Path, workdir: Path) -> dict:
    """What Chromium decoded and rendered: {results: {path: record}, page_images: [width], app: text}."""
    probed = workdir / "report.probe.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _run(probed, "--dump-dom")
    match = re.search(r'<pre id="ipbench-probe">(.*?)</pre>', dom, re.S)
    if match is None:
        raise AssertionError(f"the probe did not report: the page did not load ({dom[-2000:]!r})")
    return json.loads(html.unescape(match.group(1)))


def screenshot(report: Path, png: Path, size: str = "1400,1000") -> None:
    _run(report, f"--window-size={size}", f"--screenshot={png.resolve()}")
