"""`analyzer inspect` on every corpus model, against the onnxruntime oracle: a markdown table.

    python benchmarks/corpus/run.py [--only NAME ...] [--skip-large] [--json results.json] [--diff]

Each model is inspected as a user would, as a whole process (`analyzer inspect MODEL --format json
--input-shape NAME:SHAPE ...` with the shapes bound in models.py, or the node test's own input shapes,
and `--input-value NAME=VALUE` for the inputs models.py feeds a constant), and timed. "MACs" on both sides are those of multiply-accumulate ops: Conv/ConvTranspose/Gemm/MatMul
with their quantized and fused forms, LSTM/GRU/RNN and Attention; on the analyzer's side also the MACs
it gives control-flow nodes (If/Loop/Scan), which carry their bodies' cost. The oracle counts what the
run executed (oracle.py gives each formula). Exits 1 when a model's inspect fails, its MACs differ
from the oracle's, or its report is not complete; run fetch.py first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.corpus import oracle  # noqa: E402
from benchmarks.corpus.fetch import model_dir, model_path, selected  # noqa: E402
from benchmarks.corpus.models import PACKAGES, Model  # noqa: E402

CONTROL_FLOW = {"If", "Loop", "Scan"}
INSPECT_TIMEOUT_S = 600


@dataclass
class Row:
    model: str
    package: str
    nodes: int = 0
    analyzer_macs: int | None = None  # None: inspect failed
    analyzer_rnn_attn: int = 0
    analyzer_control_flow: int = 0  # MACs the report puts on If/Loop/Scan nodes
    oracle_macs: int | None = None  # None: the oracle failed
    oracle_rnn_attn: int = 0
    complete: bool | None = None
    unsupported: list[str] = field(default_factory=list)
    inspect_s: float = 0.0
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    node_diffs: list[str] = field(default_factory=list)  # top-level nodes the two counts disagree on
    oracle_skipped: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        if self.analyzer_macs is None or self.oracle_macs is None or self.analyzer_macs != self.oracle_macs:
            return False
        # the split is only comparable where no control-flow node holds part of the analyzer's count
        return self.analyzer_control_flow > 0 or self.analyzer_rnn_attn == self.oracle_rnn_attn

    @property
    def ok(self) -> bool:
        return not self.error and self.equal and bool(self.complete)


# --- binding and the oracle's inputs -------------------------------------------------------------


def feeds_for(model: Model, proto) -> dict:
    if model.test_data:
        return oracle.load_test_data(proto, model_dir(model) / "test_data_set_0")
    return oracle.make_feeds(proto, model.shapes, model.fill)


def shape_options(feeds: dict) -> list[str]:
    """--input-shape for every fed input of rank >= 1 (scalars have nothing to bind)."""
    args = []
    for name, value in feeds.items():
        if value.ndim:
            args += ["--input-shape", f"{name}:{'x'.join(map(str, value.shape))}"]
    return args


def value_options(model: Model) -> list[str]:
    """--input-value for every input the oracle feeds a constant (silero's sample rate): the analyzer then
    counts the If branch the oracle's run takes."""
    return [arg for name, value in model.fill.items() for arg in ("--input-value", f"{name}={value:g}")]


# --- the analyzer, as a whole process ------------------------------------------------------------


def analyzer_command() -> list[str]:
    script = Path(sys.executable).with_name("analyzer")  # the console script of this interpreter's venv
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from analyzer.cli import main; sys.exit(main())"]


def inspect(path: Path, options: list[str]) -> tuple[dict | None, float, str]:
    """The JSON report, the wall seconds of the whole process, and an error line ('' when it worked)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        argv = analyzer_command() + ["inspect", str(path), "--format", "json", "-o", str(out), *options]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=INSPECT_TIMEOUT_S, cwd=REPO)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            return None, seconds, f"inspect exit {proc.returncode}: {last}"
        return json.loads(out.read_text()), seconds, ""


def _key(node: dict) -> tuple[str, str]:
    domain = node.get("domain") or ""
    return ("" if domain == "ai.onnx" else domain, node["op_type"])


def analyzer_macs(report: dict) -> tuple[int, int, int]:
    """(all multiply-accumulate MACs, of which LSTM/GRU/RNN/Attention, of which on control-flow nodes)."""
    total = rnn_attn = control = 0
    for node in report["nodes"]:
        key, macs = _key(node), int(node.get("macs") or 0)
        total += macs
        if key in oracle.RECURRENT or key in oracle.ATTENTION:
            rnn_attn += macs
        elif key[1] in CONTROL_FLOW:
            control += macs
    return total, rnn_attn, control


def node_diffs(report: dict, count: oracle.OracleCount) -> list[str]:
    """Top-level nodes whose MACs differ, matched by first output (node names may be empty or made up)."""
    diffs = []
    for node in report["nodes"]:
        key = next((t["name"] for t in node["outputs"] if t["name"]), None)
        if key in count.per_node and int(node.get("macs") or 0) != count.per_node[key]:
            diffs.append(f"{node['name']} ({node['op_type']}): analyzer {node.get('macs')}, "
                         f"oracle {count.per_node[key]}")
    return diffs


# --- one model, and the table --------------------------------------------------------------------


def _fill_from_report(row: Row, report: dict) -> None:
    row.analyzer_macs, row.analyzer_rnn_attn, row.analyzer_control_flow = analyzer_macs(report)
    row.complete = bool(report.get("complete"))
    row.unsupported = [f"{u['op_type']}x{u['count']}" for u in report.get("unsupported_ops", [])]
    row.warnings = list(report.get("warnings", []))


def _add_error(row: Row, message: str) -> None:
    row.error = f"{row.error}; {message}" if row.error else message


def _fill_from_oracle(row: Row, count: oracle.OracleCount, report: dict | None) -> None:
    row.oracle_macs, row.oracle_skipped = count.total, count.skipped
    row.oracle_rnn_attn = count.recurrent + count.attention
    unruled = [s for s in count.skipped if s.endswith("(no oracle rule)")]
    if unruled:  # the oracle's figure would be low: no comparison to make
        _add_error(row, "oracle: " + ", ".join(unruled))
    if report is not None:
        row.node_diffs = node_diffs(report, count)


def measure(model: Model) -> Row:
    row = Row(model.name, PACKAGES[model.package].pin)
    proto = onnx.load(model_path(model))
    row.nodes = len(proto.graph.node)
    feeds = feeds_for(model, proto)
    report, row.inspect_s, row.error = inspect(model_path(model), shape_options(feeds) + value_options(model))
    if report is not None:
        _fill_from_report(row, report)
    try:
        count = oracle.count(proto, feeds)
    except Exception as e:  # noqa: BLE001 - an oracle failure is a row of the table, not the end of the run
        _add_error(row, f"oracle: {type(e).__name__}: {e}"[:300])
        return row
    _fill_from_oracle(row, count, report)
    return row


def _num(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| model | package | nodes | analyzer MACs | oracle MACs | rnn/attn (analyzer / oracle) | equal "
        "| complete | unsupported | inspect s |",
        "|---|---|--:|--:|--:|--:|:-:|:-:|---|--:|",
    ]
    for r in rows:
        analyzer = _num(r.analyzer_macs) + (" (control flow)" if r.analyzer_control_flow else "")
        has_rnn = r.oracle_rnn_attn or r.analyzer_rnn_attn
        rnn = f"{_num(r.analyzer_rnn_attn)} / {_num(r.oracle_rnn_attn)}" if has_rnn else ""
        complete = "—" if r.complete is None else ("yes" if r.complete else "**no**")
        unsupported = ", ".join(r.unsupported) + (f" {r.error}" if r.error else "")
        lines.append(f"| {r.model} | {r.package} | {r.nodes} | {analyzer} | {_num(r.oracle_macs)} | {rnn} "
                     f"| {'yes' if r.equal else '**no**'} | {complete} | {unsupported.strip()} | {r.inspect_s:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="model names or package keys from models.py")
    parser.add_argument("--skip-large", action="store_true", help="leave out packages over 50 MB (ddddocr)")
    parser.add_argument("--json", type=Path, help="also write every row, warnings and node diffs, here")
    parser.add_argument("--diff", action="store_true", help="print the nodes whose MACs differ, per model")
    args = parser.parse_args(argv)
    models = selected(args.only, args.skip_large)
    missing = [m.name for m in models if not model_path(m).exists()]
    if missing:
        raise SystemExit(f"not fetched: {', '.join(missing)}; run benchmarks/corpus/fetch.py first")
    rows = [measure(m) for m in models]
    print(markdown(rows))
    failed = [r for r in rows if not r.ok]
    if args.diff:
        for r in failed:
            print(f"\n{r.model}: " + ("; ".join(r.node_diffs[:20]) or "no per-node difference at top level"))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "equal": r.equal, "ok": r.ok} for r in rows], indent=1))
    print(f"\n{len(rows) - len(failed)} of {len(rows)} models exact and complete")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
