"""Measuring a child process: wall and CPU time and peak RSS from `os.wait4`, per stage."""

from __future__ import annotations

import multiprocessing
import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class BenchmarkError(RuntimeError):
    """A stage failed or the outputs disagree: the numbers would mean nothing."""


@dataclass(frozen=True)
class Measurement:
    """One run of one stage, as the kernel accounted it for that child process tree."""

    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    load_before: float
    load_after: float


@dataclass
class StageResult:
    """Every run of a stage at one size, and its summary."""

    runs: list[Measurement] = field(default_factory=list)
    skipped: str | None = None
    needs_more_than_bytes: int | None = None  # ran out of an address-space cap this size

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(r.seconds for r in self.runs) if self.runs else None

    @property
    def median_cpu_seconds(self) -> float | None:
        return statistics.median(r.cpu_seconds for r in self.runs) if self.runs else None

    @property
    def peak_rss_bytes(self) -> int | None:
        return max(r.peak_rss_bytes for r in self.runs) if self.runs else None

    def to_json(self) -> dict:
        return {
            "runs": [asdict(r) for r in self.runs],
            "median_seconds": self.median_seconds,
            "median_cpu_seconds": self.median_cpu_seconds,
            "peak_rss_bytes": self.peak_rss_bytes,
            "skipped": self.skipped,
            "needs_more_than_bytes": self.needs_more_than_bytes,
        }


def measure(
    command: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    address_space_bytes: int | None = None,
) -> Measurement:
    """Run `command` to completion and return its wall time, CPU time and peak RSS.

    The peak RSS is the kernel's ``ru_maxrss`` for the child as reaped by ``os.wait4``: the
    largest resident set of the child or any descendant it waited for, not a sum.

    Raises
    ------
    BenchmarkError
        If the command exits non-zero; the message carries the tail of its output.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with open(log, "wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            preexec_fn=_address_space_limit(address_space_bytes),
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise BenchmarkError(
            f"{' '.join(command)} exited {process.returncode} (log {log}):\n" + "\n".join(tail)
        )
    return Measurement(
        seconds=round(seconds, 3),
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
        peak_rss_bytes=usage.ru_maxrss * 1024,  # KiB on Linux
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
    )


def _address_space_limit(limit: int | None) -> Callable[[], None] | None:
    """A preexec_fn capping the child's address space, so a runaway reference fails alone
    instead of waking the OOM killer on a shared machine."""
    if limit is None:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def in_a_child(function: Callable[..., T], *args: object) -> T:
    """Call `function` in a spawned process, so the harness itself stays small.

    Linux carries a process's resident set at fork into the child's peak RSS (`ru_maxrss`):
    after a comparison that grew the harness to 5 GB at M, every later stage reported 5 GB;
    after scaling the mart in-process, the scaled score reported 1.4 GB instead of 0.9 GB.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()
