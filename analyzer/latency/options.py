"""The options of ``bench``, ``compare`` and ``profile``: every default lives here, once, with its check.

The command line and the HTTP service read their defaults and help text from these dataclasses, so
this module imports neither numpy nor onnxruntime: ``analyzer --help`` builds every parser from it.
Errors name the Python parameter (:class:`~analyzer.errors.OptionError`); each shell spells it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from analyzer.errors import AnalyzerError, OptionError

CUDNN_SEARCH_CHOICES = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
SORT_CHOICES = ("rate", "time", "efficiency")


@dataclass
class BenchOptions:
    """How one model is run and timed. ``warmup`` and ``time_budget`` left at None take the defaults
    below, which depend on the provider and on the command."""

    # CUDA: cover cuDNN's algorithm search for the bound shapes
    default_warmup: ClassVar[dict[str, int]] = {"cpu": 10, "cuda": 25}
    default_time_budget: ClassVar[float] = 3.0  # seconds, when neither iters nor time_budget is given

    provider: str = "auto"
    batch: int | None = None
    dims: dict[str, int] = field(default_factory=dict)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)  # whole shapes by input name ("": the only one)
    inputs_file: str | None = None
    warmup: int | None = None
    iters: int | None = None
    time_budget: float | None = None
    max_iters: int = 10_000
    threads: int | None = None
    io_binding: bool = False  # always on for CUDA
    cudnn_conv_algo_search: str = "EXHAUSTIVE"
    seed: int = 0
    verbose: bool = False
    session_config: dict[str, str] = field(default_factory=dict)  # onnxruntime session config entries

    def validate(self) -> None:
        """One-line errors for counts a user typed wrong."""
        for name, value in (("batch", self.batch), ("iters", self.iters), ("threads", self.threads)):
            if value is not None and value < 1:
                raise OptionError(name, f"must be positive, got {value}")
        if self.warmup is not None and self.warmup < 0:
            raise OptionError("warmup", f"must be zero or more, got {self.warmup}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise OptionError("time_budget", f"must be positive, got {self.time_budget}")
        if self.iters is not None and self.time_budget is not None:
            raise AnalyzerError("give iters or time_budget, not both")
        if self.max_iters < 1:
            raise OptionError("max_iters", f"must be positive, got {self.max_iters}")
        for name, value in self.dims.items():
            if value < 1:
                raise OptionError("dims", f"{name}={value}: a dimension must be positive")
        for name, shape in self.input_shapes.items():
            if not shape or any(d < 1 for d in shape):
                raise OptionError("input_shapes", f"{name or 'the input'}: {shape} is not a shape of positive dims")
        if self.cudnn_conv_algo_search not in CUDNN_SEARCH_CHOICES:
            raise AnalyzerError(
                f"unknown cudnn_conv_algo_search {self.cudnn_conv_algo_search!r}; "
                f"choose one of {', '.join(CUDNN_SEARCH_CHOICES)}"
            )

    @property
    def effective_time_budget(self) -> float | None:
        return None if self.iters is not None else (self.time_budget or self.default_time_budget)

    def warmup_runs(self, on_cuda: bool) -> int:
        """Warm-up runs, the first run included (so never below 1)."""
        if self.warmup is not None:
            return max(self.warmup, 1)
        return self.default_warmup["cuda" if on_cuda else "cpu"]


@dataclass
class CompareOptions:
    """Two models timed against each other; see :mod:`analyzer.latency.compare` for the statistics."""

    default_time_budget: ClassVar[float] = 10.0  # seconds of interleaved rounds

    bench: BenchOptions = field(default_factory=BenchOptions)
    rounds: int = 20
    alpha: float = 0.05
    min_effect: float = 0.02
    fail_if_slower: float | None = None  # fraction: 0.05 for 5%
    require_faster: float | None = None
    check_outputs: bool = True
    allow_output_mismatch: bool = False
    output_tolerance: float = 1e-4  # relative L2 error
    analyze: bool = True  # MAC/param/memory deltas from analyzer.inspect
    bootstrap_resamples: int = 2000

    def validate(self) -> None:
        if self.rounds < 1:
            raise OptionError("rounds", f"must be positive, got {self.rounds}")
        if not 0 < self.alpha < 1:
            raise OptionError("alpha", f"must be between 0 and 1, got {self.alpha}")
        for name in ("min_effect", "fail_if_slower", "require_faster"):
            value = getattr(self, name)
            # 10 and above is a percentage typed as a fraction (10 for 10%), not a tolerance anyone means
            if value is not None and not 0 <= value < 10:
                raise OptionError(name, f"must be a non-negative fraction or percentage, got {value}")
        if self.require_faster is not None and self.require_faster >= 1:
            raise OptionError("require_faster", f"must be below 100%, got {self.require_faster:.0%}")
        self.bench.validate()

    @property
    def time_budget(self) -> float | None:
        if self.bench.iters is not None:
            return None
        return self.bench.time_budget or self.default_time_budget


@dataclass
class ProfileOptions:
    """One model under onnxruntime's profiler; ``bench`` says how it is run."""

    default_iters: ClassVar[int] = 20  # profiled runs when neither iters nor time_budget is given

    bench: BenchOptions = field(default_factory=BenchOptions)
    optimization: str = "all"  # onnxruntime graph optimization level, as bench runs it
    peak_gflops: float | None = None
    bandwidth_gbs: float | None = None
    sort: str = "rate"
    top: int | None = None

    def validate(self) -> None:
        self.bench.validate()
        if self.sort not in SORT_CHOICES:
            raise AnalyzerError(f"unknown sort {self.sort!r}; choose one of {', '.join(SORT_CHOICES)}")
        for name in ("peak_gflops", "bandwidth_gbs", "top"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise OptionError(name, f"must be positive, got {value}")

    @property
    def max_runs(self) -> int:
        """Most profiled runs: all that fit under a time budget (up to max_iters), else iters or the default."""
        bench = self.bench
        return bench.iters or (bench.max_iters if bench.time_budget else self.default_iters)


def parse_fraction(text: str) -> float:
    """``"5%"`` -> 0.05, ``"0.05"`` -> 0.05. A bare number of 1 or more is refused as ambiguous (5 may mean
    5%), and so is a negative one; the error is a ValueError whose message names the text."""
    text = text.strip()
    try:
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a percentage such as 5% or a fraction such as 0.05") from e
    if not text.endswith("%") and value >= 1:
        raise ValueError(f"{text!r} is ambiguous: write {text}% for a percentage")
    if value < 0:
        raise ValueError(f"{text!r} must not be negative")
    return value
