"""Where the analyzer keeps what it may reuse across runs (latency tables, zoo exports)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$ANALYZER_CACHE_DIR``, else ``$XDG_CACHE_HOME/onnx-analyzer``, else ``~/.cache/onnx-analyzer``."""
    if os.environ.get("ANALYZER_CACHE_DIR"):
        return Path(os.environ["ANALYZER_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "onnx-analyzer"
