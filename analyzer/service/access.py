"""API tokens for ``analyzer serve``: who may call the service, and how many jobs each token may hold.

A token file (``--token-file``) holds one token a line, or ``NAME TOKEN`` to give it a name for logs
and limits; blank lines and ``#`` comments are ignored. Only the tokens' SHA-256 digests are kept.
Every request but ``GET /v1/health`` must carry ``Authorization: Bearer TOKEN``; a missing,
malformed or wrong one is answered 401 before routing, so an unknown route answers 401 too and
reveals nothing. The upload page is the one 401 with a body of its own: a browser opening it cannot
send the header, so ``GET /`` without a token answers 401 *with the page*, which then asks for the
token and sends it with every request it makes. The presented token is digested and compared with every stored digest in constant
time (``hmac.compare_digest``, all of them, whatever matches), so neither the timing nor the order
of the file tells an attacker anything. Tokens are never logged or echoed; their names may be.

Each token may hold ``max_jobs`` requests at once: an inspect or optimize in progress, or a compare
job queued or running (:class:`Slot` passes from the request to the job it queued). Past it, 429.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("analyzer.service")

MIN_TOKEN_CHARS = 16
# GET (and HEAD) routes that answer without a token: liveness only
OPEN_ROUTES = frozenset({"/v1/health"})
# GET routes answered 401 *with their page* when the token is missing: the upload page, static and
# without data, which asks for the token itself
PAGE_ROUTES = frozenset({"/"})
# requests that take a worker, and so count against their token's limit
COUNTED_ROUTES = frozenset({("POST", "/v1/inspect"), ("POST", "/v1/optimize"), ("POST", "/v1/compare")})


class TokenFileError(ValueError):
    """The token file cannot be used; the message is one line for the command line."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def read_token_file(path: Path) -> list[tuple[str, str]]:
    """(name, token) pairs of a token file; :class:`TokenFileError` for anything unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TokenFileError(f"cannot read the token file {path}: {e.strerror if isinstance(e, OSError) else e}") from None
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise TokenFileError(f"{path}, line {number}: expected TOKEN or NAME TOKEN, found {len(fields)} words")
        name, token = (fields[0], fields[1]) if len(fields) == 2 else (f"token-{number}", fields[0])
        if len(token) < MIN_TOKEN_CHARS:
            raise TokenFileError(f"{path}, line {number}: a token must be at least {MIN_TOKEN_CHARS} characters "
                                 f"(make one with: python -c \"import secrets; print(secrets.token_urlsafe(32))\")")
        pairs.append((name, token))
    if not pairs:
        raise TokenFileError(f"the token file {path} holds no token")
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise TokenFileError(f"the token file {path} names two tokens alike: {sorted({n for n in names if names.count(n) > 1})[0]}")
    if len({t for _, t in pairs}) != len(pairs):
        raise TokenFileError(f"the token file {path} holds the same token twice")
    return pairs


@dataclass
class Slot:
    """One of a token's concurrent requests; released once, by the request or by the job it queued."""

    access: Access
    name: str
    handed_to_job: bool = False
    _released: bool = False

    def release(self) -> None:
        with self.access.lock:
            if not self._released:
                self._released = True
                self.access.in_use[self.name] -= 1


@dataclass
class Access:
    tokens: list[tuple[str, bytes]]  # (name, SHA-256 of the token)
    max_jobs: int = 4
    in_use: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_file(cls, path: Path, max_jobs: int = 4) -> Access:
        return cls([(name, _digest(token)) for name, token in read_token_file(path)], max_jobs)

    def identify(self, authorization: str | None) -> str | None:
        """The name of the token in an ``Authorization`` header value, or None."""
        scheme, _, presented = (authorization or "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            return None
        digest = _digest(presented)
        found = None
        for name, stored in self.tokens:  # every digest compared, whatever matches
            if hmac.compare_digest(digest, stored):
                found = name
        return found

    def acquire(self, name: str) -> Slot | None:
        with self.lock:
            if self.in_use.get(name, 0) >= self.max_jobs:
                return None
            self.in_use[name] = self.in_use.get(name, 0) + 1
        return Slot(self, name)


def _error(status: int, code: str, message: str, headers: dict[str, str]) -> tuple[dict[str, Any], bytes]:
    from analyzer.service.routes.common import SECURITY_HEADERS

    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    return {"type": "http.response.start", "status": status, "headers": [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in {"content-type": "application/json", "content-length": str(len(body)), **SECURITY_HEADERS,
                     **headers}.items()]}, body


class AccessMiddleware:
    """Pure ASGI: checks the token before routing, and holds the token's slot for a counted request."""

    def __init__(self, app, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or (scope["method"] in ("GET", "HEAD") and scope["path"] in OPEN_ROUTES):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        name = self.access.identify(header)
        if name is None and scope["method"] in ("GET", "HEAD") and scope["path"] in PAGE_ROUTES:
            await self.app(scope, receive, _as_unauthorized(send))
            return
        if name is None:
            log.info("401 for %s %s: %s", scope["method"], scope["path"],
                     "no bearer token" if header is None else "a token that is not valid")
            await self._answer(send, 401, "unauthorized",
                               "this server needs an API token: send 'Authorization: Bearer TOKEN'"
                               if header is None else "the API token is not valid",
                               {"WWW-Authenticate": 'Bearer realm="analyzer"'})
            return
        state = scope.setdefault("state", {})
        state["token_name"] = name
        if (scope["method"], scope["path"]) not in COUNTED_ROUTES:
            await self.app(scope, receive, send)
            return
        slot = self.access.acquire(name)
        if slot is None:
            await self._answer(send, 429, "busy", f"this token already has {self.access.max_jobs} request(s) or job(s) "
                                                  "in progress (the server's per-token limit); try again later",
                               {"Retry-After": "5"})
            return
        state["access_slot"] = slot
        try:
            await self.app(scope, receive, send)
        finally:
            if not slot.handed_to_job:
                slot.release()

    @staticmethod
    async def _answer(send, status: int, code: str, message: str, headers: dict[str, str]) -> None:
        start, body = _error(status, code, message, headers)
        await send(start)
        await send({"type": "http.response.body", "body": body})


def _as_unauthorized(send):
    """``send`` with the response's status turned into 401 and the bearer challenge added."""

    async def wrapped(message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "status": 401,
                       "headers": [*message.get("headers", []), (b"www-authenticate", b'Bearer realm="analyzer"')]}
        await send(message)

    return wrapped
