"""analyzer profile: per-kernel rows joined with the analyzer's nodes, fusion and renaming, roofline."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer.cli import main
from analyzer.errors import OptionError
from analyzer.latency.options import BenchOptions, ProfileOptions
from analyzer.latency.profile import (
    _Graph,
    covered_nodes,
    match_kernel,
    parse_trace,
    profile,
    trace_bytes,
)

N, C_IN, C_OUT, HW, CLASSES = 2, 3, 8, 16, 10


def small_cnn(path):
    """Conv(3->8, 3x3, pad 1) + Relu + MaxPool 2 + Flatten + Gemm(8·8·8 -> 10) + Relu, batch symbolic."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((C_OUT, C_IN, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(C_OUT, np.float32), "b"),
        numpy_helper.from_array(rng.standard_normal((CLASSES, C_OUT * 8 * 8)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(CLASSES, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["conv_out"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("MaxPool", ["relu_out"], ["pool_out"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool_out"], ["flat_out"], name="flatten"),
        helper.make_node("Gemm", ["flat_out", "fc_w", "fc_b"], ["fc_out"], name="fc", transB=1),
        helper.make_node("Relu", ["fc_out"], ["y"], name="fc_relu"),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C_IN, HW, HW])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", CLASSES])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    return path


CONV_MACS = N * C_OUT * HW * HW * C_IN * 3 * 3
FC_MACS = N * CLASSES * C_OUT * 8 * 8
GIVEN = dict(peak_gflops=100.0, bandwidth_gbs=10.0)


@pytest.fixture
def cnn(tmp_path):
    return small_cnn(tmp_path / "cnn.onnx")


@pytest.mark.parametrize("level", ["all", "extended", "basic", "disabled"])
def test_rows_cover_every_compute_node(cnn, level):
    result = profile(cnn, ProfileOptions(bench=BenchOptions(provider="cpu", batch=N, iters=5), optimization=level, **GIVEN))
    covered = {name for row in result.rows for name in row.covers}
    assert {"conv", "fc"} <= covered
    assert sum(r.macs for r in result.rows) == CONV_MACS + FC_MACS
    assert sum(r.share for r in result.rows) == pytest.approx(1.0)
    assert result.runs == 5
    # every original node is either covered by a kernel or listed as not timed
    assert covered | {d["name"] for d in result.not_timed} == {"conv", "relu", "pool", "flatten", "fc", "fc_relu"}
    if level in ("extended", "all"):
        conv_row = next(r for r in result.rows if "conv" in r.covers)
        assert conv_row.covers == ["conv", "relu"] and conv_row.match == "fused"
    if level in ("basic", "disabled"):
        assert all(r.match == "name" and r.covers == [r.kernel] for r in result.rows)


def test_roofline_and_rates_by_hand(cnn):
    result = profile(cnn, ProfileOptions(bench=BenchOptions(provider="cpu", batch=N, iters=5), optimization="basic", **GIVEN))
    conv = next(r for r in result.rows if r.kernel == "conv")
    # bytes: x, w, b in and the output, fp32
    expected_bytes = 4 * (N * C_IN * HW * HW + C_OUT * C_IN * 9 + C_OUT + N * C_OUT * HW * HW)
    assert conv.macs == CONV_MACS and conv.bytes == expected_bytes
    assert conv.gmacs_per_s == pytest.approx(CONV_MACS / conv.time_s / 1e9)
    assert conv.gb_per_s == pytest.approx(expected_bytes / conv.time_s / 1e9)
    bound = max(conv.flops / (GIVEN["peak_gflops"] * 1e9), expected_bytes / (GIVEN["bandwidth_gbs"] * 1e9))
    assert conv.bound_s == pytest.approx(bound)
    assert conv.efficiency == pytest.approx(bound / conv.time_s)
    # slowest per MAC first; kernels without MACs after
    mac_rows = [r for r in result.rows if r.macs]
    assert result.rows[: len(mac_rows)] == mac_rows
    assert [r.gmacs_per_s for r in mac_rows] == sorted(r.gmacs_per_s for r in mac_rows)


def test_trace_file_is_removed(cnn, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    profile(cnn, ProfileOptions(bench=BenchOptions(provider="cpu", iters=2), **GIVEN))
    assert list(scratch.iterdir()) == []


def _graph(nodes):
    """_Graph from (name, op, inputs, outputs) tuples."""
    ops = {n: op for n, op, _, _ in nodes}
    ins = {n: list(i) for n, _, i, _ in nodes}
    outs = {n: list(o) for n, _, _, o in nodes}
    producer = {t: n for n, _, _, o in nodes for t in o}
    tensors = {t for _, _, i, o in nodes for t in (*i, *o)}
    return _Graph(ops, ins, outs, producer, tensors)


ORIGINAL = _graph([("conv1", "Conv", ["x", "w"], ["c"]), ("relu1", "Relu", ["c"], ["r"]), ("fc", "Gemm", ["r", "v"], ["y"])])


@pytest.mark.parametrize(
    "optimized, kernel, op, kind, covers",
    [
        # extended level: Conv+Relu -> FusedConv under the Conv's name, writing the Relu's output
        ([("conv1", "FusedConv", ["x", "w"], ["r"]), ("fc", "Gemm", ["r", "v"], ["y"])], "conv1", "FusedConv", "fused",
         ["conv1", "relu1"]),
        # all level: NCHWc conv named after the fused output tensor, then a reorder back to NCHW
        ([("r_nchwc", "Conv", ["x", "w2"], ["t0"]), ("ReorderOutput", "ReorderOutput", ["t0"], ["r"]),
          ("fc", "Gemm", ["r", "v"], ["y"])], "r_nchwc", "Conv", "renamed", ["relu1", "conv1"]),
        ([("r_nchwc", "Conv", ["x", "w2"], ["t0"]), ("ReorderOutput", "ReorderOutput", ["t0"], ["r"])],
         "ReorderOutput", "ReorderOutput", "inserted", []),
        ([("fc", "Gemm", ["r", "v"], ["y"])], "fc", "Gemm", "name", ["fc"]),
        ([("mystery", "Foo", ["q"], ["z"])], "mystery", "Foo", "inserted", []),
    ],
)
def test_match_kernel(optimized, kernel, op, kind, covers):
    opt = _graph(optimized)
    got_kind, seeds = match_kernel(kernel, op, ORIGINAL, opt)
    assert got_kind == kind
    assert sorted(covered_nodes(seeds, kernel, ORIGINAL, opt) if seeds else []) == sorted(covers)


def test_parse_trace_skips_warmup_runs():
    def node(name, ts, dur):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
                "args": {"op_name": "Conv", "input_type_shape": [{"float": [1, 3]}], "output_type_shape": [{"float": [2]}]}}

    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100}, node("conv", 10, 90),  # warm-up
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 30}, node("conv", 205, 20),
        {"cat": "Session", "name": "model_run", "ts": 300, "dur": 50}, node("conv", 305, 40),
    ]
    timings, runs, mean_run = parse_trace(events, skip_runs=1)
    assert runs == 2 and mean_run == (30 + 50) / 2
    assert timings["conv"].total_us == 20 + 40 and timings["conv"].calls == 2
    assert timings["conv"].bytes == 4 * (1 * 3 + 2)


def test_trace_bytes():
    assert trace_bytes([{"float": [2, 3]}, {"int64": [4]}, {"float16": []}]) == 4 * 6 + 8 * 4 + 2 * 1


def test_cli_profile_json(cnn, tmp_path, capsys):
    target = tmp_path / "p.json"
    code = main(["profile", str(cnn), "--provider", "cpu", "--iters", "3", "--format", "json", "-o", str(target),
                 "--peak-gflops", "50", "--bandwidth", "5"])
    assert code == 0
    data = json.loads(target.read_text())
    assert data["peaks"]["source"].startswith("given") and data["runs"] == 3
    assert any("conv" in r["covers"] for r in data["rows"])


def test_cli_profile_bad_input(cnn, tmp_path, capsys):
    assert main(["profile", str(cnn), "--provider", "cpu", "--peak-gflops", "-1"]) == 2
    assert main(["profile", str(tmp_path / "none.onnx"), "--provider", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err


def test_cli_profile_errors_spell_parameters_as_flags(cnn, capsys):
    argv = ["profile", str(cnn), "--provider", "cpu"]
    assert main(argv + ["--peak-gflops", "-1"]) == 2
    assert main(argv + ["--bandwidth", "0"]) == 2
    assert main(argv + ["--top", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "analyzer profile: error: --peak-gflops must be positive, got -1.0",
        "analyzer profile: error: --bandwidth must be positive, got 0.0",
        "analyzer profile: error: --top must be positive, got 0",
    ]


@pytest.mark.parametrize("name", ["peak_gflops", "bandwidth_gbs", "top"])
def test_options_errors_name_the_python_parameter(name):
    with pytest.raises(OptionError, match=f"^{name} must be positive, got 0$"):
        ProfileOptions(**{name: 0}).validate()


def test_profiled_runs_limit():
    assert ProfileOptions().max_runs == 20  # neither iters nor a time budget
    assert ProfileOptions(bench=BenchOptions(iters=7)).max_runs == 7
    assert ProfileOptions(bench=BenchOptions(time_budget=0.5, max_iters=300)).max_runs == 300


def test_warmup_runs_are_skipped_in_the_trace(cnn):
    """The first run (made to check the inputs) and the warm-up runs are in the trace, not in the figures."""
    result = profile(cnn, ProfileOptions(bench=BenchOptions(provider="cpu", iters=4, warmup=3), **GIVEN))
    assert result.warmup_runs == 3 and result.runs == 4


def test_time_budget_bounds_the_profiled_runs(cnn):
    result = profile(cnn, ProfileOptions(bench=BenchOptions(provider="cpu", time_budget=0.2, max_iters=50), **GIVEN))
    assert 1 <= result.runs <= 50


def test_zoo_model_rows_cover_every_compute_node(zoo_onnx):
    import analyzer

    path = zoo_onnx("mnist_cnn")
    compute = {n.name for n in analyzer.inspect(path, batch=4).nodes if n.macs}
    assert compute  # two convs and the classifier
    result = profile(path, ProfileOptions(bench=BenchOptions(provider="cpu", batch=4, iters=3), **GIVEN))
    covered = {name for row in result.rows for name in row.covers}
    assert compute <= covered
    assert not [d for d in result.not_timed if d["macs"]]


def test_measured_peaks_are_plausible():
    from analyzer.latency.profile import measure_peaks

    peaks = measure_peaks("cpu", threads=1, matmul_n=256, bandwidth_mib=16)
    # any CPU of the last decade: above 0.1 GFLOP/s and 0.1 GB/s single-threaded, below 10 TFLOP/s and 10 TB/s
    assert 0.1 < peaks.gflops < 1e4 and 0.1 < peaks.bandwidth_gbs < 1e4
    assert "measured" in peaks.source
