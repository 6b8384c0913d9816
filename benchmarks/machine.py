"""The machine and the source a benchmark ran on, recorded with its results."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """CPU, cores, memory, OS and the versions that matter, for the results file."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_bytes": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _package_version(name)
            for name in (
                "duckdb",
                "dbt-core",
                "dbt-duckdb",
                "pandas",
                "pyarrow",
                "numpy",
                "scikit-learn",
            )
        },
    }


def source_info(source: Path) -> dict:
    """Which code was measured: the git commit of `source` and whether the tree was dirty."""
    info: dict = {"dir": str(source), "commit": None, "dirty": None}
    try:
        info["commit"] = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info["dirty"] = bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return info
