"""Shared generated shops for the generator tests (each built once per session)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from scripts.generate import generate
from tests.scripts.shops import connect


@pytest.fixture(scope="session")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A standard Parquet shop of 20,000 customers (seed 5)."""
    out = tmp_path_factory.mktemp("large")
    generate(20_000, seed=5, out_dir=out)
    return out


@pytest.fixture(scope="session")
def con(large: Path) -> duckdb.DuckDBPyConnection:
    """The large shop's raw tables and ``truth`` (ground-truth customers) in DuckDB."""
    return connect(large)
