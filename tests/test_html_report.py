"""The HTML pages as files: self-contained (no network), the embedded JSON is the report, one entry per
node; optimize and compare produce the before/after page with both graphs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest

import analyzer
from analyzer.cli import main
from analyzer.render import render
from analyzer.render.html import embedded_json
from test_passes import conv_proto

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DATA_BLOCK = re.compile(r'<script type="application/json" id="analyzer-data">(.*?)</script>', re.S)


def page_data(page: str) -> dict:
    found = DATA_BLOCK.findall(page)
    assert len(found) == 1
    return json.loads(found[0])


def assert_offline(page: str) -> None:
    """Nothing the browser would fetch: no external src/href, no <link>, no script src, no CSS url() or @import."""
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"<link\b|<script[^>]*\bsrc\s*=|@import|url\(\s*['\"]?(?:https?:)?//", page, re.I)
    assert "http://" not in page and "https://" not in page


@pytest.fixture(scope="module")
def inception():
    return analyzer.inspect(SAMPLES / "inception_naive.onnx")


def test_page_is_self_contained_and_embeds_the_report(inception):
    page = render(inception, "html")
    assert page.startswith("<!doctype html>")
    assert_offline(page)
    data = page_data(page)
    assert data["kind"] == "report"
    (panel,) = data["panels"]
    assert panel["report"] == json.loads(json.dumps(inception.to_dict()))
    assert len(panel["layout"]["nodes"]) == len(inception.nodes) == len(panel["report"]["nodes"])
    assert [t["kind"] for t in panel["layout"]["terminals"]] == ["input", "output"]
    # the page draws from these hosts; the summary is static HTML
    for marker in ('class="graph-host" data-panel="0"', 'class="charts-host" data-panel="0"', 'class="table-host" data-panel="0"',
                   '<select id="metric">', 'data-field="complete"', "854,196,224"):
        assert marker in page


def test_embedded_json_cannot_end_the_script_element(inception):
    import copy

    report = copy.deepcopy(inception)
    hostile = "</script><script>alert(1)</script><!-- & -->"
    report.nodes[0].name = hostile
    report.warnings.append(hostile)
    page = render(report, "html")
    assert page.count("</script>") == 2  # the data block's and the code's, nothing from the data
    data = page_data(page)
    assert data["panels"][0]["report"]["nodes"][0]["name"] == hostile
    assert data["panels"][0]["report"]["warnings"][-1] == hostile
    assert "<script>alert" not in page
    assert embedded_json({"a": "</b>&"}) == '{"a":"\\u003c/b\\u003e\\u0026"}'


def test_issues_are_shown(inception):
    import copy

    from analyzer.report import UnsupportedOp

    report = copy.deepcopy(inception)
    report.unsupported_ops.append(UnsupportedOp("MyOp", "custom", 2, ["n1", "n2"]))
    report.assumed_dims["batch"] = 1
    report.warnings.append("cost unknown for n1")
    page = render(report, "html")
    assert "incomplete" in page and 'id="unsupported-ops"' in page and "MyOp" in page
    assert 'id="assumed-dims"' in page and "batch=1" in page
    assert 'id="warnings"' in page and "cost unknown for n1" in page


def test_inspect_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["inspect", str(SAMPLES / "inception_naive.onnx"), "--format", "html", "-o", str(out)]) == 0
    data = page_data(out.read_text(encoding="utf-8"))
    assert len(data["panels"][0]["report"]["nodes"]) == 8
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.fixture
def conv_model(tmp_path):
    path = tmp_path / "in.onnx"
    onnx.save(conv_proto(cin=4, cout=8, k=5, hw=10), str(path))
    return path


def test_optimize_html_report_holds_both_graphs(conv_model, tmp_path, capsys):
    out, page_path = tmp_path / "out.onnx", tmp_path / "changes.html"
    code = main(["optimize", str(conv_model), "-o", str(out), "--pass", "bottleneck:rank=2", "-f", "html",
                 "--report", str(page_path), "-q"])
    assert code == 0 and out.is_file()
    assert capsys.readouterr().out == ""
    page = page_path.read_text(encoding="utf-8")
    assert_offline(page)
    data = page_data(page)
    assert data["kind"] == "optimize" and len(data["panels"]) == 2
    before, after = analyzer.inspect(conv_model), analyzer.inspect(out)
    assert [len(p["report"]["nodes"]) for p in data["panels"]] == [len(before.nodes), len(after.nodes)] == [1, 3]
    assert [len(p["layout"]["nodes"]) for p in data["panels"]] == [1, 3]
    assert data["panels"][1]["report"]["totals"]["macs"] == after.totals.macs
    assert 'data-pass="bottleneck"' in page and 'class="grid totals-delta"' in page
    assert f"{before.totals.macs:,}" in page and f"{after.totals.macs:,}" in page


def test_optimize_html_goes_to_stdout_without_report(conv_model, tmp_path, capsys):
    assert main(["optimize", str(conv_model), "-o", str(tmp_path / "o.onnx"), "--pass", "fold-bn", "-f", "html", "-q"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!doctype html>")
    assert len(page_data(page)["panels"]) == 1  # nothing changed: before is after, one graph


def test_optimize_failure_still_writes_the_report(conv_model, tmp_path, capsys):
    out, page_path = tmp_path / "out.onnx", tmp_path / "failed.html"
    code = main(["optimize", str(conv_model), "-o", str(out), "-q", "--pass", "separable:m=1,max_error=0.01",
                 "-f", "html", "--report", str(page_path)])
    assert code == 1 and not out.exists()
    page = page_path.read_text(encoding="utf-8")
    assert 'id="failure"' in page and "no output written" in page


def test_optimize_report_must_not_overwrite_a_model(conv_model, tmp_path, capsys):
    code = main(["optimize", str(conv_model), "-o", str(tmp_path / "o.onnx"), "--pass", "fold-bn", "-f", "html",
                 "--report", str(conv_model)])
    assert code == 2 and "--report" in capsys.readouterr().err


def test_compare_html_has_both_graphs_and_latency(conv_model, tmp_path, capsys):
    other = tmp_path / "b.onnx"
    assert main(["optimize", str(conv_model), "-o", str(other), "--pass", "bottleneck:rank=2", "-q"]) == 0
    page_path = tmp_path / "compare.html"
    code = main(["compare", str(conv_model), str(other), "--provider", "cpu", "--iters", "40", "--rounds", "10",
                 "--threads", "1", "--allow-output-mismatch", "-f", "html", "-o", str(page_path)])
    assert code == 0
    page = page_path.read_text(encoding="utf-8")
    assert_offline(page)
    data = page_data(page)
    assert data["kind"] == "compare"
    assert [len(p["report"]["nodes"]) for p in data["panels"]] == [1, 3]
    latency = data["latency"]
    assert latency["a"]["iterations"] == len(latency["a"]["samples_s"]) >= 40
    assert len(latency["b"]["block_medians_s"]) >= 10
    q1, q2, q3 = latency["a"]["quartiles_s"]
    assert q1 <= q2 <= q3
    assert 'data-field="verdict"' in page and "Mann-Whitney p" in page and 'class="latency-host"' in page


def test_compare_html_without_analysis_has_no_graphs(conv_model, tmp_path, capsys):
    code = main(["compare", str(conv_model), str(conv_model), "--provider", "cpu", "--iters", "10", "--rounds", "5",
                 "--threads", "1", "--no-analyze", "-f", "html"])
    assert code == 0
    page = capsys.readouterr().out
    assert page_data(page)["panels"] == [] and "--no-analyze" in page


def test_bench_and_profile_do_not_offer_html(conv_model, capsys):
    with pytest.raises(SystemExit):
        main(["bench", str(conv_model), "-f", "html"])
    with pytest.raises(SystemExit):
        main(["profile", str(conv_model), "-f", "html"])
