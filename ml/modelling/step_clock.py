"""Wall seconds per step of a run, the steps named by the progress lines that begin them."""

from __future__ import annotations

import time
from collections.abc import Callable

# Lines that report on the current step rather than begin a new one.
ASIDES = ("warning:", "leaving out ")


class StepClock:
    """A progress callback that also times the steps its lines announce.

    Each line but an aside ends the step running and begins one named by the line, so the
    timings need nothing but the progress lines a run writes anyway.
    """

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._step: str | None = None
        self._started = 0.0

    def __call__(self, line: str) -> None:
        if not line.startswith(ASIDES):
            self.stop()
            self._step, self._started = line, time.perf_counter()
        self.progress(line)

    def stop(self) -> dict[str, float]:
        """End the step running; the seconds of every step so far, in order."""
        if self._step is not None:
            elapsed = time.perf_counter() - self._started
            self.seconds[self._step] = self.seconds.get(self._step, 0.0) + elapsed
            self._step = None
        return dict(self.seconds)
