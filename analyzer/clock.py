"""Wall-clock time per stage of a piece of work (load, shape inference, rewrite, verify, ...)."""

from __future__ import annotations

import time


class StageClock:
    """``lap(stage)`` adds the seconds since the previous lap (or since the clock was made) to
    ``laps[stage]``; a stage lapped twice accumulates. ``laps`` may be a dict the caller owns."""

    def __init__(self, laps: dict[str, float] | None = None) -> None:
        self.laps: dict[str, float] = {} if laps is None else laps
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = self.laps.get(stage, 0.0) + now - self._last
        self._last = now
