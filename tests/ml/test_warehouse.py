"""The warehouse connection: DuckDB's memory limit comes from SEGMART_MEMORY_LIMIT."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ml import warehouse
from ml.warehouse import WarehouseError


def _memory_limit(path: Path, cap: str | None = None) -> str:
    with warehouse.connect(path, memory_cap=cap) as con:
        return con.execute("select current_setting('memory_limit')").fetchall()[0][0]


def test_connections_use_the_configured_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMART_MEMORY_LIMIT", "1GB")
    one_gb = _memory_limit(tmp_path / "a.duckdb")
    monkeypatch.setenv("SEGMART_MEMORY_LIMIT", "2GB")
    two_gb = _memory_limit(tmp_path / "b.duckdb")
    # DuckDB reports 10^9 bytes in binary units.
    assert (one_gb, two_gb) == ("953.6 MiB", "1.8 GiB")


def test_a_memory_limit_that_is_not_a_size_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMART_MEMORY_LIMIT", "3GB'; drop table x; --")
    with pytest.raises(WarehouseError, match="SEGMART_MEMORY_LIMIT"):
        _memory_limit(tmp_path / "c.duckdb")


def test_a_cap_lowers_the_limit_but_never_raises_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMART_MEMORY_LIMIT", "2GB")
    assert _memory_limit(tmp_path / "d.duckdb", cap="1GiB") == "1.0 GiB"
    monkeypatch.setenv("SEGMART_MEMORY_LIMIT", "500MB")
    assert _memory_limit(tmp_path / "e.duckdb", cap="1GiB") == "476.8 MiB"


def test_appended_rows_match_columns_by_name_and_add_the_ones_an_older_table_lacks(tmp_path):
    path = tmp_path / "w.duckdb"
    with warehouse.connect(path) as con:
        warehouse.append_rows(con, "predictions.runs", pa.table({"id": ["a"], "auc": [0.8]}))
        newer = pa.table({"note": ["why"], "auc": [0.9], "id": ["b"]})
        warehouse.append_rows(con, "predictions.runs", newer)
        rows = con.execute("select id, auc, note from predictions.runs order by id").fetchall()
    assert rows == [("a", 0.8, None), ("b", 0.9, "why")]


def test_a_failed_append_keeps_the_tables_replaced_in_its_transaction(tmp_path):
    # A promotion writes its log row and the champion's scoring SQL together: neither alone.
    path = tmp_path / "w.duckdb"
    with warehouse.connect(path) as con:
        warehouse.replace_tables(con, {"predictions.sql": pa.table({"model": ["old"]})})
        warehouse.append_rows(con, "predictions.log", pa.table({"n": [1]}))
        with pytest.raises(duckdb.ConversionException):
            warehouse.replace_tables(
                con,
                {"predictions.sql": pa.table({"model": ["new"]})},
                appends={"predictions.log": pa.table({"n": ["not a number"]})},
            )
        assert con.execute("select model from predictions.sql").fetchall() == [("old",)]
        warehouse.replace_tables(
            con,
            {"predictions.sql": pa.table({"model": ["newer"]})},
            appends={"predictions.log": pa.table({"n": [2]})},
        )
        models = con.execute("select model from predictions.sql").fetchall()
        log = con.execute("select n from predictions.log order by n").fetchall()
    assert models == [("newer",)]
    assert log == [(1,), (2,)]
