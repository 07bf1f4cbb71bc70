"""``analyzer bench``: latency of one model under onnxruntime, with statistics a CI job can keep.

Also home of the run options that ``compare`` and ``profile`` share (provider, batch, dims, inputs,
warm-up, run length, threads), so the three commands read them the same way.
"""

from __future__ import annotations

import argparse
import sys

FORMAT_CHOICES = ("table", "json", "markdown")


def add_run_arguments(p: argparse.ArgumentParser, *, time_default: str) -> None:
    """Options shared by bench, compare and profile, with :class:`BenchOptions`' defaults; ``time_default``
    says what a run without --iters or --time does (the commands differ)."""
    from analyzer.latency.options import CUDNN_SEARCH_CHOICES, BenchOptions
    from analyzer.latency.runtime import PROVIDER_CHOICES

    defaults = BenchOptions()
    warmup = BenchOptions.default_warmup
    p.add_argument("--provider", default=defaults.provider, metavar="{" + ",".join(PROVIDER_CHOICES) + "}",
                   help="execution provider: cuda fails (exit 2) if the session falls back to CPU; "
                        "auto takes CUDA when usable and says so loudly when it falls back (default %(default)s)")
    p.add_argument("--batch", type=int, help="bind symbolic batch (leading) dims to N")
    p.add_argument("--dim", action="append", metavar="NAME=N", help="bind a symbolic dim (repeatable)")
    p.add_argument("--input-shape", action="append", metavar="NAME:SHAPE",
                   help="an input's whole shape, e.g. images:1x3x320x320 (NAME: optional for one-input models)")
    p.add_argument("--inputs", metavar="FILE", help="inputs from .npy (one-input models) or .npz (arrays named after inputs)")
    p.add_argument("--warmup", type=int, help=f"untimed warm-up runs, the first run included, so at least 1 (default "
                                             f"{warmup['cpu']} on CPU, {warmup['cuda']} on CUDA to cover cuDNN's "
                                             "algorithm search); cut short after --time seconds")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--iters", type=int, help="timed iterations (exactly N)")
    length.add_argument("--time", type=float, metavar="S",
                        help=f"time budget in seconds for the timed loop ({time_default})")
    p.add_argument("--max-iters", type=int, default=defaults.max_iters,
                   help="cap on iterations under --time (default %(default)s)")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: onnxruntime's, one per physical core)")
    p.add_argument("--io-binding", action="store_true",
                   help="bind inputs/outputs as OrtValues (always on for CUDA: inputs on the device, synchronised timing)")
    p.add_argument("--cudnn-conv-algo-search", default=defaults.cudnn_conv_algo_search, choices=CUDNN_SEARCH_CHOICES,
                   help="CUDA provider option (default %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed for generated inputs and the run order")
    p.add_argument("--verbose", action="store_true", help="let onnxruntime print its own log lines")


def add_output_arguments(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMAT_CHOICES) -> None:
    p.add_argument("--format", "-f", choices=formats, default="table")
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")


def bench_options_from(args: argparse.Namespace):
    from analyzer.errors import AnalyzerError
    from analyzer.latency.options import BenchOptions
    from analyzer.latency.runtime import PROVIDER_CHOICES
    from analyzer.shapes import parse_dim_options, parse_input_shape_options

    if args.provider not in PROVIDER_CHOICES:
        raise AnalyzerError(f"unknown provider {args.provider!r}; choose one of {', '.join(PROVIDER_CHOICES)}")
    return BenchOptions(
        provider=args.provider,
        batch=args.batch,
        dims=parse_dim_options(args.dim),
        input_shapes=parse_input_shape_options(args.input_shape),
        inputs_file=args.inputs,
        warmup=args.warmup,
        iters=args.iters,
        time_budget=args.time,
        max_iters=args.max_iters,
        threads=args.threads,
        io_binding=args.io_binding,
        cudnn_conv_algo_search=args.cudnn_conv_algo_search,
        seed=args.seed,
        verbose=args.verbose,
    )


def warn_fallback(fell_back: bool, provider: str) -> None:
    if fell_back:
        print(
            f"WARNING: CUDA execution provider requested (--provider auto) but the session fell back to {provider}; "
            "the timings below are CPU timings",
            file=sys.stderr,
        )


def input_models(args: argparse.Namespace) -> list[str]:
    return [getattr(args, key) for key in ("model", "model_a", "model_b") if getattr(args, key, None)]


def refuse_output(args: argparse.Namespace) -> None:
    """Before any timing: ``--output`` may not be one of the models' files (bench, compare, profile)."""
    if args.output:
        from analyzer.model_files import refuse_overwrite

        refuse_overwrite(args.output, input_models(args))


def emit(text: str, args: argparse.Namespace) -> None:
    from analyzer.commands.output import emit as emit_text

    emit_text(text, args.output or None, args.format, inputs=tuple(input_models(args)))


def register(subparsers: argparse._SubParsersAction) -> None:
    from analyzer.latency.options import BenchOptions

    p = subparsers.add_parser(
        "bench",
        help="measure a model's latency under onnxruntime (CUDA where usable, else CPU)",
        description="Time a model under onnxruntime: mean, median with a 95%% CI (order-statistic / binomial "
                    "method), p90, p99, min, std, throughput, session creation time, provider, threads, machine.",
    )
    p.add_argument("model", help="path to an .onnx file")
    add_run_arguments(p, time_default=f"default {BenchOptions.default_time_budget:g}")
    add_output_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analyzer.latency.bench import benchmark, render_json, render_markdown, render_table

    refuse_output(args)
    result = benchmark(args.model, bench_options_from(args))
    warn_fallback(result.fell_back, result.provider)
    render = {"table": render_table, "json": render_json, "markdown": render_markdown}[args.format]
    emit(render(result), args)
    return 0
