"""``optimize --auto``: calibration sets, the budgeted error, candidates, layer models and their timing
table, and the search's decisions (timings replaced by fixed values where a decision is under test, so
the outcome does not depend on the machine's load)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from analyzer.cli import main
from model_builders import make_model
from passes.auto import AutoOptions, ImageOptions, auto_optimize
from passes.auto import layers as layer_timing
from passes.auto.calibration import RANDOM_NOTE, from_arrays, from_images, random_runs
from passes.auto.candidates import candidates_for
from passes.auto.errors import centered_error, output_error

FAST = {"layer_seconds": 0.05, "end_to_end_seconds": 0.3, "samples": 2}


def _low_rank_conv(name, x, out, cin, cout, k, rank, seed):
    """A conv whose kernel has Tucker ranks ``rank`` on both channel modes: a rank-``rank`` bottleneck is exact."""
    rng = np.random.default_rng(seed)
    core = rng.standard_normal((rank, rank, k, k))
    u_out, u_in = rng.standard_normal((cout, rank)), rng.standard_normal((cin, rank))
    w = np.einsum("or,rskl,is->oikl", u_out, core, u_in) / np.sqrt(cin * k * k * rank)
    node = helper.make_node("Conv", [x, f"{name}.w"], [out], name=name, kernel_shape=[k, k], pads=[k // 2] * 4)
    return node, numpy_helper.from_array(w.astype(np.float32), f"{name}.w")


def two_conv_model(path, *, cin=16, mid=32, hw=24, rank=4):
    c1, w1 = _low_rank_conv("conv1", "x", "c1", cin, mid, 5, rank, 1)
    relu = helper.make_node("Relu", ["c1"], ["r1"], name="relu")
    c2, w2 = _low_rank_conv("conv2", "r1", "c2", mid, mid, 3, rank, 2)
    gap = helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap")
    flat = helper.make_node("Flatten", ["g"], ["y"], name="flat")
    model = make_model([c1, relu, c2, gap, flat], [("x", ["N", cin, hw, hw])], [("y", ["N", mid])], [w1, w2])
    onnx.save(model, str(path))
    return path


def run(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [session.run(None, feed)[0] for feed in feeds]


# ---- the budgeted error ----

def test_output_error_by_hand():
    reference = [{"y": np.array([[3.0, 4.0]])}, {"y": np.array([[5.0, 4.0]])}]
    candidate = [{"y": np.array([[3.0, 4.0]])}, {"y": np.array([[5.0, 5.0]])}]
    # raw: ||(0, 0, 0, 1)|| / ||(3, 4, 5, 4)|| = 1 / sqrt(66)
    # centered: reference rows minus their mean (4, 4): (-1, 0), (1, 0) -> norm sqrt(2);
    # candidate rows minus (4, 4.5): (-1, -0.5), (1, 0.5); difference (0, -0.5), (0, 0.5) -> norm sqrt(0.5)
    assert centered_error(np.array([[3.0, 4.0], [5.0, 4.0]]), np.array([[3.0, 4.0], [5.0, 5.0]])) == pytest.approx(0.5)
    assert output_error(reference, candidate) == pytest.approx(max(1 / np.sqrt(66), 0.5))


def test_output_error_of_a_constant_output_counts_raw_only():
    reference = [{"y": np.array([[2.0]])}, {"y": np.array([[2.0]])}]
    candidate = [{"y": np.array([[2.0]])}, {"y": np.array([[2.2]])}]
    # no variation over the rows: centered is undefined; raw = 0.2 / sqrt(8)
    assert output_error(reference, candidate) == pytest.approx(0.2 / np.sqrt(8))


def test_output_error_of_non_finite_output_is_infinite():
    assert output_error([{"y": np.ones((2, 2))}], [{"y": np.array([[1.0, np.nan], [1.0, 1.0]])}]) == np.inf


# ---- calibration ----

class _Session:
    """The two calls the calibration readers make of an onnxruntime session."""

    def __init__(self, shape, name="x"):
        self.shape, self.name = shape, name

    def get_inputs(self):
        return [type("Arg", (), {"name": self.name, "shape": self.shape, "type": "tensor(float)"})()]


def test_arrays_split_into_runs_of_the_model_batch(tmp_path):
    path = tmp_path / "cal.npz"
    np.savez(path, x=np.arange(6 * 3, dtype=np.float64).reshape(6, 3))
    runs = from_arrays(str(path), _Session([2, 3]), None).runs
    assert [r["x"].shape for r in runs] == [(2, 3)] * 3 and runs[2]["x"][0, 0] == 12 and runs[0]["x"].dtype == np.float32
    # a symbolic batch bound to 3 splits in two; unbound, the file is one run
    assert len(from_arrays(str(path), _Session(["N", 3]), 3).runs) == 2
    assert len(from_arrays(str(path), _Session(["N", 3]), None).runs) == 1


def test_arrays_missing_an_input_is_named(tmp_path):
    path = tmp_path / "cal.npz"
    np.savez(path, other=np.zeros((1, 3)))
    with pytest.raises(Exception, match="no array for input"):
        from_arrays(str(path), _Session([1, 3]), None)


def test_images_resized_and_normalised_as_stated(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), (255, 0, 51)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("not an image")
    options = ImageOptions(mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    calibration = from_images(str(tmp_path), _Session(["N", 3, 6, 10]), options, None)
    assert [r["x"].shape for r in calibration.runs] == [(1, 3, 6, 10)] * 2
    first = calibration.runs[0]["x"][0]
    # (255/255 - 0.5) / 0.25 = 2, (0 - 0.5) / 0.5 = -1, (51/255 - 0.5) / 1 = -0.3
    assert np.allclose(first[:, 2, 4], [2.0, -1.0, -0.3], atol=1e-6)
    assert calibration.kind == "images" and "resize to 6x10" in calibration.preprocessing
    bgr = from_images(str(tmp_path), _Session(["N", 3, 6, 10]), ImageOptions(bgr=True), None)
    assert np.allclose(bgr.runs[0]["x"][0][:, 0, 0], [0.2, 0.0, 1.0], atol=1e-6)


def test_images_need_a_fixed_or_given_size(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(Exception, match="image-size|input-shape"):
        from_images(str(tmp_path), _Session(["N", 3, "H", "W"]), ImageOptions(), None)
    sized = from_images(str(tmp_path), _Session(["N", 3, "H", "W"]), ImageOptions(size=(5, 7)), None)
    assert sized.runs[0]["x"].shape == (1, 3, 5, 7)


def test_random_calibration_says_so(tmp_path):
    path = two_conv_model(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    calibration = random_runs(session, samples=3, seed=0, dims={}, batch=1, input_shapes={"": [1, 16, 24, 24]})
    assert len(calibration.runs) == 3 and calibration.describe()["note"] == RANDOM_NOTE


# ---- candidates, layer models, the timing table ----

def test_candidates_by_kernel():
    labels = [c.label for c in candidates_for((5, 5), 64)]
    assert labels[:2] == ["stack3x3 mid=64", "stack3x3 mid=32"] and "asymmetric rank_ratio=0.25" in labels
    assert [c.pass_name for c in candidates_for((1, 1), 8)] == ["bottleneck", "bottleneck"]
    assert not any(c.pass_name == "stack3x3" for c in candidates_for((3, 3), 8))
    assert candidates_for((3, 3), 8)[0].spec("a.b[0]") == r"bottleneck:rank_ratio=0.25,nodes=a\.b\[0\]"


def test_layer_model_reproduces_the_conv_in_the_model(tmp_path):
    import onnx_ir as ir

    path = two_conv_model(tmp_path / "m.onnx")
    model = ir.load(str(path))
    conv2 = next(n for n in model.graph if n.name == "conv2")
    x = np.random.default_rng(0).standard_normal((1, 32, 24, 24)).astype(np.float32)
    layer = layer_timing.layer_model(conv2, [1, 32, 24, 24], conv2.inputs[0].type, 17)
    got = layer_timing.run_layer(layer_timing.serialized(layer), [x])[0]["y"]
    w = numpy_helper.to_array(next(t for t in onnx.load(str(path)).graph.initializer if t.name == "conv2.w"))
    padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    by_hand = np.zeros((32, 24, 24))  # the 3x3 conv with padding 1 written out
    for i in range(3):
        for j in range(3):
            by_hand += np.einsum("oc,chw->ohw", w[:, :, i, j], padded[:, i:i + 24, j:j + 24])
    assert np.allclose(got[0], by_hand, atol=1e-4)


def test_timing_table_keys_ignore_names_and_values(tmp_path):
    import onnx_ir as ir

    def layer(name, seed, cout=8):
        x = ir.Value(name="in", shape=ir.Shape([1, 4, 6, 6]), type=ir.TensorType(ir.DataType.FLOAT))
        w = ir.Value(name="w", const_value=ir.tensor(np.random.default_rng(seed).standard_normal((cout, 4, 3, 3)).astype(np.float32)),
                     shape=ir.Shape([cout, 4, 3, 3]), type=ir.TensorType(ir.DataType.FLOAT))
        node = ir.node("Conv", [x, w], attributes={"kernel_shape": [3, 3]}, name=name)
        return layer_timing.layer_model(node, [1, 4, 6, 6], x.type, 17)

    table = layer_timing.LatencyTable.open(tmp_path, {"provider": "CPUExecutionProvider"})
    assert table.key(layer("a", 0), layer("a", 0)) == table.key(layer("b", 1), layer("c", 2))
    assert table.key(layer("a", 0), layer("a", 0)) != table.key(layer("a", 0), layer("a", 0, cout=16))
    other = layer_timing.LatencyTable.open(tmp_path, {"provider": "CUDAExecutionProvider"})
    assert other.key(layer("a", 0), layer("a", 0)) != table.key(layer("a", 0), layer("a", 0))
    timing = layer_timing.Timing(0.5, (0.4, 0.6), "faster", 0.001, 2.0, 1.0, 30, "2026-12-03T00:00:00Z")
    table.put("k", timing)
    table.save()
    again = layer_timing.LatencyTable.open(tmp_path, {"provider": "CPUExecutionProvider"})
    assert again.get("k") == timing and again.get("missing") is None and (again.hits, again.misses) == (1, 1)
    (tmp_path / layer_timing.TABLE_FILE).write_text("{ damaged")
    assert layer_timing.LatencyTable.open(tmp_path, {}).entries == {}


# ---- the search ----

def _fixed_timing(ratio, verdict):
    def time_pair(before, after, options, seconds, seed):
        return layer_timing.Timing(ratio, (ratio * 0.95, ratio * 1.05), verdict, 1e-6 if verdict != "no significant difference" else 0.5,
                                   2.0, 2.0 * ratio, 40)
    return time_pair


def test_auto_chooses_within_the_budget_and_writes_a_verified_model(tmp_path, monkeypatch):
    monkeypatch.setattr(layer_timing, "time_pair", _fixed_timing(0.5, "faster"))
    path = two_conv_model(tmp_path / "m.onnx")
    cal = tmp_path / "cal.npz"
    feeds = np.random.default_rng(7).standard_normal((4, 16, 24, 24)).astype(np.float32)
    np.savez(cal, x=feeds)
    out = tmp_path / "auto.onnx"
    result = auto_optimize(path, AutoOptions(max_error=0.01, inputs=str(cal), batch=1, cache_dir=str(tmp_path / "c"), **FAST),
                           output=out)
    assert result.chosen and result.end_to_end is not None and result.end_to_end.verdict == "faster"
    # the written model's error, measured here from the two files on the calibration inputs
    runs = [{"x": feeds[i:i + 1]} for i in range(4)]
    error = output_error([{"y": y} for y in run(path, runs)], [{"y": y} for y in run(out, runs)])
    assert error <= 0.01
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    assert {c.node for c in result.chosen} <= {"conv1", "conv2"}
    assert result.calibration["kind"] == "file" and result.calibration["runs"] == 4


def test_second_run_reads_the_timing_table(tmp_path, monkeypatch):
    path = two_conv_model(tmp_path / "m.onnx")
    options = AutoOptions(max_error=0.01, batch=1, cache_dir=str(tmp_path / "c"), **FAST)
    first = auto_optimize(path, options)

    def no_layer_runs(*args, **kwargs):
        raise AssertionError("the second search measured a layer again")

    monkeypatch.setattr(layer_timing, "run_layer", no_layer_runs)
    monkeypatch.setattr(layer_timing, "time_pair", no_layer_runs)
    second = auto_optimize(path, options)
    assert second.cache["layers_read_back"] == 2 and first.cache["layers_read_back"] == 0
    errors = {(c.node, c.label): c.output_error for layer in first.layers for c in layer.candidates}
    assert errors == {(c.node, c.label): c.output_error for layer in second.layers for c in layer.candidates}
    timed = sum(c.layer_ratio is not None for layer in first.layers for c in layer.candidates)
    assert timed > 0 and first.cache["misses"] == timed and first.cache["hits"] == 0
    assert second.cache["hits"] == timed and second.cache["misses"] == 0
    assert all(c.cached for layer in second.layers for c in layer.candidates if c.layer_ratio is not None)


def test_nothing_faster_leaves_the_model_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(layer_timing, "time_pair", _fixed_timing(1.1, "slower"))
    path = two_conv_model(tmp_path / "m.onnx")
    out = tmp_path / "auto.onnx"
    result = auto_optimize(path, AutoOptions(batch=1, use_cache=False, **FAST), output=out)
    assert not result.chosen and result.end_to_end is None
    assert result.outcome.startswith("no rewrite is faster on this provider")
    written = onnx.load(str(out))
    assert [n.op_type for n in written.graph.node] == ["Conv", "Relu", "Conv", "GlobalAveragePool", "Flatten"]
    feeds = [{"x": np.ones((1, 16, 24, 24), np.float32)}]
    assert np.array_equal(run(path, feeds)[0], run(out, feeds)[0])


def test_a_set_that_does_not_pay_end_to_end_is_dropped(tmp_path, monkeypatch):
    from analyzer.latency import compare as compare_module

    monkeypatch.setattr(layer_timing, "time_pair", _fixed_timing(0.5, "faster"))
    real_compare = compare_module.compare

    def never_faster(a, b, options=None, **kw):
        result = real_compare(a, b, options, **kw)
        result.verdict, result.ratio = "no significant difference", 1.0
        return result

    monkeypatch.setattr(compare_module, "compare", never_faster)
    path = two_conv_model(tmp_path / "m.onnx")
    result = auto_optimize(path, AutoOptions(max_error=0.01, batch=1, use_cache=False, max_attempts=2, **FAST))
    assert not result.chosen and len(result.attempts) >= 1
    assert all(a.verdict == "no significant difference" for a in result.attempts)
    assert "end-to-end" in result.outcome or "no set" in result.outcome or "no significant gain" in result.outcome


def test_zero_budget_takes_only_exact_rewrites(tmp_path, monkeypatch):
    monkeypatch.setattr(layer_timing, "time_pair", _fixed_timing(0.5, "faster"))
    path = two_conv_model(tmp_path / "m.onnx", rank=16)  # full rank at these sizes: no cheap exact factor
    result = auto_optimize(path, AutoOptions(max_error=0.0, batch=1, use_cache=False, **FAST))
    assert not result.chosen and "within max_error=0" in result.outcome and result.outcome.startswith("no rewrite is faster")


def test_cli_auto_json_and_option_checks(tmp_path, capsys):
    path = two_conv_model(tmp_path / "m.onnx")
    out = tmp_path / "auto.onnx"
    code = main(["optimize", str(path), "-o", str(out), "--auto", "--batch", "1", "--layer-time", "0.05", "--time", "0.3",
                 "--samples", "2", "--no-cache", "-f", "json", "-q"])
    assert code == 0 and out.exists()
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["schema"] == "analyzer.optimize.auto/1" and doc["calibration"]["kind"] == "random"
    assert RANDOM_NOTE in captured.err
    assert doc["max_error"] == 0.01
    for argv, message in ((["--pass", "fold-bn", "--auto"], "not both"), (["--pass", "fold-bn", "--max-error", "0.1"], "--auto only"),
                          ([], "--pass"), (["--auto", "--max-error", "-1"], "--max-error"),
                          (["--auto", "--images", str(tmp_path / "nowhere")], "--images")):
        assert main(["optimize", str(path), "-o", str(tmp_path / "x.onnx"), "-q", *argv]) == 2
        assert message in capsys.readouterr().err


# ---- reports ----

def test_table_and_html_read_the_document(tmp_path, monkeypatch):
    from html.parser import HTMLParser

    from analyzer.render.html_auto import render_auto
    from passes.auto.render import render_table, speedup_text

    monkeypatch.setattr(layer_timing, "time_pair", _fixed_timing(0.5, "faster"))
    path = two_conv_model(tmp_path / "m.onnx")
    result = auto_optimize(path, AutoOptions(max_error=0.01, batch=1, use_cache=False, **FAST))
    doc = json.loads(json.dumps(result.to_dict(), default=str))  # what --format json prints, read back
    table = render_table(doc)
    assert RANDOM_NOTE in table and result.outcome in table
    assert "2.00x [1.90, 2.11]" in table  # layer ratio 0.5 with CI [0.475, 0.525], as speed-ups
    assert speedup_text(0.25, (0.2, 0.5)) == "4.00x [2.00, 5.00]"
    page = render_auto(doc)

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth = {"svg": 0, "table": 0}
            self.chosen = 0

        def handle_starttag(self, tag, attrs):
            self.depth[tag] = self.depth.get(tag, 0) + 1
            self.chosen += any(k == "class" and "point chosen" in (v or "") for k, v in attrs)

        def handle_endtag(self, tag):
            self.depth[tag] = self.depth.get(tag, 0) - 1

    tags = Tags()
    tags.feed(page)
    assert tags.depth["svg"] == 0 and tags.depth["table"] == 0
    assert tags.chosen == (1 if result.chosen else 0)
    assert "budget" in page and "http://" not in page.replace("http://www.w3.org", "")


def test_html_escapes_names_and_plots_nothing_when_nothing_was_measured():
    from analyzer.render.html_auto import render_auto

    doc = {"input": "<m&.onnx>", "output": None, "outcome": "no rewrite is faster on this provider", "reason": None,
           "max_error": 0.01, "provider": "CPUExecutionProvider", "requested_provider": "cpu", "machine": {},
           "calibration": {"kind": "file", "source": "c.npz", "runs": 1, "shapes": {"x": [1, 3]}, "preprocessing": None,
                           "note": None},
           "baseline_ms": 1.0, "before": None, "after": None, "chosen": [], "end_to_end": None, "attempts": [],
           "comparison": None, "layers": [{"node": "<conv&1>", "signature": "Conv", "input_shape": [1], "macs": 10,
                                           "chosen": None, "skipped": "grouped", "candidates": []}],
           "steps": [], "cache": {}, "notes": [], "timings": {}}
    page = render_auto(doc)
    assert "&lt;conv&amp;1&gt;" in page and "<conv&1>" not in page and "nothing to plot" in page
    assert "WARNING" not in page


def test_cli_images_with_stated_preprocessing(tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(layer_timing, "time_pair", _fixed_timing(1.2, "slower"))
    path = two_conv_model(tmp_path / "m.onnx", cin=3)
    images = tmp_path / "photos"
    images.mkdir()
    for i, colour in enumerate([(200, 10, 30), (5, 250, 90), (128, 128, 0)]):
        Image.new("RGB", (50, 40), colour).save(images / f"{i}.png")
    out = tmp_path / "auto.onnx"
    code = main(["optimize", str(path), "-o", str(out), "--auto", "--images", str(images), "--image-mean", "0.5,0.5,0.5",
                 "--image-std", "0.25,0.25,0.25", "--image-bgr", "--batch", "1", "--no-cache", "-f", "json", "-q",
                 "--layer-time", "0.05", "--time", "0.3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    calibration = doc["calibration"]
    assert calibration["kind"] == "images" and calibration["runs"] == 3 and calibration["note"] is None
    assert "resize to 24x24" in calibration["preprocessing"] and "BGR" in calibration["preprocessing"]
    assert "[0.5, 0.5, 0.5]" in calibration["preprocessing"] and "[0.25, 0.25, 0.25]" in calibration["preprocessing"]
    assert doc["outcome"].startswith("no rewrite is faster on this provider") and out.exists()
    assert "WARNING" not in captured.err
