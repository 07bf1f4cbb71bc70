"""The service's one error type and its JSON shape.

Every error response, from our routes and from FastAPI/Starlette alike (404, 405, ...), has the body
``{"error": {"status": 4xx or 5xx, "code": "...", "message": "..."}}``; ``code`` is a stable word a
client can branch on, ``message`` one line a person can act on.

The library names a bad value by its Python parameter (:class:`~analyzer.errors.OptionError`); the
service words it as the request field a client sets (:data:`FIELDS`, :func:`error_message`).
"""

from __future__ import annotations

from typing import Any

from analyzer.errors import AnalyzerError, OptionError  # no onnx: the worker reads this before the upload check

# the request field of each Python API parameter whose name differs; any other parameter is its own field
FIELDS = {"dims": "dim", "input_shapes": "input_shape", "time_budget": "time", "passes": "pass",
          "input_values": "input_value"}


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message)


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message}}


def error_message(error: AnalyzerError) -> str:
    """A library error's message in the service's words: a named parameter is spelled as its request field."""
    return error.worded(FIELDS) if isinstance(error, OptionError) else str(error)
