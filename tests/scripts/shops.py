"""Helpers that read a generated shop back for the generator tests."""

from __future__ import annotations

from pathlib import Path

import duckdb

from scripts.generate import RAW_TABLES


def connect(out: Path) -> duckdb.DuckDBPyConnection:
    """Load a generated Parquet shop's raw tables and ground-truth customers into DuckDB."""
    connection = duckdb.connect()
    for name in RAW_TABLES:
        path = out / "raw" / f"{name}.parquet"
        connection.execute(f"create table {name} as select * from read_parquet('{path}')")
    truth = out / "ground_truth" / "customers.parquet"
    connection.execute(f"create table truth as select * from read_parquet('{truth}')")
    return connection


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    """Run a query that returns one value."""
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]
