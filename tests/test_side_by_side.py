"""``analyzer table`` and ``analyzer zoo --table``: one row per model, every figure the per-model report's,
depth and receptive field as the papers give them, latency timed in turn with CIs, the charts in Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analyzer.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
THREE = [str(SAMPLES / n) for n in ("lenet5.onnx", "mnist_cnn.onnx", "inception_naive.onnx")]


def run_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name, options, depth, rf", [
    ("lenet5", {}, 5, [16, 16]),                 # 2 conv + 3 fc; RF 5 -> 6 -> 14 -> 16 (5x5 convs, 2x2 pools)
    ("alexnet", {"lrn": False}, 8, [195, 195]),  # 5 conv + 3 fc; RF at pool5: 11, 19, 51, 67, 99, 131, 163, 195
    ("vgg16", {}, 16, [212, 212]),               # 13 conv + 3 fc; RF at pool5 212 (Araujo et al., Distill 2019)
    ("googlenet", {}, 22, None),  # "22 layers deep" (Szegedy et al. 2015): the longest path of weighted layers
    ("resnet50", {}, 50, None),   # the projection shortcuts run beside three convs, not after them
])
def test_depth_and_receptive_field_as_published(zoo_onnx, capsys, name, options, depth, rf):
    path = zoo_onnx(name, exporter="legacy", **options)
    doc = run_json(capsys, "table", str(path), "--format", "json")
    row = doc["rows"][0]
    assert row["depth"] == depth
    if rf is not None:
        assert row["receptive_field"] == rf, row["receptive_field_node"]


def test_an_unfollowed_receptive_field_is_unknown_not_an_earlier_layers(zoo_onnx, capsys):
    """The legacy exporter writes LRN as Shape/Reshape/Pad/AveragePool arithmetic that the receptive-field
    walk does not follow: the table says unknown at pool5 instead of showing conv1's 11x11."""
    doc = run_json(capsys, "table", str(zoo_onnx("alexnet", exporter="legacy")), "--format", "json")
    row = doc["rows"][0]
    assert row["receptive_field"] is None and row["receptive_field_node"].endswith("MaxPool")


