"""ONNX graph analyzer for CNNs.

``analyzer.inspect(path_or_model, dims=...)`` returns a :class:`analyzer.report.Report`.
Heavy modules (onnx, networkx, rich, onnxruntime) are imported lazily so the CLI starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from analyzer.report import Report


def inspect(source: Any, **options: Any) -> Report:
    """Analyze an ONNX model (path, bytes or ModelProto). See :func:`analyzer.pipeline.inspect`."""
    from analyzer.pipeline import inspect as _inspect

    return _inspect(source, **options)


__all__ = ["inspect", "__version__"]
