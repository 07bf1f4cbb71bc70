"""Refuse an uploaded model whose tensors point to external data, before anything parses it.

onnx and onnxruntime resolve a tensor's ``external_data`` ``location`` against the model's directory
(for a model given as bytes, against the working directory) and read that file: ``../../etc/passwd``
or an absolute path would make the service read a file of the server. The check walks the protobuf
wire with :mod:`analyzer.wire` (pure Python, imports neither onnx nor onnxruntime) with a payload
threshold of 0, so that *every* tensor on every path that can hold one is decoded field by field:
initializers, sparse initializers, Constant and other attribute tensors, subgraphs of If/Loop/Scan,
functions and training graphs. ``data_location`` is read as a varint, so non-canonical encodings are
seen as protobuf sees them. Any tensor marked EXTERNAL is refused, whatever its location.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from analyzer.wire import WireError, skip_payloads


class Refused(Exception):
    """The upload is refused (HTTP 400); ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_upload(path: Path, label: str) -> None:
    """Raise :class:`Refused` when ``path`` is empty, not a protobuf ONNX walk can read, or uses external data."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            raise Refused("empty_upload", f"{label} is empty (0 bytes)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            try:
                walked = skip_payloads(mapped, 0)
            except WireError as e:
                raise Refused("not_onnx", f"{label} is not an ONNX model ({e})") from None
            except RecursionError:
                raise Refused("not_onnx", f"{label} is not an ONNX model (graphs nested too deeply)") from None
    if walked.external:
        tensor, location = next(iter(walked.external.items()))
        more = len(walked.external) - 1
        others = f" (and {more} more tensor{'s' * (more > 1)})" if more else ""
        raise Refused(
            "external_data",
            f"external data is not accepted: tensor {tensor!r} in {label} points to location {location!r}{others}; "
            "upload a model with its weights inside the file",
        )
