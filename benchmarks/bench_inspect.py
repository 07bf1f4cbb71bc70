"""Speed and memory of `analyzer inspect`, against onnx-tool on the same files in the same run.

Targets (issue 3): VGG-16 (a 528 MB single file): the analysis itself (after imports) under 0.1 s;
`analyzer inspect --format json` as a whole process under 0.8 s and 150 MB peak RSS. And analysis
time linear in node count on generated 5k/10k/20k-node graphs.

    python benchmarks/bench_inspect.py [--repeat 5] [--models vgg16 resnet50] [--no-onnx-tool]

Exports the zoo models with the legacy exporter into .cache/bench/ (needs the `export` extra);
onnx-tool is measured only when importable (`make bench` installs it into the venv).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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


def whole_process(argv: list[str], repeat: int) -> tuple[float, float]:
    """Median wall seconds and max peak RSS (MB) of a command run `repeat` times."""
    walls, peak = [], 0.0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        walls.append(time.perf_counter() - start)
        # ru_maxrss of children is the max over all waited-for children: run RSS probes in their own wrapper
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return statistics.median(walls), peak / 1024


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=["vgg16", "resnet50"])
    parser.add_argument("--no-onnx-tool", action="store_true")
    parser.add_argument("--scaling", nargs="*", type=int, default=[5000, 10000, 20000], help="node counts")
    args = parser.parse_args()

    import analyzer

    with_onnx_tool = not args.no_onnx_tool and onnx_tool_available()
    print(f"# bench_inspect on {platform.node()} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
          f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"load average at start: {os.getloadavg()}")
    analyzer_cli = [sys.executable, "-m", "analyzer.cli"]
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
            wall, _ = whole_process(json_argv, args.repeat)
            rss = rss_of(json_argv)
            row = (f"| {name} | {path.stat().st_size / 1e6:.0f} | {report.totals.nodes} | {analysis:.4f} | "
                   + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in stages.items())
                   + f" | {wall:.2f} | {rss:.0f} |")
            if with_onnx_tool:
                ot_in = time_in_process(lambda: onnx_tool_run(path), max(1, args.repeat // 2))
                ot_argv = [sys.executable, "-c", ONNX_TOOL_SCRIPT, str(path), os.path.join(tmp, "ot.csv")]
                ot_wall, _ = whole_process(ot_argv, max(1, args.repeat // 2))
                ot_rss = rss_of(ot_argv)
                row += f" {ot_in:.3f} | {ot_wall:.2f} | {ot_rss:.0f} | {ot_in / analysis:.1f}x | {ot_wall / wall:.1f}x |"
            print(row, flush=True)

        print("\n| generated nodes | analysis s | s per 1k nodes |")
        print("|---|---|---|")
        for target in args.scaling:
            path = Path(tmp) / f"chain{target}.onnx"
            nodes = chain_model(target // 3, path)
            seconds = time_in_process(lambda: analyzer.inspect(path), max(1, args.repeat // 2))
            print(f"| {nodes} | {seconds:.3f} | {seconds / nodes * 1000:.4f} |", flush=True)


if __name__ == "__main__":
    main()