def test_zoo_table_rows_equal_each_models_inspect_report(zoo_onnx, tmp_path, capsys):
    cache = tmp_path / "zoo"
    cache.mkdir()
    for name in ("alexnet", "resnet18"):  # already exported: only lenet5 is exported by the command itself
        shutil.copy(zoo_onnx(name, exporter="legacy"), cache / f"{name}.onnx")
    argv = ["zoo", "--table", "--models", "alexnet", "lenet5", "resnet18", "--cache-dir", str(cache), "--batch", "4"]
    doc = run_json(capsys, *argv, "--format", "json")
    assert [r["name"] for r in doc["rows"]] == ["alexnet", "lenet5", "resnet18"]
    assert (cache / "lenet5.onnx").is_file()
    for row in doc["rows"]:
        report = run_json(capsys, "inspect", str(cache / f"{row['name']}.onnx"), "--batch", "4", "--format", "json")
        totals = report["totals"]
        for key in ("params", "macs", "flops", "weight_bytes", "peak_memory_bytes"):
            assert row[key] == totals[key], (row["name"], key)
        assert row["training_memory_bytes"] == report["training_memory"]["total"]
        conv = sum(n["params"] for n in report["nodes"] if n["category"] == "conv")
        fc_macs = sum(n["macs"] for n in report["nodes"] if n["category"] == "fc")
        assert row["conv_params"] == conv and row["fc_macs"] == fc_macs
        assert row["conv_params"] + row["fc_params"] <= row["params"]
    assert doc["rows"][1]["params"] == 61_706  # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850
    capsys.readouterr()
    assert main([*argv, "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| model | params | MACs |") and len([ln for ln in lines if ln.startswith("| ")]) == 4
    # AlexNet as the paper has it (96-256-384-384-256, fc 9216-4096-4096-1000): 34,944 + 614,656 + 885,120 +
    # 1,327,488 + 884,992 + 37,752,832 + 16,781,312 + 4,097,000 = 62,378,344 params
    assert doc["rows"][0]["params"] == 62_378_344 and lines[2].startswith("| alexnet | 62.38M |")


def test_training_memory_curve_is_the_report_at_each_batch(zoo_onnx, capsys):
    path = str(zoo_onnx("lenet5", exporter="legacy"))
    doc = run_json(capsys, "table", path, "--device-memory", "1MiB", "--format", "json")
    row = doc["rows"][0]
    for batch in (1, 8, 64):
        report = run_json(capsys, "inspect", path, "--batch", str(batch), "--format", "json")
        assert row["training_memory_curve"][str(batch)] == report["training_memory"]["total"]
    # weights 246,824 B (61,706 float32) + as many gradients; 60,008 B of activations a sample:
    # (1,048,576 - 493,648) / 60,008 = 9.2 -> batch 9 fits
    assert row["largest_batch"] == 9


def test_latency_is_timed_in_turn_with_confidence_intervals(capsys):
    doc = run_json(capsys, "table", *THREE, "--latency", "--time", "0.3", "--provider", "cpu", "--threads", "1",
                   "--format", "json")
    for row in doc["rows"]:
        latency = row["latency"]
        assert latency["iterations"] > 0 and latency["provider"] == "CPUExecutionProvider"
        assert latency["ci_s"][0] <= latency["median_s"] <= latency["ci_s"][1]
    assert doc["latency_settings"]["seconds_per_model"] == 0.3 and "in turn" in doc["latency_settings"]["method"]
    assert doc["fits_r2"]["macs"] is not None and doc["fits_r2"]["params"] is not None
    # the naive Inception module does 854M MACs, LeNet-5 0.4M: its median is the larger by far
    medians = {r["name"]: r["latency"]["median_s"] for r in doc["rows"]}
    assert medians["inception_naive"] > 10 * medians["lenet5"]


@pytest.mark.parametrize("argv, message", [
    (["--accuracy", "vgg16=71.6"], "'vgg16' is not one of the models"),
    (["--accuracy", "lenet5"], "expected NAME=VALUE"),
    (["--device-memory", "lots"], "expected a size"),
    (["--time", "3"], "go with --latency"),
    (["-o", str(SAMPLES / "lenet5.onnx")], "refusing to overwrite"),
])
def test_bad_options_are_one_line(capsys, argv, message):
    capsys.readouterr()
    assert main(["table", *THREE, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_csv_has_one_row_per_model_with_exact_integers(capsys):
    capsys.readouterr()
    assert main(["table", *THREE, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("name,params,macs,flops") and len(lines) == 4
    assert lines[1].startswith("lenet5,61706,416520,")


def test_charts_draw_one_mark_per_model_in_chromium(chromium_browser, tmp_path, capsys):
    page_path = tmp_path / "table.html"
    assert main(["table", *THREE, "--latency", "--time", "0.2", "--provider", "cpu", "--accuracy", "lenet5=99.0",
                 "--accuracy", "mnist_cnn=98.5", "--accuracy", "inception_naive=70", "--device-memory", "16MiB",
                 "--format", "html", "-o", str(page_path)]) == 0
    page = chromium_browser.new_page(viewport={"width": 1300, "height": 1000})
    try:
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri())
        for chart in ("bubble", "memory", "latency-macs", "latency-params"):
            marks = page.locator(f"#{chart} .mark")
            assert marks.count() == 3, chart
            assert sorted(marks.nth(i).get_attribute("data-model") for i in range(3)) == [
                "inception_naive", "lenet5", "mnist_cnn"]
            box = page.locator(f"#{chart}").bounding_box()
            assert box and box["width"] > 300 and box["height"] > 200
        assert "R² =" in page.locator("#latency-macs").locator("xpath=..").inner_text()
        # bubble area follows params: the Inception module's bubble is the largest
        radii = {page.locator(f'#bubble .mark[data-model="{n}"]').get_attribute("data-model"):
                 float(page.locator(f'#bubble .mark[data-model="{n}"]').get_attribute("r"))
                 for n in ("lenet5", "mnist_cnn", "inception_naive")}
        assert max(radii, key=radii.get) == "inception_naive"
        assert page.locator("#memory .device").count() == 1 and page.locator("#memory .fit").count() >= 1
        assert page.locator("table tbody tr").count() == 3 and not errors
        page.screenshot(path=str(tmp_path / "table.png"), full_page=True)
    finally:
        page.close()
