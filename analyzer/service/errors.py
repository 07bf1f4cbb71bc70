"""The service's one error type and its JSON shape.

Every error response, from our routes and from FastAPI/Starlette alike (404, 405, ...), has the body
``{"error": {"status": 4xx or 5xx, "code": "...", "message": "..."}}``; ``code`` is a stable word a
client can branch on, ``message`` one line a person can act on.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message)


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message}}
