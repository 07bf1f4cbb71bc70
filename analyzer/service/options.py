"""Request options: query parameters and non-file form fields, read the same way, checked before any work.

Each route declares its options as :class:`Option` rows; :func:`collect` merges the query string with
the form fields, refuses unknown names, repeated single-valued options and values of the wrong type
(400 with the option named), and the route turns the typed values into the Python API's options
with the same parsers the CLI uses (``--dim``, ``--input-shape``, ``--pass``, percentages). The rows
also become the OpenAPI description of the route.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from analyzer.errors import AnalyzerError
from analyzer.memory import OPTIMIZER_STATE_BUFFERS  # no onnx: cheap to import
from analyzer.latency.runtime import PROVIDER_CHOICES  # onnxruntime is imported lazily there
from analyzer.service.errors import ServiceError, error_message
from analyzer.service.settings import Settings

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")
NUMBER_WORDS = {"int": "an integer", "float": "a number"}


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # int | float | bool | str | fraction
    help: str
    default: Any = None
    repeated: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def schema(self) -> dict[str, Any]:
        base: dict[str, Any] = {"int": {"type": "integer"}, "float": {"type": "number"}, "bool": {"type": "boolean"},
                                "str": {"type": "string"}, "fraction": {"type": "string", "examples": ["5%", "0.05"]}}[self.kind]
        base = dict(base)
        if self.choices:
            base["enum"] = list(self.choices)
        if self.minimum is not None:
            base["minimum"] = self.minimum
        if self.default is not None:
            base["default"] = self.default
        if self.repeated:
            return {"type": "array", "items": base}
        return base


def _parse(option: Option, text: str) -> Any:
    text = text.strip()
    try:
        if option.kind == "int":
            value: Any = int(text)
        elif option.kind == "float":
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        elif option.kind == "bool":
            if text.lower() not in TRUE + FALSE:
                raise ServiceError(400, "bad_option", f"option {option.name!r} must be true or false, got {text!r}")
            return text.lower() in TRUE
        elif option.kind == "fraction":
            from analyzer.latency.options import parse_fraction

            return parse_fraction(text)
        else:
            value = text
    except ValueError as e:
        if option.kind in NUMBER_WORDS:
            raise ServiceError(400, "bad_option",
                               f"option {option.name!r} must be {NUMBER_WORDS[option.kind]}, got {text!r}") from e
        raise ServiceError(400, "bad_option", f"option {option.name!r}: {e}") from e  # parse_fraction says what is wrong
    if option.choices and value not in option.choices:
        raise ServiceError(400, "bad_option",
                           f"option {option.name!r} must be one of {', '.join(option.choices)}, got {text!r}")
    if option.minimum is not None and value < option.minimum:
        raise ServiceError(400, "bad_option", f"option {option.name!r} must be at least {option.minimum:g}, got {text!r}")
    return value


def collect(specs: list[Option], query: list[tuple[str, str]], form: dict[str, list[str]],
            *, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Typed values by option name (defaults filled in; repeated options as lists)."""
    by_name = {o.name: o for o in specs}
    raw: dict[str, list[str]] = {}
    for name, value in list(query) + [(k, v) for k, values in form.items() for v in values]:
        if name in ignore:
            continue
        if name not in by_name:
            raise ServiceError(400, "unknown_option",
                               f"unknown option {name!r}; this route takes {', '.join(sorted(by_name))}")
        raw.setdefault(name, []).append(value)
    values: dict[str, Any] = {}
    for option in specs:
        texts = raw.get(option.name)
        if option.repeated:
            values[option.name] = [_parse(option, t) for t in texts or [] if t.strip()]
        elif texts is None or (len(texts) == 1 and not texts[0].strip() and option.kind != "str"):
            values[option.name] = option.default  # an empty form field (an HTML form's blank input) is "not given"
        elif len(texts) > 1:
            raise ServiceError(400, "bad_option", f"option {option.name!r} given {len(texts)} times; it takes one value")
        else:
            values[option.name] = _parse(option, texts[0])
    return values


def _api(call, *args, **kwargs):
    """``call``, with a library error turned into a 400 that names the request field."""
    try:
        return call(*args, **kwargs)
    except AnalyzerError as e:
        raise ServiceError(400, "bad_option", error_message(e)) from e


# ---- inspect ----

INSPECT_FORMATS = ("json", "html", "markdown", "csv")
INSPECT = [
    Option("format", "str", "report format", "json", choices=INSPECT_FORMATS),
    Option("batch", "int", "bind symbolic batch dims to N; also the training-memory batch", minimum=1),
    Option("dim", "str", "bind a symbolic dim, NAME=N (repeatable)", repeated=True),
    Option("input_shape", "str", "override an input's shape, NAME:1x3x224x224 (NAME: optional for one input; repeatable)",
           repeated=True),
    Option("input_value", "str", "bind the value of a small input, NAME=VALUE (N1,N2,... for a 1-D input; repeatable): "
                                 "an If on it counts the branch it selects", repeated=True),
    Option("optimizer", "str", "optimizer state for the training-memory estimate", "sgd", choices=tuple(OPTIMIZER_STATE_BUFFERS)),
    Option("strict", "bool", "fail (422) on ops without a counting rule or unknown shapes", False),
]


