"""Every raw row is accounted for: rows in = accepted + duplicates removed + quarantined.

The rows in are counted from the raw files themselves (Parquet metadata; for CSV the physical
data lines, so a malformed record spanning two lines counts twice), never from the warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ml.run.build import dbt_vars, run_dbt
from scripts.generate import RAW_TABLES, generate
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reconciliation_csv")]

N_CSV_CUSTOMERS = 400
CSV_SEED = 3


@dataclass(frozen=True)
class Accounted:
    """How the warehouse accounts for one raw table's rows."""

    n_accepted: int
    n_duplicates: int
    n_quarantined: int
    n_raw_rows_reported: int

    @property
    def total(self) -> int:
        return self.n_accepted + self.n_duplicates + self.n_quarantined


def _rows_in_file(path: Path) -> int:
    """Rows of a Parquet file; physical data lines of a CSV file (header excluded)."""
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    data = path.read_bytes()
    n_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return n_lines - 1


def _accounted(warehouse: Path, table: str) -> Accounted:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        n_accepted, n_duplicates = con.execute(
            f"select count(*), coalesce(sum(n_loaded_copies - 1), 0)"
            f" from staging.stg_shop__{table}"
        ).fetchall()[0]
        (n_quarantined,) = con.execute(
            "select coalesce(sum(n_raw_lines), 0) from core.quarantined_rows"
            " where source_table = ?",
            [table],
        ).fetchall()[0]
        (n_reported,) = con.execute(
            "select n_raw_rows from core.data_reconciliation where source_table = ?", [table]
        ).fetchall()[0]
    return Accounted(int(n_accepted), int(n_duplicates), int(n_quarantined), int(n_reported))


@pytest.mark.parametrize("table", RAW_TABLES)
def test_parquet_rows_in_equal_rows_accepted_duplicated_or_quarantined(
    built_warehouse_dir: Path, generated_data: Path, table: str
) -> None:
    n_in_file = _rows_in_file(generated_data / "raw" / f"{table}.parquet")
    accounted = _accounted(built_warehouse_dir / "segmart.duckdb", table)

    assert n_in_file == accounted.total, accounted
    assert accounted.n_raw_rows_reported == n_in_file


@dataclass(frozen=True)
class CsvBuild:
    raw_dir: Path
    ground_truth_dir: Path
    warehouse: Path


@pytest.fixture(scope="module")
def csv_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CsvBuild]:
    """A small generated CSV shop (with malformed lines), built up to the reconciliation mart."""
    root = tmp_path_factory.mktemp("reconciliation_csv")
    generate(N_CSV_CUSTOMERS, CSV_SEED, root / "data", "csv")
    settings = make_settings(root / "data" / "raw", root / "segmart.duckdb", root)
    with pytest.MonkeyPatch.context() as patch:
        # A private dbt target dir: concurrent test workers must not share artifacts.
        patch.setenv("DBT_TARGET_PATH", str(root / "target"))
        # Unit tests do not depend on the data (the session build runs them); cautious: only
        # tests whose every parent is selected.
        run_dbt(
            settings,
            "build --exclude-resource-type unit_test --indirect-selection cautious",
            dbt_vars(settings),
            select="+data_reconciliation",
        )
    yield CsvBuild(root / "data" / "raw", root / "data" / "ground_truth", settings.warehouse)


@pytest.mark.parametrize("table", RAW_TABLES)
def test_csv_lines_in_equal_rows_accepted_duplicated_or_quarantined(
    csv_build: CsvBuild, table: str
) -> None:
    n_in_file = _rows_in_file(csv_build.raw_dir / f"{table}.csv")
    accounted = _accounted(csv_build.warehouse, table)

    assert n_in_file == accounted.total, accounted
    assert accounted.n_raw_rows_reported == n_in_file


def test_malformed_csv_lines_are_quarantined_with_their_rule(csv_build: CsvBuild) -> None:
    planted = json.loads((csv_build.ground_truth_dir / "malformed_csv_lines.json").read_text())
    with duckdb.connect(str(csv_build.warehouse), read_only=True) as con:
        quarantined = con.execute(
            "select source_table, rule, n_raw_lines from core.quarantined_rows"
            " where rule like 'malformed_csv_line: %'"
        ).fetchall()
    lines_per_table: dict[str, int] = {}
    for source_table, _, n_raw_lines in quarantined:
        lines_per_table[source_table] = lines_per_table.get(source_table, 0) + n_raw_lines

    assert sum(len(lines) for lines in planted.values()) > 0, "the CSV set has no malformed lines"
    assert lines_per_table == {table: len(lines) for table, lines in planted.items()}
    assert {rule for _, rule, _ in quarantined} <= {
        "malformed_csv_line: too many columns",
        "malformed_csv_line: missing columns",
        "malformed_csv_line: unquoted value",
    }
