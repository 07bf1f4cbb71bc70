"""Pass specifications as the CLI writes them: ``name`` or ``name:key=value,key=value``.

Keys are the Python keyword names (``mode``, ``mid``, ``rank``, ``rank_ratio``, ``energy``, ``max_error``,
``m``, ``nodes``, ``form``, ``iters``, ``relu``, ``seed``, ``min_macs``) plus ``kernel`` and ``stride``
(attribute filters: ``kernel=5`` selects 5x5 kernels). Values are typed by key; a bad one is one line.
"""

from __future__ import annotations

import inspect
from typing import Any

from analyzer.errors import AnalyzerError
from passes import PASSES, RewritePass, VerifyOptions

INT_KEYS = {"mid", "rank", "m", "iters", "seed", "min_macs", "kernel", "stride"}
FLOAT_KEYS = {"rank_ratio", "energy", "max_error"}
BOOL_KEYS = {"relu"}
ATTR_KEYS = {"kernel": "kernel_shape", "stride": "strides"}
COMMON_KEYS = {"nodes", "min_macs", "kernel", "stride"}


def _typed(pass_name: str, key: str, text: str) -> Any:
    try:
        if key in INT_KEYS:
            return int(text)
        if key in FLOAT_KEYS:
            return float(text)
    except ValueError:
        kind = "an integer" if key in INT_KEYS else "a number"
        raise AnalyzerError(f"--pass {pass_name}: {key} must be {kind}, got {text!r}") from None
    if key in BOOL_KEYS:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise AnalyzerError(f"--pass {pass_name}: {key} must be true or false, got {text!r}")
        return text.lower() in ("true", "1", "yes")
    return text


def allowed_keys(cls: type[RewritePass]) -> set[str]:
    own = {k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "common", "attrs", "verify", "progress")}
    return own | COMMON_KEYS


def parse_pass(spec: str, *, verify: VerifyOptions | None = None, progress: Any = None) -> RewritePass:
    """Build the pass an ``--pass`` argument names."""
    name, _, rest = spec.partition(":")
    name = name.strip().replace("_", "-")
    if name not in PASSES:
        raise AnalyzerError(f"unknown pass {name!r}; choose from {', '.join(PASSES)}")
    cls = PASSES[name]
    options: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise AnalyzerError(f"--pass {name}: option {item!r} is not key=value")
        if key not in allowed_keys(cls):
            raise AnalyzerError(f"--pass {name}: unknown option {key!r}; allowed: {', '.join(sorted(allowed_keys(cls)))}")
        value = _typed(name, key, text.strip())
        if key in ATTR_KEYS:
            attrs[ATTR_KEYS[key]] = value
        else:
            options[key] = value
    if attrs:
        options["attrs"] = attrs
    return cls(**options, verify=verify, progress=progress)