def inspect_options(values: dict[str, Any]) -> dict[str, Any]:
    from analyzer.shapes import parse_dim_options, parse_input_shape_options, parse_input_value_options

    return {
        "format": values["format"],
        "batch": values["batch"],
        "dims": _api(parse_dim_options, values["dim"]),
        "input_shapes": _api(parse_input_shape_options, values["input_shape"]),
        "input_values": _api(parse_input_value_options, values["input_value"]),
        "optimizer": values["optimizer"],
        "strict": values["strict"],
    }


# ---- optimize ----

OPTIMIZE = [
    Option("pass", "str", "a pass in the CLI's --pass syntax, NAME[:KEY=VALUE,...], e.g. bottleneck:energy=0.9 "
                          "(repeatable, run in order; `passes` is accepted as an alias)", repeated=True),
    Option("passes", "str", "alias of `pass`", repeated=True),
    Option("samples", "int", "random inputs for the numerical check", 2, minimum=1),
    Option("seed", "int", "seed of the first random input", 0, minimum=0),
    Option("batch", "int", "bind symbolic batch dims to N (verification inputs and figures)", minimum=1),
    Option("dim", "str", "bind a symbolic dim, NAME=N (repeatable)", repeated=True),
    Option("input_shape", "str", "an input's shape, NAME:1x3x320x320 (NAME: optional for one input; repeatable)",
           repeated=True),
    Option("auto", "bool", "choose the rewrites by measured latency within max_error instead of `pass` (optimize "
                           "--auto; calibrated on random inputs, which the report says)", False),
    Option("max_error", "float", "auto: budget on the outputs' relative error (default 0.01)", minimum=0),
    Option("provider", "str", "auto: the execution provider the latency is measured on", choices=PROVIDER_CHOICES),
    Option("layer_time", "float", "auto: seconds of interleaved timing per candidate layer"),
    Option("time", "float", "auto: seconds of the end-to-end timing"),
]
AUTO_ONLY = ("max_error", "provider", "layer_time", "time")
MAX_SAMPLES = 64


def optimize_options(values: dict[str, Any]) -> dict[str, Any]:
    from passes import VerifyOptions
    from passes.options import parse_pass

    if values["pass"] and values["passes"]:
        raise ServiceError(400, "bad_option", "give the passes as `pass` or as `passes`, not both")
    specs = values["pass"] or values["passes"]
    if values["auto"]:
        if specs:
            raise ServiceError(400, "bad_option", "give `pass` or `auto`, not both")
        return {"auto": auto_options(values)}
    for name in AUTO_ONLY:
        if values[name] is not None:
            raise ServiceError(400, "bad_option", f"option '{name}' applies to auto=true only")
    if not specs:
        raise ServiceError(400, "bad_option", "no pass given: add at least one `pass` field, e.g. pass=fold-bn")
    if values["samples"] > MAX_SAMPLES:
        raise ServiceError(400, "bad_option", f"option 'samples' must be at most {MAX_SAMPLES}, got {values['samples']}")
    from analyzer.shapes import parse_dim_options, parse_input_shape_options

    shapes = {"dims": _api(parse_dim_options, values["dim"]),
              "input_shapes": _api(parse_input_shape_options, values["input_shape"]), "batch": values["batch"]}
    verify = _api(VerifyOptions, samples=values["samples"], seed=values["seed"], **shapes)
    for spec in specs:
        _api(parse_pass, spec, verify=verify)  # a bad spec is a 400 before any upload is parsed
    return {"passes": specs, "samples": values["samples"], "seed": values["seed"], **shapes}


def auto_options(values: dict[str, Any]) -> dict[str, Any]:
    """The ``AutoOptions`` keywords of an auto optimize, checked (random calibration: uploads carry one model)."""
    from analyzer.shapes import parse_dim_options, parse_input_shape_options
    from passes.auto import AutoOptions

    given = {"max_error": values["max_error"], "provider": values["provider"], "samples": values["samples"],
             "seed": values["seed"], "layer_seconds": values["layer_time"], "end_to_end_seconds": values["time"],
             "dims": _api(parse_dim_options, values["dim"]),
             "input_shapes": _api(parse_input_shape_options, values["input_shape"]), "batch": values["batch"]}
    given = {k: v for k, v in given.items() if v is not None}
    _api(AutoOptions(**given).validate)
    return given


# ---- compare ----

