"""Speed and memory of `analyzer inspect`, against onnx-tool on the same files in the same run.

Targets: VGG-16 (a 528 MB single file): the analysis itself (after imports) under 0.1 s (issue 3).
Start-up budget (issue 13), VGG-16 and ResNet-50: `analyzer inspect --format json` as a whole process
at most 0.5 s, at least 2x faster than onnx-tool's whole process on the same file, at most 100 MB
peak RSS; the script prints each verdict and exits 1 when one fails, so that a dependency release
that slows start-up is noticed. Beside them: the bare interpreter and `python -c "import onnx"` (the
floor every command pays) and the versions that decide it. Analysis time linear in node count on
generated 5k/10k/20k-node graphs.

Whole-process runs are paired: analyzer, onnx-tool, analyzer, ... so that both see the same machine.

    python benchmarks/bench_inspect.py [--repeat 5] [--models vgg16 resnet50] [--no-onnx-tool] [--no-scaling]

Exports the zoo models with the legacy exporter into .cache/bench/ (needs the `export` extra);
onnx-tool is measured only when importable (`make bench` installs it into the venv).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CACHE = REPO / ".cache" / "bench"


def export_zoo(name: str) -> Path:
    import exporters

    return exporters.export_cached(name, CACHE)


def chain_model(blocks: int, path: Path) -> int:
    """A residual chain of `blocks` × (Conv 8@3x3 → Relu → Add): 3 nodes a block, 8x16x16 activations."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for b in range(blocks):
        w = f"w{b}"
        inits.append(numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32), w))
        nodes += [
            helper.make_node("Conv", [x, w], [f"c{b}"], name=f"conv{b}", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{b}"], [f"r{b}"], name=f"relu{b}"),
            helper.make_node("Add", [f"r{b}", x], [f"a{b}"], name=f"add{b}"),
        ]
        x = f"a{b}"
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", 1, ["N", 8, 16, 16])],
        [helper.make_tensor_value_info(x, 1, ["N", 8, 16, 16])], inits,
    )
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]), path)
    return len(nodes)


def time_in_process(fn, repeat: int) -> float:
    fn()  # warm caches (file pages, lazy imports)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def paired(commands: list[list[str]], repeat: int) -> list[float]:
    """Median wall seconds of each command, run in turn ``repeat`` times (after one unmeasured round:
    file pages and .pyc files)."""
    for argv in commands:
        run_once(argv)
    walls: list[list[float]] = [[] for _ in commands]
    for _ in range(repeat):
        for i, argv in enumerate(commands):
            walls[i].append(run_once(argv))
    return [statistics.median(w) for w in walls]


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("onnx", "ml_dtypes", "numpy", "protobuf", "networkx", "onnxruntime-gpu", "onnx-tool"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def rss_of(argv: list[str]) -> float:
    """Peak RSS (MB) of one run, measured by a fresh wrapper process so earlier children don't count."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL, check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True, cwd=REPO)
    return int(out.stdout.strip()) / 1024


def onnx_tool_available() -> bool:
    try:
        import onnx_tool  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_tool_run(path: Path) -> None:
    import onnx_tool

    model = onnx_tool.Model(str(path))
    model.graph.shape_infer()
    model.graph.profile()


ONNX_TOOL_SCRIPT = (
    "import sys, onnx_tool; m = onnx_tool.Model(sys.argv[1]); m.graph.shape_infer(); m.graph.profile(); "
    "m.graph.print_node_map(sys.argv[2])"
)


BUDGET_S, BUDGET_RATIO, BUDGET_RSS_MB = 0.5, 2.0, 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=["vgg16", "resnet50"])
    parser.add_argument("--no-onnx-tool", action="store_true")
    parser.add_argument("--no-scaling", action="store_true", help="skip the generated-graph growth table")
    parser.add_argument("--scaling", nargs="*", type=int, default=[5000, 10000, 20000], help="node counts")
    args = parser.parse_args()

    import analyzer

    with_onnx_tool = not args.no_onnx_tool and onnx_tool_available()
    print(f"# bench_inspect on {platform.node()} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
          f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"versions: {versions()}")
    print(f"load average at start: {os.getloadavg()}")
    bare, onnx_import = paired([[sys.executable, "-c", "pass"], [sys.executable, "-c", "import onnx"]], args.repeat)
    print(f"\nwhole process, median of {args.repeat}: `python -c pass` {bare:.3f} s, `python -c \"import onnx\"` "
          f"{onnx_import:.3f} s")
    analyzer_cli = [sys.executable, "-m", "analyzer.cli"]
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        print("\n| model | file MB | nodes | analysis s (in-process) | stages | whole process s | peak RSS MB |"
              + (" onnx-tool in-process s | onnx-tool whole s | onnx-tool RSS MB | in-process ratio | whole ratio |" if with_onnx_tool else ""))
        print("|---|---|---|---|---|---|---|" + ("---|---|---|---|---|" if with_onnx_tool else ""))
        for name in args.models:
            path = export_zoo(name)
            stages: dict[str, float] = {}
            analysis = time_in_process(lambda: analyzer.inspect(path, timings=stages), args.repeat)
            report = analyzer.inspect(path)
            json_argv = [*analyzer_cli, "inspect", str(path), "--format", "json", "-o", os.path.join(tmp, "r.json")]
            ot_argv = [sys.executable, "-c", ONNX_TOOL_SCRIPT, str(path), os.path.join(tmp, "ot.csv")]
            if with_onnx_tool:
                wall, ot_wall = paired([json_argv, ot_argv], args.repeat)
            else:
                (wall,) = paired([json_argv], args.repeat)
            rss = rss_of(json_argv)
            row = (f"| {name} | {path.stat().st_size / 1e6:.0f} | {report.totals.nodes} | {analysis:.4f} | "
                   + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in stages.items())
                   + f" | {wall:.2f} | {rss:.0f} |")
            if wall > BUDGET_S:
                failures.append(f"{name}: whole process {wall:.2f} s > {BUDGET_S} s")
            if rss > BUDGET_RSS_MB:
                failures.append(f"{name}: peak RSS {rss:.0f} MB > {BUDGET_RSS_MB:.0f} MB")
            if with_onnx_tool:
                ot_in = time_in_process(lambda: onnx_tool_run(path), max(1, args.repeat // 2))
                ot_rss = rss_of(ot_argv)
                row += f" {ot_in:.3f} | {ot_wall:.2f} | {ot_rss:.0f} | {ot_in / analysis:.1f}x | {ot_wall / wall:.1f}x |"
                if ot_wall / wall < BUDGET_RATIO:
                    failures.append(f"{name}: {ot_wall / wall:.1f}x faster than onnx-tool < {BUDGET_RATIO}x")
            print(row, flush=True)

        if not args.no_scaling:
            print("\n| generated nodes | analysis s | s per 1k nodes |")
            print("|---|---|---|")
            for target in args.scaling:
                path = Path(tmp) / f"chain{target}.onnx"
                nodes = chain_model(target // 3, path)
                seconds = time_in_process(lambda: analyzer.inspect(path), max(1, args.repeat // 2))
                print(f"| {nodes} | {seconds:.3f} | {seconds / nodes * 1000:.4f} |", flush=True)
    budget = f"whole process <= {BUDGET_S} s, peak RSS <= {BUDGET_RSS_MB:.0f} MB" + (
        f", >= {BUDGET_RATIO}x faster than onnx-tool" if with_onnx_tool else " (onnx-tool not installed: ratio not checked)")
    print(f"\nstart-up budget ({budget}): " + ("met" if not failures else "FAILED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
