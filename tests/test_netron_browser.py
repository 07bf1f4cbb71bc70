"""Netron itself (the `netron` package's web app, served on loopback) shows the attachment's figures.

Opens a model, then our attachment, the way a user does (Netron's own file dialog), clicks a node and
reads its Metrics section. Needs Chromium (see ``chromium_browser`` in conftest.py) and the netron package.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from analyzer.cli import main

REPO = Path(__file__).resolve().parent.parent
# LeNet-5's first conv: 6 output channels of 28x28, each a 1x5x5 dot product.
LENET_CONV1_MACS = 6 * 28 * 28 * 1 * 5 * 5  # = 117,600


@pytest.fixture(scope="module")
def netron_url():
    netron = pytest.importorskip("netron", reason="the netron package is not installed (pip install '.[dev]')")
    root = Path(netron.__file__).parent

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_netron_shows_the_attachment_metrics_of_a_clicked_node(chromium_browser, netron_url, tmp_path):
    sample = REPO / "samples" / "lenet5.onnx"
    attachment = tmp_path / "lenet5.netron.json"
    assert main(["inspect", str(sample), "--format", "json", "-o", str(tmp_path / "r.json"),
                 "--netron", str(attachment)]) == 0
    page = chromium_browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        # Netron reports usage to the network when allowed: nothing leaves loopback here
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(netron_url) else route.abort())
        page.goto(f"{netron_url}/index.html")
        consent = page.get_by_text("Accept", exact=True)
        consent.wait_for(timeout=10_000)
        consent.click()
        page.set_input_files("#open-file-dialog", str(sample))
        conv = page.locator('[id="node-name-/features/features.0/Conv"] .node-item-type')
        conv.wait_for(timeout=10_000)
        page.set_input_files("#open-file-dialog", str(attachment))
        page.wait_for_timeout(300)  # the attachment opens asynchronously and draws nothing
        conv.click()
        sidebar = page.locator("#sidebar")
        sidebar.get_by_text("METRICS", exact=False).wait_for(timeout=10_000)
        text = sidebar.inner_text()
        metrics = text[text.upper().index("METRICS"):]
        assert str(LENET_CONV1_MACS) in metrics
        assert "5x5 /1" in metrics  # its receptive field
        page.screenshot(path=str(tmp_path / "netron.png"))
    finally:
        page.close()