def compare_specs(settings: Settings) -> list[Option]:
    from analyzer.latency.options import CompareOptions  # no numpy: cheap to import

    defaults = CompareOptions()
    return [
        Option("time", "float", f"time budget of the interleaved rounds in seconds (default {settings.default_compare_seconds:g}, "
                                f"at most {settings.max_compare_seconds:g})"),
        Option("iters", "int", f"timed iterations per model instead of a time budget (at most {settings.max_compare_iters})",
               minimum=1),
        Option("rounds", "int", "rounds of A/B in random order", defaults.rounds, minimum=1),
        Option("seed", "int", "seed of the generated inputs and the run order", defaults.bench.seed, minimum=0),
        Option("provider", "str", "execution provider", defaults.bench.provider, choices=PROVIDER_CHOICES),
        Option("batch", "int", "bind symbolic batch (leading) dims to N", minimum=1),
        Option("dim", "str", "bind a symbolic dim, NAME=N (repeatable)", repeated=True),
        Option("warmup", "int", "untimed warm-up runs", minimum=0),
        Option("threads", "int", "onnxruntime intra-op threads", minimum=1),
        Option("alpha", "float", "significance level", defaults.alpha),
        Option("min_effect", "fraction", "smallest ratio change called a difference (5% or 0.05)",
               f"{100 * defaults.min_effect:g}%"),
        Option("fail_if_slower", "fraction", "gate: fail when significantly slower by more than X"),
        Option("require_faster", "fraction", "gate: fail unless significantly faster by at least Y"),
        Option("output_tolerance", "float", "largest relative L2 error for outputs to match", defaults.output_tolerance),
        Option("check_outputs", "bool", "compare the two models' outputs", defaults.check_outputs),
        Option("allow_output_mismatch", "bool", "report differing outputs but do not fail the gate",
               defaults.allow_output_mismatch),
        Option("analyze", "bool", "add the analyzer's MAC/param/memory deltas", defaults.analyze),
        Option("tag", "str", "on a server with a queue (--queue): only a worker started with --tag NAME takes the job"),
    ]


TAG = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def job_tag(values: dict[str, Any], queued: bool) -> str | None:
    """The worker tag a job asks for: only where jobs go to worker hosts, and only a plain name."""
    tag = values.get("tag")
    if tag is None:
        return None
    if not queued:
        raise ServiceError(400, "bad_option", "option 'tag' picks a worker host, but this server runs latency jobs "
                                              "itself (it was started without --queue)")
    if not TAG.fullmatch(tag):
        raise ServiceError(400, "bad_option", "option 'tag' must be 1 to 64 letters, digits, '_', '.' or '-'")
    return tag


def compare_options(values: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from analyzer.latency.options import BenchOptions, CompareOptions
    from analyzer.shapes import parse_dim_options

    if values["time"] is not None and values["iters"] is not None:
        raise ServiceError(400, "bad_option", "give `time` or `iters`, not both")
    time_budget = values["time"]
    if values["iters"] is None and time_budget is None:
        time_budget = settings.default_compare_seconds
    if time_budget is not None and not 0 < time_budget <= settings.max_compare_seconds:
        raise ServiceError(400, "bad_option", f"option 'time' must be above 0 and at most {settings.max_compare_seconds:g} "
                                              f"seconds (this server's limit), got {time_budget:g}")
    if values["iters"] is not None and values["iters"] > settings.max_compare_iters:
        raise ServiceError(400, "bad_option", f"option 'iters' must be at most {settings.max_compare_iters}, got {values['iters']}")
    cores = os.cpu_count() or 1
    if values["threads"] is not None and values["threads"] > cores:
        raise ServiceError(400, "bad_option", f"option 'threads' must be at most {cores} (this server's cores), got {values['threads']}")
    bench = {
        "provider": values["provider"], "batch": values["batch"], "dims": _api(parse_dim_options, values["dim"]),
        "warmup": values["warmup"], "iters": values["iters"], "time_budget": time_budget,
        "max_iters": settings.max_compare_iters, "threads": values["threads"], "seed": values["seed"],
    }
    min_effect = values["min_effect"]
    if isinstance(min_effect, str):
        min_effect = _parse(Option("min_effect", "fraction", ""), min_effect)
    options = {
        "seed": values["seed"], "bench": bench, "rounds": values["rounds"], "alpha": values["alpha"],
        "min_effect": min_effect, "fail_if_slower": values["fail_if_slower"],
        "require_faster": values["require_faster"], "check_outputs": values["check_outputs"],
        "allow_output_mismatch": values["allow_output_mismatch"], "output_tolerance": values["output_tolerance"],
        "analyze": values["analyze"],
    }
    check = {k: v for k, v in options.items() if k not in ("seed", "bench")}
    _api(CompareOptions(bench=BenchOptions(**bench), **check).validate)
    return options
