"""Shared fixtures. ``zoo_onnx`` exports zoo models once and caches them under ``<repo>/.cache/zoo/``."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
ZOO_CACHE = REPO / ".cache" / "zoo"


def _exporters_fingerprint() -> str:
    """Hash of the exporters package source, so a change to an architecture or the export invalidates the cache."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "exporters").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def zoo_onnx() -> Callable[..., Path]:
    """Factory ``zoo_onnx(name, *, exporter="dynamo", dynamic_batch=True, **options) -> Path``.

    ``options`` are :func:`exporters.export` keywords (num_classes, batch_norm, dropout, input_shape, opset,
    seed). The file is keyed by (name, options, exporter, dynamic_batch, torch version, exporters source)
    and written atomically, so parallel pytest-xdist workers may race on it safely (the last rename wins,
    both files are complete). Weights come from seed 0 unless ``seed`` is given. Skips without torch.
    """
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install '.[export]'): zoo models cannot be exported")
    import torch

    import exporters

    fingerprint = _exporters_fingerprint()
    made: dict[str, Path] = {}

    def get(name: str, *, exporter: str = "dynamo", dynamic_batch: bool = True, **options: Any) -> Path:
        key = json.dumps(
            {"name": name, "exporter": exporter, "dynamic_batch": dynamic_batch,
             "options": {k: v for k, v in sorted(options.items())}, "torch": torch.__version__,
             "exporters": fingerprint},
            sort_keys=True, default=str,
        )
        if key in made:
            return made[key]
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = ZOO_CACHE / f"{name}-{exporter}{'-dyn' if dynamic_batch else ''}-{digest}.onnx"
        if not path.is_file():
            ZOO_CACHE.mkdir(parents=True, exist_ok=True)
            exporters.export(name, path, exporter=exporter, dynamic_batch=dynamic_batch, **options)
        made[key] = path
        return path

    return get
