"""A BI client reading the published file while the pipeline writes and republishes.

The client connects the way Superset does: SQLAlchemy with duckdb_engine, read-only, a fresh
connection per query (no pool). Meanwhile another process - like `segmart run` - replaces the
marketing tables in the working warehouse and publishes them, again and again. Every query must
succeed and see one complete publication: never a missing table, never tables of two runs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ml.config import Settings
from ml.publish import publish
from tests.marketing.scored import marketing_dir, private_settings

__all__ = ["marketing_dir"]

pytestmark = pytest.mark.integration

N_PUBLICATIONS = 3

# The writer: one `segmart run` tail per iteration, each stamping its tables with a run id.
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from ml.config import Settings
    from ml.publish import publish
    from ml.warehouse import connect, replace_tables

    warehouse, published_dir, n_runs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    settings = Settings(warehouse=warehouse, published_dir=published_dir)
    for run in range(1, n_runs + 1):
        with connect(warehouse) as con:
            tables = {
                name: con.sql(
                    f"select * replace ('run-{run}' as model_id) from {name}"
                ).to_arrow_table()
                for name in ("marketing.segment_summary", "marketing.audience_summary")
            }
            replace_tables(con, tables)
        publish(settings)
        print(f"published run-{run}", flush=True)
    """
)

SNAPSHOT = sa.text(
    """
    select
        (select count(distinct model_id) from marketing.segment_summary) as n_segment_runs,
        (select min(model_id) from marketing.segment_summary) as segment_run,
        (select min(model_id) from marketing.audience_summary) as audience_run,
        (select sum(n_customers) from marketing.segment_summary) as n_scored,
        (select count(*) from core.customers) as n_customers
    """
)


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
    _, errors = writer.communicate(timeout=60)
    assert writer.returncode == 0, errors
    assert n_queries >= N_PUBLICATIONS
    assert len(seen) >= 2, f"the reader never saw a republication: {seen}"
    runs = [int(run.removeprefix("run-")) for run in seen if run.startswith("run-")]
    assert runs == sorted(runs), "a reader went back to an older publication"

    with engine.connect() as connection:
        assert connection.execute(SNAPSHOT).one().segment_run == f"run-{N_PUBLICATIONS}"


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
