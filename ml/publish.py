"""Publish the BI-facing tables where readers never block the pipeline.

DuckDB allows one writer or many readers, never both, so BI tools do not open the working
warehouse. After a good run the BI tables are copied into a fresh DuckDB file that is renamed
over the published one: a reader that has the old file open keeps reading it whole, a new
reader sees the new one, and nobody ever sees a mix or a half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ml.config import Settings
from ml.warehouse import connect, table_exists

# Facts and dimensions BI reads; everything in schema `marketing` is published too. Staging,
# quarantine (raw records hold PII) and the ML marts stay in the working warehouse.
BI_TABLES = (
    "core.customers",
    "core.orders",
    "core.data_reconciliation",
    "predictions.customer_scores",
    "predictions.segment_profiles",
    "predictions.feature_drift",
    "predictions.model_runs",
)
BI_SCHEMAS = ("marketing",)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def bi_tables(settings: Settings) -> list[str]:
    """The BI-facing tables present in the working warehouse."""
    with connect(settings.warehouse, read_only=True) as con:
        present = [name for name in BI_TABLES if table_exists(con, name)]
        rows = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema in (select unnest(?)) and table_type = 'BASE TABLE'"
            " order by 1",
            [list(BI_SCHEMAS)],
        ).fetchall()
    return present + [name for (name,) in rows]


def publish(settings: Settings) -> Path:
    """Copy the BI tables into a new file and atomically swap it in; return its path."""
    target = settings.published_warehouse
    target.parent.mkdir(parents=True, exist_ok=True)
    # A run killed mid-publish leaves its half-written copy behind; it was never swapped in.
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tables = bi_tables(settings)
    try:
        with connect(settings.warehouse) as con:
            con.execute(f"attach {_sql_string(str(staging))} as bi")
            for name in tables:
                schema = name.split(".")[0]
                con.execute(f"create schema if not exists bi.{schema}")
                con.execute(f"create table bi.{name} as select * from {name}")
            con.execute("detach bi")
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target
