"""BI clients reading the published files while the pipeline writes and republishes.

The clients connect the way Superset does: SQLAlchemy with duckdb_engine, read-only. On the
plain-table file a connection reads the publication it opened, so the client takes a fresh
connection per query (no pool); on the live views (Parquet behind them) one pooled connection,
or one held open by a DuckDB 1.x or 2.x client, sees each new publication on its next query.
Meanwhile another process - like `segmart run` - replaces the marketing tables in the working
warehouse and publishes them, again and again. Every query must succeed and see one complete
publication: never a missing or half-written table, never tables of two runs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ml.config import Settings
from ml.delivery.publish import live_warehouse, publications_dir, publish
from ml.warehouse import connect, replace_tables
from tests.integration.bi_readers import duckdb1_python, polled, start_poller
from tests.marketing.scored import marketing_dir, private_settings

__all__ = ["marketing_dir"]

pytestmark = pytest.mark.integration

N_PUBLICATIONS = 3

# The writer: one `segmart run` tail per iteration, each stamping its tables with a run id.
WRITER = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path

    from ml.config import Settings
    from ml.delivery.publish import publish
    from ml.warehouse import connect, replace_tables

    warehouse, published_dir, n_runs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    settings = Settings(warehouse=warehouse, published_dir=published_dir)
    for _ in range(n_runs):
        # Run ids grow across the tests of this module: a reader must never see one go back.
        run = f"run-{time.time_ns()}"
        with connect(warehouse) as con:
            tables = {
                name: con.sql(
                    f"select * replace ('{run}' as model_id) from {name}"
                ).to_arrow_table()
                for name in ("marketing.segment_summary", "marketing.audience_summary")
            }
            replace_tables(con, tables)
        publish(settings)
        print(f"published {run}", flush=True)
    """
)

SNAPSHOT_SQL = """
select
    (select count(distinct model_id) from marketing.segment_summary) as n_segment_runs,
    (select min(model_id) from marketing.segment_summary) as segment_run,
    (select min(model_id) from marketing.audience_summary) as audience_run,
    (select sum(n_customers) from marketing.segment_summary) as n_scored,
    (select count(*) from core.customers) as n_customers
"""
SNAPSHOT = sa.text(SNAPSHOT_SQL)


def bi_engine(published: Path) -> sa.Engine:
    """What a BI tool configures: a duckdb_engine URL, read-only, no connection pool."""
    return sa.create_engine(f"duckdb:///{published}?access_mode=read_only", poolclass=NullPool)


