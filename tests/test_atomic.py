"""Atomic output: all or nothing, with ordinary file permissions."""

from __future__ import annotations

import os
import stat

import pytest

from analyzer.atomic import atomic_path, write_text_atomic
from analyzer.errors import AnalyzerError


def test_written_file_has_the_mode_open_would_give(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert target.read_text() == "hello"


def test_failure_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(AnalyzerError, match="does not exist"):
        write_text_atomic(tmp_path / "nope" / "out.txt", "x")
