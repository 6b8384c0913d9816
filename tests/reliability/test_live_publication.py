"""The live views under stress, after a crash and after `segmart forget`.

The live BI file's views pick, per query, the newest Parquet publication in effect when the
query's transaction began. Here publications take effect every few milliseconds, far faster than
any pipeline, while a DuckDB 2.x reader in this process and a DuckDB 1.x reader in its own venv
query two tables at once: no query may fail or read its two tables from two publications. A
publication folder swapped by a `current` symlink instead mixed them in about half the queries
at this rate (measured while designing this).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from ml.config import Settings
from ml.delivery.publish import (
    MARKER,
    collect_garbage,
    folder_name,
    live_warehouse,
    publications_dir,
    publish,
)
from tests.integration.bi_readers import duckdb1_python, polled, start_poller
from tests.reliability.conftest import Workspace, assert_clean_success

TWO_TABLES = """
select
    (select min(model_id) || '/' || max(model_id) || '/' || count(*)
        from marketing.segment_summary),
    (select min(model_id) || '/' || max(model_id) || '/' || count(*)
        from marketing.audience_summary)
"""
STRESS_SECONDS = 6
N_ROWS = 5_000


@pytest.fixture
def small(tmp_path: Path) -> Settings:
    """A working warehouse with the two summaries and customers, published once."""
    settings = Settings(warehouse=tmp_path / "segmart.duckdb", published_dir=tmp_path / "bi")
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("create schema core; create schema marketing")
        con.execute(
            "create table core.customers as"
            f" select 'c' || range as customer_id from range({N_ROWS})"
        )
        for name in ("segment_summary", "audience_summary"):
            con.execute(
                f"create table marketing.{name} as"
                f" select 'run-0' as model_id, range as n from range({N_ROWS})"
            )
    publish(settings)
    return settings


def _publish_rapidly(settings: Settings, stop: threading.Event, done: list[int]) -> None:
    """Publications taking effect every few ms: copies of the first, each with its own run id."""
    root = publications_dir(settings)
    (first,) = root.glob("publication-*")
    template = shutil.copytree(first, root.parent / "template")  # the first one goes too
    con = duckdb.connect()
    run = 0
    while not stop.is_set():
        run += 1
        staging = root / f".publication.stress{run}.tmp"
        shutil.copytree(template, staging)
        for name in ("marketing.segment_summary", "marketing.audience_summary"):
            path = staging / f"{name}.parquet"
            con.execute(
                f"copy (select 'run-{run}' as model_id, range as n from range({N_ROWS}))"
                f" to '{path}' (format parquet)"
            )
        effective = time.time_ns() // 1_000 + 2_000  # 2 ms after the rename
        staging.rename(root / folder_name(effective))
        done.append(run)
        collect_garbage(root, grace=timedelta(milliseconds=300))
    con.close()


def _check(rows: list[list[str]], who: str) -> set[str]:
    runs = set()
    for segments, audiences in rows:
        assert segments == audiences, f"{who}: two publications in one query"
        first, last, n_rows = segments.split("/")
        assert first == last and int(n_rows) == N_ROWS, f"{who}: a mixed or partial table"
        runs.add(first)
    return runs


def test_no_query_reads_two_publications_even_when_they_change_every_few_ms(
    small: Settings, shared_root: Path, tmp_path: Path
) -> None:
    python_1x = duckdb1_python(shared_root)
    stop, published = threading.Event(), []
    poller = start_poller(
        python_1x, live_warehouse(small), TWO_TABLES, tmp_path / "1x.jsonl", tmp_path / "stop"
    )
    writer = threading.Thread(target=_publish_rapidly, args=(small, stop, published))
    writer.start()
    rows, errors = [], []
    con = duckdb.connect(str(live_warehouse(small)), read_only=True)
    deadline = time.monotonic() + STRESS_SECONDS
    try:
        while time.monotonic() < deadline:
            try:
                rows.append(list(con.execute(TWO_TABLES).fetchone()))
            except duckdb.Error as error:
                errors.append(str(error))
    finally:
        stop.set()
        writer.join()
        (tmp_path / "stop").touch()
        _, poller_errors = poller.communicate(timeout=60)
        con.close()
    assert poller.returncode == 0, poller_errors
    assert errors == []
    lines = polled(tmp_path / "1x.jsonl")
    assert [line for line in lines if "error" in line] == []
    assert len(published) > 50, "the publisher was too slow to stress anything"
    assert len(_check(rows, "duckdb 2.x")) > 10, "the 2.x reader saw too few publications"
    assert len(_check([line["row"] for line in lines], "duckdb 1.x")) > 5


def test_what_a_killed_publish_leaves_is_never_read_and_is_cleared(small: Settings) -> None:
    root = publications_dir(small)
    # killed while writing Parquet (no marker yet), and while writing the live file
    (root / ".publication.999.tmp").mkdir()
    (root / ".publication.999.tmp" / "marketing.segment_summary.parquet").write_bytes(b"PAR1")
    live = live_warehouse(small)
    leftover = live.with_name(f".{live.name}.999.tmp")
    leftover.write_bytes(b"half")
    # a folder renamed into place without its marker is not a publication either
    unmarked = root / folder_name(1)
    shutil.copytree(next(root.glob("publication-*")), unmarked)
    (unmarked / MARKER).unlink()
    with duckdb.connect(str(live), read_only=True) as con:
        assert con.execute(TWO_TABLES).fetchone()[0] == f"run-0/run-0/{N_ROWS}"
    publish(small)
    assert not (root / ".publication.999.tmp").exists() and not leftover.exists()


def test_the_views_fail_loudly_when_no_publication_is_in_effect(small: Settings) -> None:
    for folder in publications_dir(small).glob("publication-*"):
        (folder / MARKER).unlink()
    with (
        duckdb.connect(str(live_warehouse(small)), read_only=True) as con,
        pytest.raises(duckdb.Error, match="no segmart publication in effect"),
    ):
        con.execute("select count(*) from core.customers").fetchone()


def _parquet_holding(root: Path, customer: str) -> list[str]:
    pattern = rf"(^|[^A-Za-z0-9]){re.escape(customer)}($|[^A-Za-z0-9])"
    found = []
    with duckdb.connect() as con:
        for path in sorted(root.rglob("*.parquet")):
            (n,) = con.execute(
                "select count(*) from read_parquet(?) as t"
                " where regexp_matches(cast(t as varchar), ?)",
                [str(path), pattern],
            ).fetchone()
            if n:
                found.append(path.name)
    return found


@pytest.mark.integration
def test_forget_leaves_no_parquet_publication_holding_the_customer(last_good: Workspace) -> None:
    settings = last_good.settings()
    root = publications_dir(settings)
    with duckdb.connect(str(last_good.published), read_only=True) as con:
        (customer,) = con.execute(
            "select min(customer_id) from marketing.campaign_audiences"
        ).fetchone()
    # a second publication, still inside its grace period, holds the customer too
    publish(settings, grace=timedelta(hours=1))
    assert len(list(root.glob("publication-*"))) == 2
    assert _parquet_holding(root, customer)

    assert_clean_success(last_good.cli("forget", customer))

    assert len(list(root.glob("publication-*"))) == 1
    assert _parquet_holding(root, customer) == []
    with duckdb.connect(str(live_warehouse(settings)), read_only=True) as con:
        (n,) = con.execute(
            "select count(*) from marketing.campaign_audiences where customer_id = ?", [customer]
        ).fetchone()
    assert n == 0
