"""Pass specifications as text: ``name`` or ``name:key=value,key=value`` (the CLI's ``--pass``, the
service's ``pass`` field, the strings :func:`passes.optimize` takes).

Keys are the pass's Python keywords — its own (``mode``, ``mid``, ``rank``, ``rank_ratio``, ``energy``,
``max_error``, ``m``, ``form``, ``iters``, ``relu``, ``seed``) and the filter every pass takes (``nodes``,
``kernel``, ``stride``, ``min_macs``) — so ``bottleneck:kernel=5,rank=2`` is ``bottleneck(kernel=5, rank=2)``.
Values are typed by key; a bad one is an :class:`~analyzer.errors.OptionError` of the ``passes`` parameter.
"""

from __future__ import annotations

import inspect
from typing import Any

from analyzer.errors import AnalyzerError, OptionError
from passes import PASSES, RewritePass

INT_KEYS = {"mid", "rank", "m", "iters", "seed", "min_macs", "kernel", "stride"}
FLOAT_KEYS = {"rank_ratio", "energy", "max_error"}
BOOL_KEYS = {"relu"}
NOT_TEXT_KEYS = {"self", "common", "attrs", "verify", "progress"}  # keywords a spec cannot spell


def _typed(pass_name: str, key: str, text: str) -> Any:
    try:
        if key in INT_KEYS:
            return int(text)
        if key in FLOAT_KEYS:
            return float(text)
    except ValueError:
        kind = "an integer" if key in INT_KEYS else "a number"
        raise OptionError("passes", f"{pass_name}: {key} must be {kind}, got {text!r}") from None
    if key in BOOL_KEYS:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise OptionError("passes", f"{pass_name}: {key} must be true or false, got {text!r}")
        return text.lower() in ("true", "1", "yes")
    return text


def allowed_keys(cls: type[RewritePass]) -> set[str]:
    """The keywords of the pass class and of the filter every pass takes."""
    keywords = set(inspect.signature(cls.__init__).parameters) | set(inspect.signature(RewritePass.__init__).parameters)
    return keywords - NOT_TEXT_KEYS


def parse_pass(spec: str, **common: Any) -> RewritePass:
    """Build the pass ``spec`` names; ``common`` (``verify=``, ``progress=``) goes to the pass as it is."""
    name, _, rest = spec.partition(":")
    name = name.strip().replace("_", "-")
    if name not in PASSES:
        raise AnalyzerError(f"unknown pass {name!r}; choose from {', '.join(PASSES)}")
    cls = PASSES[name]
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise OptionError("passes", f"{name}: option {item!r} is not key=value")
        if key not in allowed_keys(cls):
            raise OptionError("passes", f"{name}: unknown option {key!r}; allowed: {', '.join(sorted(allowed_keys(cls)))}")
        options[key] = _typed(name, key, text.strip())
    return cls(**options, **common)
