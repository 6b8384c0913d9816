"""The single-query reference (also run as a child: `python -m benchmarks.run single-query`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from string import Template

import duckdb

from benchmarks.settings import N_SNAPSHOTS, SINGLE_QUERY_SQL, VOCABULARY_CSV


def single_query_sql(
    raw_dir: Path,
    as_of: date | None = None,
    horizon_days: int = 90,
    n_snapshots: int = N_SNAPSHOTS,
    snapshot_step_days: int = 30,
) -> str:
    """benchmarks/single_query.sql with its parameters filled in."""
    return Template(SINGLE_QUERY_SQL.read_text()).substitute(
        raw_dir=str(raw_dir.resolve()).replace("'", "''"),
        vocabulary_csv=str(VOCABULARY_CSV).replace("'", "''"),
        as_of=f"date '{as_of.isoformat()}'" if as_of else "cast(null as date)",
        horizon_days=int(horizon_days),
        n_snapshots=int(n_snapshots),
        snapshot_step_days=int(snapshot_step_days),
        max_money=100_000,
        max_quantity=1_000,
        min_valid_date="date '1990-01-01'",
    )


def run_single_query(
    raw_dir: Path, out: Path, memory_limit: str | None = None, **parameters: object
) -> None:
    """Run the single query into table `snapshot_features` of a fresh DuckDB file `out`.

    DuckDB's settings are the dev profile's (insertion order not preserved, DuckDB's default
    memory limit) unless `memory_limit` (e.g. "6GB") is given.
    """
    out.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {"preserve_insertion_order": False}
    if memory_limit:
        config["memory_limit"] = memory_limit
    with duckdb.connect(str(out), config=config) as con:
        con.execute(single_query_sql(raw_dir, **parameters))  # type: ignore[arg-type]


def scan_floor(raw_dir: Path) -> int:
    """Read every value of every column of every raw Parquet file once; return the rows read.

    `min` must decode each value (`count` could stop at the null masks, and `count(*)` at the
    file footer), and is about the cheapest aggregate that does: no query over these files can
    be faster than this.
    """
    rows = 0
    with duckdb.connect() as con:
        for path in sorted(raw_dir.glob("*.parquet")):
            relation = f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')"
            con.execute(f"select min(columns(*)) from {relation}").fetchall()
            (count,) = con.execute(f"select count(*) from {relation}").fetchall()[0]
            rows += count
    return rows


# `dbt parse` configured as `segmart build` configures dbt (same vars, profile, environment).
_DBT_PARSE = (
    "from ml.run.build import dbt_vars, run_dbt; from ml.config import Settings; "
    "settings = Settings(); run_dbt(settings, 'parse', dbt_vars(settings))"
)
