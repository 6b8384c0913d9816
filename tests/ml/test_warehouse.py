"""The warehouse connection: DuckDB's memory limit comes from SEGMART_MEMORY_LIMIT."""

from __future__ import annotations

from pathlib import Path

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
