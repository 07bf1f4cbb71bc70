"""analyzer bench: statistics on a tiny model, provider selection and the loud fall-back, bad input."""

from __future__ import annotations

import json
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer.cli import main
from analyzer.errors import AnalyzerError, OptionError
from analyzer.latency.bench import benchmark, render_markdown, render_table
from analyzer.latency.options import BenchOptions


def conv_chain(path, *, convs: int = 1, channels: int = 8, size: int = 16, seed: int = 0):
    """x[N, C, size, size] -> `convs` 3x3 Convs (pad 1, C -> C) -> Relu; batch symbolic ("N")."""
    rng = np.random.default_rng(seed)
    nodes, inits, current = [], [], "x"
    for i in range(convs):
        w = numpy_helper.from_array((rng.standard_normal((channels, channels, 3, 3)) * 0.1).astype(np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [current, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]))
        current = f"c{i}"
    nodes.append(helper.make_node("Relu", [current], ["y"], name="relu"))
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", channels, size, size])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    return path


@pytest.fixture
def tiny(tmp_path):
    return conv_chain(tmp_path / "tiny.onnx")


def test_bench_returns_sane_stats(tiny):
    result = benchmark(tiny, BenchOptions(provider="cpu", batch=4, iters=60, warmup=3))
    s = result.stats
    assert s.iterations == 60
    assert 0 < s.min <= s.median <= s.p90 <= s.p99 <= s.max < 1.0
    assert s.median_ci[0] <= s.median <= s.median_ci[1]
    assert s.min <= s.mean <= s.max and s.std >= 0
    assert s.throughput == pytest.approx(4 / s.median)
    assert result.batch == 4 and result.input_shapes == {"x": [4, 8, 16, 16]}
    assert result.provider == "CPUExecutionProvider" and not result.fell_back
    assert result.warmup_iterations == 3 and result.session_creation_s > 0
    assert result.machine["logical_cores"] >= 1 and result.machine["onnxruntime"]
    assert "median" in render_table(result) and "| iterations | 60 |" in render_markdown(result)


def test_bench_time_budget_bounds_the_run(tiny):
    start = time.perf_counter()
    result = benchmark(tiny, BenchOptions(provider="cpu", time_budget=0.3))
    elapsed = time.perf_counter() - start
    # warm-up and the timed loop are each cut after the budget (one iteration past it at most); on top
    # come session creation, which the result reports, and a first run and inputs, small for this model
    assert elapsed < 2 * (0.3 + result.stats.max) + result.session_creation_s + 1.0
    assert result.stats.iterations >= 1


def test_bench_io_binding_on_cpu(tiny):
    result = benchmark(tiny, BenchOptions(provider="cpu", iters=10, warmup=1, io_binding=True))
    assert result.io_binding and result.stats.iterations == 10


def test_bench_loads_npy_inputs(tiny, tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 8, 16, 16), np.float32))
    result = benchmark(tiny, BenchOptions(provider="cpu", iters=5, warmup=0, inputs_file=str(tmp_path / "x.npy")))
    assert result.input_shapes == {"x": [3, 8, 16, 16]} and result.batch == 3


@pytest.mark.parametrize(
    "options, message",
    [
        (BenchOptions(provider="cpu", iters=0), "^iters must be positive, got 0$"),
        (BenchOptions(provider="cpu", batch=-1), "^batch must be positive, got -1$"),
        (BenchOptions(provider="cpu", time_budget=0), "^time_budget must be positive, got 0$"),
        (BenchOptions(provider="tpu"), "unknown provider"),
        (BenchOptions(provider="cpu", threads=0), "^threads must be positive, got 0$"),
        (BenchOptions(provider="cpu", max_iters=0), "^max_iters must be positive, got 0$"),
        (BenchOptions(provider="cpu", warmup=-1), "^warmup must be zero or more, got -1$"),
        (BenchOptions(provider="cpu", dims={"N": 0}), "^dims N=0: a dimension must be positive$"),
    ],
)
def test_bench_rejects_bad_options_naming_the_parameter(tiny, options, message):
    with pytest.raises(AnalyzerError, match=message):
        benchmark(tiny, options)


def test_session_threads_error_names_the_parameter(tiny):
    from analyzer.latency.runtime import create_session

    with pytest.raises(OptionError, match="^threads must be positive, got 0$") as caught:
        create_session(str(tiny), provider="cpu", threads=0)
    assert caught.value.option == "threads"


