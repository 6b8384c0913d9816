"""Shared fixtures: one generated data set and one dbt-built warehouse per test session.

Under pytest-xdist the workers share them through a file lock, so the data is generated and
built once; tests that write get their own copy of the warehouse (DuckDB allows one writer).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from ml.config import Settings

N_CUSTOMERS = 4_000
SEED = 7
AS_OF = date(2025, 10, 1)  # the 90-day label window after it is still inside the data
HORIZON_DAYS = 90


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _shared_once(root: Path, name: str, make: Callable[[Path], None]) -> Path:
    """Make root/name once across xdist workers; a `.done` marker says it is complete."""
    target = root / name
    with _locked(root / f"{name}.lock"):
        if not (target / ".done").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            make(target)
            (target / ".done").touch()
    return target


@pytest.fixture(scope="session", autouse=True)
def private_dbt_target(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Give each xdist worker its own dbt target dir: concurrent parses must not share it."""
    os.environ["DBT_TARGET_PATH"] = str(tmp_path_factory.mktemp("dbt_target"))


@pytest.fixture(scope="session", autouse=True)
def one_dbt_thread_per_worker(worker_id: str) -> None:
    """Under pytest-xdist each core runs a worker already: a small shop's second dbt thread
    (ml.config.dbt_threads) made `make test` slower (15:39 against 14:24, 2 min more CPU).
    The incremental test builds with two threads, as a small shop's builds do."""
    if worker_id != "master":
        os.environ.setdefault("SEGMART_DBT_THREADS", "1")


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base


@pytest.fixture(scope="session")
def generated_data(shared_root: Path) -> Path:
    """A generated shop (raw/ and ground_truth/) of a few thousand customers, as Parquet."""
    from scripts.generate import generate

    return _shared_once(
        shared_root, "generated", lambda target: generate(N_CUSTOMERS, SEED, target, "parquet")
    )


def _build(raw_dir: Path, target: Path) -> None:
    from ml.run.build import dbt_vars, run_dbt

    settings = make_settings(raw_dir, target / "segmart.duckdb", target)
    run_dbt(settings, "build --selector warehouse", dbt_vars(settings))


def make_settings(raw_dir: Path, warehouse: Path, root: Path) -> Settings:
    """Settings that keep every output of a test inside root."""
    return Settings(
        raw_dir=raw_dir,
        warehouse=warehouse,
        models_dir=root / "models",
        published_dir=root / "published",
        reports_dir=root / "reports",
        exports_dir=root / "exports",
        as_of=AS_OF,
        horizon_days=HORIZON_DAYS,
    )


@pytest.fixture(scope="session")
def built_warehouse_dir(shared_root: Path, generated_data: Path) -> Path:
    """The shared dbt-built warehouse: read it, never write it (use `built_warehouse`)."""
    return _shared_once(
        shared_root, "built", lambda target: _build(generated_data / "raw", target)
    )


@pytest.fixture
def built_warehouse(built_warehouse_dir: Path, generated_data: Path, tmp_path: Path) -> Settings:
    """Settings pointing at a private copy of the built warehouse, outputs under tmp_path."""
    warehouse = tmp_path / "segmart.duckdb"
    shutil.copy(built_warehouse_dir / "segmart.duckdb", warehouse)
    return make_settings(generated_data / "raw", warehouse, tmp_path)


# The xdist groups that run longest, each a unit one worker runs alone (`--dist loadgroup`).
LONG_GROUPS = frozenset({"marketing", "spark"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the longest groups first, so that the short tests even out the two workers at the
    end instead of one worker finishing a long group alone (longest processing time first)."""

    def group(item: pytest.Item) -> str | None:
        marker = item.get_closest_marker("xdist_group")
        return marker.args[0] if marker and marker.args else None

    items.sort(key=lambda item: group(item) not in LONG_GROUPS)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run when `--dist loadgroup` ignores the groups (pytest 9.2 with xdist 3.8):
    each worker would build every expensive module fixture again, doubling `make test`."""
    if not session.config.getoption("loadgroup", default=False):
        return
    ungrouped = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid
    ]
    if ungrouped:
        raise pytest.UsageError(
            f"pytest-xdist did not group {ungrouped[0]} (and {len(ungrouped) - 1} more):"
            " install the pinned pytest (constraints.txt)"
        )
