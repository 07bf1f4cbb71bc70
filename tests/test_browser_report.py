"""The HTML report in headless Chromium (Playwright, sync API): the graph has one element per node,
clicking a node shows its exact MACs, the metric selector recolours, zoom and pan move the view, the
table selects nodes; the optimize and compare pages draw both graphs. Skipped (with the reason) where
Playwright or Chromium is missing; see the ``chromium_browser`` fixture in conftest.py."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import analyzer
from analyzer.cli import main
from analyzer.render import render
from test_passes import conv_proto

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, errors


def fills(page) -> list[str]:
    return page.eval_on_selector_all("rect.node", "els => els.map(e => e.getAttribute('fill'))")


def transform(page, host: str = ".graph-host") -> str:
    return page.get_attribute(f"{host} g.viewport", "transform")


@pytest.fixture(params=["inception_naive sample", "resnet18 dynamo"])
def model_path(request, zoo_onnx) -> Path:
    if request.param == "resnet18 dynamo":
        return zoo_onnx("resnet18")
    return SAMPLES / "inception_naive.onnx"


def test_report_page_in_chromium(chromium_browser, model_path, tmp_path):
    report = analyzer.inspect(model_path)
    html_path = tmp_path / "report.html"
    html_path.write_text(render(report, "html"), encoding="utf-8")
    page, errors = open_page(chromium_browser, html_path)
    try:
        # one drawn element per report node, named after it
        assert page.locator("rect.node").count() == len(report.nodes)
        assert page.eval_on_selector_all("rect.node", "els => els.map(e => e.dataset.node)") == [n.name for n in report.nodes]

        # clicking a Conv node shows its full record, MACs exact with thousands separators
        first_conv = next(i for i, n in enumerate(report.nodes) if n.op_type == "Conv")
        page.locator(f'rect.node[data-index="{first_conv}"]').click()
        node = report.nodes[first_conv]
        assert page.text_content(".details [data-field=macs]") == f"{node.macs:,}"
        assert page.text_content(".details [data-field=name]") == node.name
        assert page.text_content(".details [data-field=params]") == f"{node.params:,}"
        assert page.get_attribute(f'rect.node[data-index="{first_conv}"]', "class") == "node selected"

        # a table row selects (and centres) its node; the biggest layer by MACs after sorting by MACs
        page.click("table.nodes th[data-key=macs]")
        biggest = max(range(len(report.nodes)), key=lambda i: (report.nodes[i].macs, -i))
        first_row = page.locator("table.nodes tbody tr").first
        assert first_row.get_attribute("data-index") == str(biggest)
        first_row.click()
        assert page.text_content(".details [data-field=macs]") == f"{report.nodes[biggest].macs:,}"
        page.locator(f'rect.node[data-index="{biggest}"]').click()  # centred, so visible and clickable
        assert "selected" in page.get_attribute(f'rect.node[data-index="{biggest}"]', "class")

        # the filter keeps the rows whose name, op or module holds the text
        page.fill(".table-host input.filter", "relu")
        expected = sum("relu" in f"{n.name}\n{n.op_type}\n{n.module or ''}".lower() for n in report.nodes)
        assert page.locator("table.nodes tbody tr").count() == min(expected, 300)

        # another metric recolours the nodes (receptive field: every node has one here, MACs only convs)
        by_macs = fills(page)
        page.select_option("#metric", "receptive_field")
        assert fills(page) != by_macs
        page.select_option("#metric", "macs")
        assert fills(page) == by_macs

        # the liveness chart marks the peak at the node the report names
        assert page.get_attribute("circle.peak", "data-node") == report.totals.peak_memory_node

        # wheel zooms, drag pans, fit resets
        page.locator(".graph-view").scroll_into_view_if_needed()
        box = page.locator(".graph-view svg").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        before = transform(page)
        page.mouse.move(cx, cy)
        page.mouse.wheel(0, -400)
        page.wait_for_function("t => document.querySelector('.graph-host g.viewport').getAttribute('transform') !== t",
                               arg=before, timeout=5_000)
        zoomed = transform(page)
        assert float(zoomed.split("scale(")[1].rstrip(")")) > float(before.split("scale(")[1].rstrip(")"))
        page.mouse.move(cx - 150, cy - 100)
        page.mouse.down()
        page.mouse.move(cx - 50, cy, steps=5)
        page.mouse.up()
        assert transform(page) != zoomed
        page.click(".graph-controls [data-action=fit]")
        assert transform(page) != zoomed

        page.locator(f'rect.node[data-index="{first_conv}"]').scroll_into_view_if_needed()
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        assert errors == []
    finally:
        page.close()


def test_optimize_page_draws_both_graphs(chromium_browser, tmp_path):
    source = SAMPLES / "inception_naive.onnx"
    out, html_path = tmp_path / "out.onnx", tmp_path / "optimize.html"
    # only the 5x5 branch is rewritten, so the 3x3 branch (the largest node left in B) is the same on both sides
    assert main(["optimize", str(source), "-o", str(out), "--pass", "bottleneck:form=reduce,rank_ratio=0.5,nodes=.*branch5.*",
                 "-f", "html", "--report", str(html_path), "-q"]) == 0
    before, after = analyzer.inspect(source), analyzer.inspect(out)
    page, errors = open_page(chromium_browser, html_path)
    try:
        assert page.locator('.graph-host[data-panel="0"] rect.node').count() == len(before.nodes)
        assert page.locator('.graph-host[data-panel="1"] rect.node').count() == len(after.nodes)
        assert len(after.nodes) > len(before.nodes)
        conv = next(i for i, n in enumerate(after.nodes) if n.op_type == "Conv")
        page.locator(f'.graph-host[data-panel="1"] rect.node[data-index="{conv}"]').click()
        assert page.text_content('.graph-host[data-panel="1"] .details [data-field=macs]') == f"{after.nodes[conv].macs:,}"
        # one colour scale for both sides: a node the pass left alone keeps its colour, although B's
        # largest MACs are A's second largest (per-graph scales would colour it differently)
        three = "/branch3/branch3.0/Conv"
        assert max(n.macs for n in after.nodes) == next(n.macs for n in before.nodes if n.name == three)
        assert max(n.macs for n in before.nodes) > max(n.macs for n in after.nodes)
        for metric in ("macs", "params"):
            page.select_option("#metric", metric)
            fill_a = page.get_attribute(f'.graph-host[data-panel="0"] rect.node[data-node="{three}"]', "fill")
            fill_b = page.get_attribute(f'.graph-host[data-panel="1"] rect.node[data-node="{three}"]', "fill")
            assert fill_a == fill_b, metric
        assert errors == []
        page.screenshot(path=str(tmp_path / "optimize.png"), full_page=True)
    finally:
        page.close()


def test_compare_page_draws_both_graphs_and_the_latency(chromium_browser, tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    onnx.save(conv_proto(cin=4, cout=8, k=5, hw=10), str(a))
    assert main(["optimize", str(a), "-o", str(b), "--pass", "separable:m=1", "-q"]) == 0
    html_path = tmp_path / "compare.html"
    assert main(["compare", str(a), str(b), "--provider", "cpu", "--iters", "30", "--rounds", "10", "--threads", "1",
                 "--allow-output-mismatch", "-f", "html", "-o", str(html_path)]) == 0
    page, errors = open_page(chromium_browser, html_path)
    try:
        assert page.locator('.graph-host[data-panel="0"] rect.node').count() == len(analyzer.inspect(a).nodes)
        assert page.locator('.graph-host[data-panel="1"] rect.node').count() == len(analyzer.inspect(b).nodes)
        assert page.locator(".latency-host svg.latency").count() == 1
        assert errors == []
    finally:
        page.close()