def test_warmup_runs_default_by_provider_and_never_below_one():
    assert BenchOptions().warmup_runs(on_cuda=False) == 10
    assert BenchOptions().warmup_runs(on_cuda=True) == 25
    assert BenchOptions(warmup=0).warmup_runs(on_cuda=False) == 1  # the first run is always a warm-up run
    assert BenchOptions(warmup=4).warmup_runs(on_cuda=True) == 4


def test_time_budget_defaults_to_3_seconds_unless_iters_given():
    assert BenchOptions().effective_time_budget == 3.0
    assert BenchOptions(time_budget=0.5).effective_time_budget == 0.5
    assert BenchOptions(iters=7).effective_time_budget is None


def test_milliseconds_formatter():
    from analyzer import units

    assert units.ms(0.0012345) == "1.234" and units.ms(2.5) == "2500.000" and units.ms(0) == "0.000"


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_provider_cuda_fails_loudly_without_gpu(tiny, capsys):
    import onnxruntime as ort

    code, out, err = _cli(capsys, "bench", str(tiny), "--provider", "cuda", "--iters", "2")
    probe = ort.InferenceSession(str(tiny), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    if probe.get_providers()[0] == "CUDAExecutionProvider":
        pytest.skip("a usable GPU is present: no fall-back to test")
    assert code == 2
    assert err.count("\n") == 1 and "fell back to CPUExecutionProvider" in err


def test_cli_provider_auto_says_the_fallback(tiny, capsys):
    import onnxruntime as ort

    code, out, err = _cli(capsys, "bench", str(tiny), "--iters", "3", "--format", "json")
    assert code == 0
    report = json.loads(out)
    if "CUDAExecutionProvider" in ort.get_available_providers() and report["provider"] != "CUDAExecutionProvider":
        assert report["fell_back"] is True
        assert "WARNING" in err and "fell back" in err
    assert report["stats"]["iterations"] == 3
    assert report["stats"]["ci_method"] == "order statistic (binomial)"


def test_cli_json_to_file_and_markdown(tiny, tmp_path, capsys):
    target = tmp_path / "bench.json"
    code, out, err = _cli(capsys, "bench", str(tiny), "--provider", "cpu", "--iters", "4", "--format", "json",
                          "-o", str(target), "--dim", "N=2")
    assert code == 0 and out == ""
    data = json.loads(target.read_text())
    assert data["input_shapes"] == {"x": [2, 8, 16, 16]}
    for key in ("mean_s", "median_s", "p90_s", "p99_s", "min_s", "std_s", "throughput_per_s", "median_ci_s"):
        assert key in data["stats"]
    assert {"provider", "threads", "machine", "session_creation_s"} <= set(data)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--provider", "tpu"], "unknown provider 'tpu'; choose one of auto, cuda, cpu"),
        (["--iters", "0"], "--iters must be positive, got 0"),
        (["--warmup", "-1"], "--warmup must be zero or more, got -1"),
        (["--time", "-2"], "--time must be positive, got -2.0"),
        (["--batch", "0"], "--batch must be positive, got 0"),
        (["--max-iters", "0"], "--max-iters must be positive, got 0"),
        (["--threads", "0"], "--threads must be positive, got 0"),
    ],
)
def test_cli_bad_counts_exit_2_with_one_line(tiny, capsys, extra, message):
    """The library names Python parameters; the command line still names its flags."""
    code, out, err = _cli(capsys, "bench", str(tiny), *extra)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err == f"analyzer bench: error: {message}\n"


def test_cli_defaults_and_help_come_from_the_options(capsys):
    from analyzer.cli import build_parser

    args = build_parser().parse_args(["bench", "m.onnx"])
    assert (args.provider, args.max_iters, args.cudnn_conv_algo_search, args.seed) == ("auto", 10_000, "EXHAUSTIVE", 0)
    assert args.warmup is None and args.time is None and args.iters is None
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("(default auto)", "(default 10 on CPU, 25 on CUDA", "timed loop (default 3)",
                   "(default 10000)", "(default EXHAUSTIVE)"):
        assert phrase in text


def test_cli_unloadable_model_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    code, out, err = _cli(capsys, "bench", str(bad), "--provider", "cpu")
    assert code == 2 and err.count("\n") == 1 and "onnxruntime cannot load bad.onnx" in err


def test_cli_mismatched_inputs_file(tiny, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.ones((1, 3, 16, 16), np.float32))
    code, out, err = _cli(capsys, "bench", str(tiny), "--provider", "cpu", "--inputs", str(tmp_path / "wrong.npy"))
    assert code == 2 and err.count("\n") == 1 and "expects" in err
