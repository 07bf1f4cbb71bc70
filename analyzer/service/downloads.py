"""Optimized models kept for download under random, unguessable tokens, deleted after the retention time."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


@dataclass
class Stored:
    path: Path
    filename: str  # what the client's browser saves it as
    size: int
    expires: float  # time.time()


class Downloads:
    def __init__(self, directory: Path, retention_s: float) -> None:
        self.directory = directory
        self.retention_s = retention_s
        self.items: dict[str, Stored] = {}
        self.lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, source: Path, filename: str) -> tuple[str, Stored]:
        """Move ``source`` into the store; return its token and record."""
        token = secrets.token_urlsafe(24)  # 32 characters, 192 bits
        target = self.directory / f"{token}.onnx"
        shutil.move(str(source), target)
        stored = Stored(target, filename, target.stat().st_size, time.time() + self.retention_s)
        with self.lock:
            self.items[token] = stored
        return token, stored

    def get(self, token: str) -> Stored | None:
        if not TOKEN.match(token):
            return None
        with self.lock:
            stored = self.items.get(token)
        if stored is None or stored.expires < time.time() or not stored.path.is_file():
            return None
        return stored

    def purge(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.lock:
            expired = [t for t, s in self.items.items() if s.expires < now]
            gone = [self.items.pop(t) for t in expired]
        for stored in gone:
            try:
                os.unlink(stored.path)
            except FileNotFoundError:
                pass

    def clear(self) -> None:
        self.purge(float("inf"))
