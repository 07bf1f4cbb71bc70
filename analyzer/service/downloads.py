"""Optimized models kept for download under random, unguessable tokens, deleted after the retention time.

The store holds at most ``max_bytes`` in all: adding a model past it drops the oldest stored models
first (their links then answer 404); a model larger than the whole store is refused with 507.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analyzer.service.errors import ServiceError
from analyzer.units import nbytes

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


@dataclass
class Stored:
    path: Path
    filename: str  # what the client's browser saves it as
    size: int
    expires: float  # on the store's clock: time.time() unless told otherwise


class Downloads:
    def __init__(self, directory: Path, retention_s: float, max_bytes: int, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.retention_s = retention_s
        self.max_bytes = max_bytes
        self.clock = clock  # the wall clock that retention is measured by
        self.items: dict[str, Stored] = {}  # oldest first
        self.lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, source: Path, filename: str) -> tuple[str, Stored]:
        """Move ``source`` into the store, dropping the oldest models if it would go over ``max_bytes``;
        return its token and record. A model larger than the whole store: :class:`ServiceError` 507."""
        size = source.stat().st_size
        if size > self.max_bytes:
            raise ServiceError(507, "insufficient_storage",
                               f"the optimized model ({nbytes(size)}) is larger than this server's store for "
                               f"downloads ({nbytes(self.max_bytes)}); it cannot be kept for download")
        token = secrets.token_urlsafe(24)  # 32 characters, 192 bits
        target = self.directory / f"{token}.onnx"
        stored = Stored(target, filename, size, self.clock() + self.retention_s)
        with self.lock:  # reserve the room before moving the file in
            used = sum(s.size for s in self.items.values())
            evicted = []
            while self.items and used + size > self.max_bytes:
                oldest = next(iter(self.items))
                evicted.append(self.items.pop(oldest))
                used -= evicted[-1].size
            self.items[token] = stored
        _unlink(evicted)
        try:
            shutil.move(str(source), target)
        except BaseException:
            with self.lock:
                self.items.pop(token, None)
            _unlink([stored])
            raise
        return token, stored

    def get(self, token: str) -> Stored | None:
        if not TOKEN.match(token):
            return None
        with self.lock:
            stored = self.items.get(token)
        if stored is None or stored.expires < self.clock() or not stored.path.is_file():
            return None
        return stored

    def purge(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        with self.lock:
            expired = [t for t, s in self.items.items() if s.expires < now]
            gone = [self.items.pop(t) for t in expired]
        _unlink(gone)

    def clear(self) -> None:
        self.purge(float("inf"))


def _unlink(items: list[Stored]) -> None:
    for stored in items:
        try:
            os.unlink(stored.path)
        except FileNotFoundError:
            pass
