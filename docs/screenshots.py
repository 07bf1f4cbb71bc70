"""Regenerate the README's screenshots: docs/report.png (our HTML report) and docs/netron.png (Netron
showing our attachment's figures). Both use samples/inception_naive.onnx with its 5x5 branch selected.

    .venv/bin/python docs/screenshots.py

Needs what the browser tests need: Playwright, a Chromium (ANALYZER_CHROMIUM or chromium on PATH) and
the netron package (the `dev` extra).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLE = REPO / "samples" / "inception_naive.onnx"
SELECTED = "/branch5/branch5.0/Conv"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def chromium() -> str:
    found = os.environ.get("ANALYZER_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if not found:
        sys.exit("no Chromium found: set ANALYZER_CHROMIUM or install chromium")
    return found


def report_shot(browser, work: Path) -> None:
    from analyzer.cli import main

    page_file = work / "report.html"
    main(["inspect", str(SAMPLE), "--format", "html", "-o", str(page_file)])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(page_file.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    page.click(f'.node[data-node="{SELECTED}"]')
    page.locator("#graph").screenshot(path=str(REPO / "docs" / "report.png"))
    page.close()


def netron_shot(browser, work: Path) -> None:
    import netron

    from analyzer.cli import main

    attachment = work / "inception_naive.netron.json"
    main(["inspect", str(SAMPLE), "--format", "json", "-o", str(work / "r.json"), "--netron", str(attachment)])

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(Path(netron.__file__).parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    page = browser.new_page(viewport={"width": 1100, "height": 1150})
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
    page.goto(url + "/index.html")
    page.get_by_text("Accept", exact=True).click()
    page.set_input_files("#open-file-dialog", str(SAMPLE))
    conv = page.locator(f'[id="node-name-{SELECTED}"] .node-item-type')
    conv.wait_for()
    page.set_input_files("#open-file-dialog", str(attachment))
    page.wait_for_timeout(300)
    conv.click()
    page.wait_for_timeout(500)
    # the graph beside the lower half of the sidebar: metadata and our Metrics
    page.screenshot(path=str(REPO / "docs" / "netron.png"), clip={"x": 70, "y": 395, "width": 1030, "height": 615})
    page.close()
    server.shutdown()


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        report_shot(browser, Path(tmp))
        netron_shot(browser, Path(tmp))
        browser.close()
    for name in ("report.png", "netron.png"):
        print(f"docs/{name}: {(REPO / 'docs' / name).stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