@pytest.fixture(scope="module")
def settings(
    marketing_dir: Path, generated_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    settings = private_settings(marketing_dir, generated_data, tmp_path_factory.mktemp("bi"))
    publish(settings)
    return settings


@pytest.fixture
def writer(settings: Settings) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            str(settings.warehouse),
            str(settings.published_dir),
            str(N_PUBLICATIONS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def _last_run(writer: subprocess.Popen) -> str:
    """Wait for the writer; the id of the last run it published."""
    output, errors = writer.communicate(timeout=120)
    assert writer.returncode == 0, errors
    return output.splitlines()[-1].removeprefix("published ")


def test_bi_client_sees_whole_publications_while_the_pipeline_republishes(
    settings: Settings, writer: subprocess.Popen
) -> None:
    engine = bi_engine(settings.published_warehouse)
    seen: list[str] = []
    n_queries = 0
    deadline = time.monotonic() + 60
    while writer.poll() is None and time.monotonic() < deadline:
        with engine.connect() as connection:
            snapshot = connection.execute(SNAPSHOT).one()
        n_queries += 1
        assert snapshot.n_segment_runs == 1, "segment_summary mixes two runs"
        assert snapshot.segment_run == snapshot.audience_run, "tables of two runs at once"
        assert snapshot.n_scored > 0 and snapshot.n_customers > 0
        if not seen or seen[-1] != snapshot.segment_run:
            seen.append(snapshot.segment_run)
    last_run = _last_run(writer)
    assert n_queries >= N_PUBLICATIONS
    assert len(seen) >= 2, f"the reader never saw a republication: {seen}"
    runs = [int(run.removeprefix("run-")) for run in seen if run.startswith("run-")]
    assert runs == sorted(runs), "a reader went back to an older publication"

    with engine.connect() as connection:
        assert connection.execute(SNAPSHOT).one().segment_run == last_run


def test_the_published_file_refuses_writes(settings: Settings) -> None:
    with (
        bi_engine(settings.published_warehouse).connect() as connection,
        pytest.raises(sa.exc.DBAPIError, match="read-only"),
    ):
        connection.execute(sa.text("create table marketing.scribble as select 1 as x"))


def test_an_open_connection_keeps_reading_the_publication_it_opened(settings: Settings) -> None:
    engine = bi_engine(settings.published_warehouse)
    with engine.connect() as held:
        before = held.execute(SNAPSHOT).one()
        publish(settings)  # a new file is renamed over the one `held` has open
        assert held.execute(SNAPSHOT).one() == before
    assert sa.inspect(engine).has_table("segment_summary", schema="marketing")


def _stamp(settings: Settings, run: str) -> None:
    """Give the marketing summaries of the working warehouse a run id, like a new run."""
    with connect(settings.warehouse) as con:
        replace_tables(
            con,
            {
                name: con.sql(
                    f"select * replace ('{run}' as model_id) from {name}"
                ).to_arrow_table()
                for name in ("marketing.segment_summary", "marketing.audience_summary")
            },
        )


def test_a_pooled_connection_to_the_live_views_sees_each_new_publication(
    settings: Settings,
) -> None:
    # duckdb_engine's default pool, as Superset and pandas get it: one connection, kept open
    engine = sa.create_engine(f"duckdb:///{live_warehouse(settings)}?access_mode=read_only")
    with engine.connect() as connection:
        held = connection.connection.dbapi_connection
        first = connection.execute(SNAPSHOT).one()
    for run in (f"run-{time.time_ns()}", f"run-{time.time_ns()}"):
        _stamp(settings, run)
        publish(settings)
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection is held, "the pool reconnected"
            snapshot = connection.execute(SNAPSHOT).one()
        assert snapshot.segment_run == snapshot.audience_run == run
        assert snapshot.n_scored == first.n_scored and snapshot.n_customers == first.n_customers
    engine.dispose()


@pytest.fixture(scope="module")
def python_1x(shared_root: Path) -> Path:
    return duckdb1_python(shared_root)


def test_held_connections_of_1x_and_2x_clients_see_whole_publications_while_republishing(
    settings: Settings, writer: subprocess.Popen, python_1x: Path, tmp_path: Path
) -> None:
    with duckdb.connect(str(settings.published_warehouse), read_only=True) as con:
        n_scored, n_customers = con.execute(SNAPSHOT_SQL).fetchone()[3:]
    stop = tmp_path / "stop"
    clients = {"duckdb 1.x": python_1x, "duckdb 2.x": Path(sys.executable)}
    pollers = {
        client: start_poller(
            python, live_warehouse(settings), SNAPSHOT_SQL, tmp_path / f"{client}.jsonl", stop
        )
        for client, python in clients.items()
    }
    try:
        last_run = _last_run(writer)
    finally:
        stop.touch()
        for poller in pollers.values():
            _, errors = poller.communicate(timeout=60)
            assert poller.returncode == 0, errors
    for client in clients:
        lines = polled(tmp_path / f"{client}.jsonl")
        assert not [line for line in lines if "error" in line], (client, lines)
        rows = [line["row"] for line in lines]
        assert len(rows) > N_PUBLICATIONS, client
        for n_runs, segment_run, audience_run, scored, customers in rows:
            assert n_runs == 1, f"{client}: segment_summary mixes two runs"
            assert segment_run == audience_run, f"{client}: tables of two runs in one query"
            assert (scored, customers) == (n_scored, n_customers), f"{client}: a partial table"
        seen = [row[1] for k, row in enumerate(rows) if k == 0 or rows[k - 1][1] != row[1]]
        runs = [int(run.removeprefix("run-")) for run in seen if run.startswith("run-")]
        assert runs == sorted(runs), f"{client} went back to an older publication: {seen}"
        assert len(runs) >= 2, f"{client} saw too few publications: {seen}"
        assert rows[-1][1] == last_run, f"{client} did not see the last publication"


def test_superseded_publications_stay_for_the_grace_period_then_go(settings: Settings) -> None:
    root = publications_dir(settings)
    publish(settings)
    publish(settings)
    assert len(list(root.glob("publication-*"))) >= 2, "the previous publication is gone"
    publish(settings, grace=timedelta(0))
    assert [path.name for path in root.iterdir()] == [
        max(path.name for path in root.glob("publication-*"))
    ]
    with duckdb.connect(str(live_warehouse(settings)), read_only=True) as con:
        assert con.execute("select count(*) from core.customers").fetchone()[0] > 0
