"""Fixtures of the reliability tests: the real CLI in a subprocess, workspaces, table digests.

Every test drives `segmart` as a user would (a subprocess of the installed console script, so
stderr is exactly what a user sees) inside a workspace: a directory holding the working
warehouse, models, the published BI file, reports and exports, all passed through the SEGMART_*
environment variables. One good `segmart run` on a small generated shop is made once per session
(shared by the xdist workers through a file lock) and copied by each test that needs a last good
publication.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.config import Settings
from tests.conftest import _shared_once
from tests.reliability.rawdirs import write_dirty_shop


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: a reliability test that runs the whole pipeline (still part of make test)",
    )


GOOD_CUSTOMERS = 700  # few, yet enough buyers and non-buyers for every training gate
GOOD_SEED = 11
# The classifier does not matter to these tests and logistic regression trains in a fraction of
# the time of the default gradient boosting.
RUN_OPTIONS = ("--algorithm", "logistic_regression")
# A run that must replace the model: train a new one and promote it past the gate.
NEW_MODEL = ("--retrain", "--promote")
SEGMART = Path(sys.executable).with_name("segmart")
CLI_TIMEOUT = 600


@dataclass(frozen=True)
class Workspace:
    """Everything one pipeline writes, under one root; raw files may live elsewhere."""

    root: Path
    raw_dir: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "segmart.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def published(self) -> Path:
        return self.settings().published_warehouse

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    def settings(self) -> Settings:
        return Settings(
            raw_dir=self.raw_dir,
            warehouse=self.warehouse,
            models_dir=self.models_dir,
            published_dir=self.root / "published",
            reports_dir=self.root / "reports",
            exports_dir=self.exports_dir,
        )

    def env(self) -> dict[str, str]:
        settings = self.settings()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMART_")}
        return env | {
            "SEGMART_RAW_DIR": str(settings.raw_dir),
            "SEGMART_WAREHOUSE": str(settings.warehouse),
            "SEGMART_MODELS_DIR": str(settings.models_dir),
            "SEGMART_PUBLISHED_DIR": str(settings.published_dir),
            "SEGMART_REPORTS_DIR": str(settings.reports_dir),
            "SEGMART_EXPORTS_DIR": str(settings.exports_dir),
            "COLUMNS": "400",  # rich wraps at the terminal width: keep an error on one line
            # dbt's target dir (partial parse, compiled SQL) per workspace: a killed run must not
            # leave half-written files where other runs read them
            "DBT_TARGET_PATH": str(self.root / "dbt-target"),
        }

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run `segmart ARGS` to completion."""
        return subprocess.run(
            [str(SEGMART), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start `segmart ARGS` in its own process group, output to `log`."""
        with log.open("wb") as handle:
            return subprocess.Popen(
                [str(SEGMART), *args],
                env=self.env(),
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def copy(self, root: Path, raw_dir: Path | None = None) -> Workspace:
        """A private copy of this workspace's outputs (the warehouse, models, BI file...)."""
        shutil.copytree(self.root, root, symlinks=True)
        return Workspace(root=root, raw_dir=raw_dir or self.raw_dir)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started by `Workspace.popen` and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def assert_clean_success(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"segmart failed:\n{result.stderr}\n{result.stdout}"
    assert "Traceback" not in result.stderr


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The CLI failed the way a user should see it: one `error: ...` line, no traceback.

    Progress lines of the steps that succeeded may come before it on stderr; the error is the
    last line and the only one starting with `error:`. Returns the message after `error: `.
    """
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, f"expected a failure, got success:\n{result.stdout}"
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("error: "), f"no error line last:\n{result.stderr}"
    assert [line for line in lines if line.startswith("error")] == lines[-1:], result.stderr
    message = lines[-1].removeprefix("error: ")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


def base_tables(
    con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...] = (), views: bool = False
) -> list[str]:
    """Every base table (and view) of the given schemas, or of all, as schema.table, sorted."""
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
        " where table_type = 'BASE TABLE' or (? and table_type = 'VIEW') order by 1",
        [views],
    ).fetchall()
    names = [name for (name,) in rows]
    return [n for n in names if not schemas or n.split(".")[0] in schemas]


def table_digest(con: duckdb.DuckDBPyConnection, name: str, exclude: frozenset[str] = frozenset()):
    """(row count, md5 of the sorted rows) of a table, leaving out the columns in `exclude`."""
    schema, table = name.split(".")
    columns = [
        column
        for (column,) in con.execute(
            "select column_name from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
        if column not in exclude
    ]
    row = ", ".join(f'"{column}"' for column in columns)
    return con.execute(
        f"select count(*), md5(coalesce(string_agg(line, chr(10) order by line), ''))"
        f" from (select cast(row({row}) as varchar) as line from {name})"
    ).fetchall()[0]


def digests(
    path: Path,
    schemas: tuple[str, ...] = (),
    exclude: Mapping[str, frozenset[str]] | frozenset[str] = frozenset(),
) -> dict[str, tuple[int, str]]:
    """Digest of every base table of a DuckDB file (read-only).

    `exclude` names columns to leave out: per table, or one set for every table.
    """

    def excluded(name: str) -> frozenset[str]:
        return exclude if isinstance(exclude, frozenset) else exclude.get(name, frozenset())

    with duckdb.connect(str(path), read_only=True) as con:
        return {
            name: table_digest(con, name, excluded(name)) for name in base_tables(con, schemas)
        }


def add_contact_columns(raw_dir: Path) -> None:
    """Give the generated customers a first name and a phone number the contract does not know.

    The landing keeps only the contract's columns, so neither may ever reach a table.
    """
    path = raw_dir / "customers.parquet"
    customers = pq.read_table(path)
    n_rows = customers.num_rows
    names = [("Anna", "Bruno", "Carla", "Dmitri")[k % 4] for k in range(n_rows)]
    phones = [f"+44 7700 9{k % 100_000:05d}" for k in range(n_rows)]
    customers = customers.append_column("first_name", pa.array(names)).append_column(
        "phone", pa.array(phones)
    )
    pq.write_table(customers, path)


def _good_run(target: Path) -> None:
    from scripts.generate import generate

    generate(GOOD_CUSTOMERS, GOOD_SEED, target / "data", "parquet")
    add_contact_columns(target / "data" / "raw")
    workspace = Workspace(root=target / "workspace", raw_dir=target / "data" / "raw")
    workspace.root.mkdir()
    assert_clean_success(workspace.cli("run", *RUN_OPTIONS))


@pytest.fixture(scope="session")
def good_run_dir(shared_root: Path) -> Path:
    """The shared outcome of one good `segmart run`: read it, never write it."""
    return _shared_once(shared_root, "reliability_good_run", _good_run)


@pytest.fixture(scope="session")
def good_run(good_run_dir: Path) -> Workspace:
    """The shared good run (read-only: copy it before running anything in it)."""
    return Workspace(root=good_run_dir / "workspace", raw_dir=good_run_dir / "data" / "raw")


@pytest.fixture
def last_good(good_run: Workspace, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of the good run: a workspace with a last good publication."""
    yield good_run.copy(tmp_path / "workspace")


# A quote in the path: landing splices the raw directory into SQL, so it must be escaped there.
DIRTY_RAW = Path("o'brien's shop'); drop table raw.files; --") / "raw"


def _dirty_build(target: Path) -> None:
    workspace = Workspace(root=target / "workspace", raw_dir=write_dirty_shop(target / DIRTY_RAW))
    workspace.root.mkdir()
    assert_clean_success(workspace.cli("build"))


@pytest.fixture(scope="session")
def dirty_build(shared_root: Path) -> Workspace:
    """One `segmart build` of the dirty shop (every kind of bad row); read it, never write it."""
    target = _shared_once(shared_root, "reliability_dirty_build", _dirty_build)
    return Workspace(root=target / "workspace", raw_dir=target / DIRTY_RAW)
