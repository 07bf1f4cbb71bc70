"""``analyzer profile``: onnxruntime's per-node times joined with the analyzer's per-node costs."""

from __future__ import annotations

import argparse

from analyzer.commands.bench import (add_output_arguments, add_run_arguments, bench_options_from, emit, refuse_output,
                                     warn_fallback)


SORT_HELP = {"rate": "slowest per MAC first", "time": "longest first", "efficiency": "lowest first"}


def register(subparsers: argparse._SubParsersAction) -> None:
    from analyzer.latency.options import SORT_CHOICES, ProfileOptions
    from analyzer.latency.runtime import OPTIMIZATION_LEVELS

    defaults = ProfileOptions()
    sorts = "; ".join(f"{key}: {SORT_HELP[key]}" + (" (default)" if key == defaults.sort else "") for key in SORT_CHOICES)
    p = subparsers.add_parser(
        "profile",
        help="per-node time from onnxruntime's profiler with achieved GMAC/s, GB/s and roofline efficiency",
        description="Profile a model with onnxruntime (enable_profiling), join each kernel with the analyzer's "
                    "node costs, and rank the kernels slowest per MAC first. onnxruntime fuses and renames nodes "
                    "(Conv+Relu); fused kernels list the original nodes they cover, and kernels or nodes that "
                    "cannot be joined are reported explicitly. Roofline: bound = max(FLOPs / peak, bytes / "
                    "bandwidth), efficiency = bound / measured time; peaks default to a quick measurement on this "
                    "machine with the same provider (fp32 MatMul 1024^3, Add over 128 MiB).",
    )
    p.add_argument("model", help="path to an .onnx file")
    add_run_arguments(p, time_default=f"default: --iters {defaults.default_iters} for profile")
    p.add_argument("--optimization", choices=tuple(OPTIMIZATION_LEVELS), default=defaults.optimization,
                   help="onnxruntime graph optimization level (default %(default)s, as bench runs; 'basic' keeps "
                        "original node names for a one-to-one join)")
    p.add_argument("--peak-gflops", type=float, help="peak FLOP/s in GFLOP/s for the roofline (default: measured)")
    p.add_argument("--bandwidth", type=float, metavar="GB/S", help="memory bandwidth in GB/s (default: measured)")
    p.add_argument("--sort", choices=SORT_CHOICES, default=defaults.sort, help=sorts)
    p.add_argument("--top", type=int, help="show only the first N kernels")
    add_output_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analyzer.latency.options import ProfileOptions
    from analyzer.latency.profile import profile, render_json, render_markdown, render_table

    options = ProfileOptions(
        bench=bench_options_from(args),
        optimization=args.optimization,
        peak_gflops=args.peak_gflops,
        bandwidth_gbs=args.bandwidth,
        sort=args.sort,
        top=args.top,
    )
    refuse_output(args)
    result = profile(args.model, options)
    warn_fallback(result.fell_back, result.provider)
    render = {"table": render_table, "json": render_json, "markdown": render_markdown}[args.format]
    emit(render(result), args)
    return 0
