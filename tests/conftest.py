"""Shared fixtures. ``zoo_onnx`` exports zoo models once and caches them under ``<repo>/.cache/zoo/``."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
ZOO_CACHE = REPO / ".cache" / "zoo"
STALE_SECONDS = 3600  # an older cache generation untouched this long is no longer in use by any run


def _exporters_fingerprint() -> str:
    """Hash of the exporters package source, so a change to an architecture or the export invalidates the cache."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "exporters").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _prune_stale_generations(current: Path) -> None:
    """Remove cache folders of other torch versions / exporters sources not used for an hour (best effort:
    a run on older code in a parallel checkout may still be reading a younger one)."""
    now = time.time()
    for entry in ZOO_CACHE.iterdir() if ZOO_CACHE.is_dir() else ():
        try:
            if entry != current and now - entry.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        except OSError:
            pass


@pytest.fixture(scope="session")
def zoo_onnx() -> Callable[..., Path]:
    """Factory ``zoo_onnx(name, *, exporter="dynamo", dynamic_batch=True, **options) -> Path``.

    ``options`` are :func:`exporters.export` keywords (num_classes, batch_norm, dropout, input_shape, opset,
    seed, and factory options such as ``lrn=False``). Files live in ``.cache/zoo/<torch version>-<exporters source hash>/``, keyed by (name, options,
    exporter, dynamic_batch), and are written atomically, so parallel pytest-xdist workers may race on one
    safely (the last rename wins; both files are complete). Weights come from seed 0 unless ``seed`` is given. Skips without torch.
    """
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install '.[export]'): zoo models cannot be exported")
    import torch

    import exporters

    generation = ZOO_CACHE / f"torch{torch.__version__.replace('+', '_')}-{_exporters_fingerprint()}"
    _prune_stale_generations(generation)
    made: dict[str, Path] = {}

    def get(name: str, *, exporter: str = "dynamo", dynamic_batch: bool = True, **options: Any) -> Path:
        key = json.dumps(
            {"name": name, "exporter": exporter, "dynamic_batch": dynamic_batch,
             "options": {k: v for k, v in sorted(options.items())}},
            sort_keys=True, default=str,
        )
        if key in made:
            return made[key]
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = generation / f"{name}-{exporter}{'-dyn' if dynamic_batch else ''}-{digest}.onnx"
        if not path.is_file():
            generation.mkdir(parents=True, exist_ok=True)
            exporters.export(name, path, exporter=exporter, dynamic_batch=dynamic_batch, **options)
        made[key] = path
        return path

    return get


# ---- headless Chromium for the HTML report's browser tests ----

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    """$ANALYZER_CHROMIUM, else the first of chromium / chromium-browser / google-chrome on PATH."""
    import os

    configured = os.environ.get("ANALYZER_CHROMIUM")
    if configured:
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium_browser():
    """A headless Chromium driven by Playwright (sync API), shared by the session's browser tests.

    Skips with the reason when Playwright is not importable or no Chromium binary is found.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]'): browser tests need it")
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium found: set ANALYZER_CHROMIUM or install chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
