"""The model zoo: classic CNNs in plain ``torch.nn`` and their export to checked ONNX files.

``ZOO`` (name -> :class:`~exporters.registry.ZooEntry` with description and default input shape) is
torch-free; ``build`` and ``export`` import torch (the ``export`` extra) when called.
Exported nodes carry their torch module path in metadata_props under :data:`MODULE_KEY` (``"module"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporters.naming import MODULE_KEY
from exporters.registry import ZOO, ZooEntry

if TYPE_CHECKING:
    from exporters.onnx_export import ExportResult


def build(name: Any, **options: Any) -> Any:
    """``torch.nn.Module`` for a zoo name (or ``module.path:factory``); see :func:`exporters.onnx_export.build`."""
    from exporters.onnx_export import build as _build

    return _build(name, **options)


def export(name_or_factory: Any, output: Any, **options: Any) -> ExportResult:
    """Export and check; see :func:`exporters.onnx_export.export` for the options."""
    from exporters.onnx_export import export as _export

    return _export(name_or_factory, output, **options)


def export_cached(name: str, directory: Any, *, exporter: str = "legacy", **options: Any) -> Any:
    """``directory/NAME.onnx``, exported on first use and reused after (benchmarks and demos).

    The legacy exporter by default: it writes the Flatten/GlobalAveragePool graphs most tools expect.
    """
    from pathlib import Path

    path = Path(directory) / f"{name}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        export(name, path, exporter=exporter, **options)
    return path


def __getattr__(name: str) -> Any:
    if name == "ExportResult":
        from exporters.onnx_export import ExportResult

        return ExportResult
    raise AttributeError(f"module 'exporters' has no attribute {name!r}")


__all__ = ["ZOO", "ZooEntry", "MODULE_KEY", "build", "export", "export_cached", "ExportResult"]
