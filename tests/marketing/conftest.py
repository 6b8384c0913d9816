"""Fixtures of the marketing tests: the shared scored warehouse with the marketing marts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ml.config import Settings
from tests.marketing.scored import marketing_dir, shared_settings

__all__ = ["marketing_dir"]


@pytest.fixture(scope="module")
def marketing(
    marketing_dir: Path, generated_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings reading the shared marketing warehouse; reports and exports go to a tmp dir."""
    return shared_settings(marketing_dir, generated_data, tmp_path_factory.mktemp("outputs"))


@pytest.fixture(scope="module")
def con(marketing: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the shared marketing warehouse."""
    with duckdb.connect(str(marketing.warehouse), read_only=True) as connection:
        yield connection
