"""The same dbt project on Spark: the `warehouse` selector built on DuckDB and on a local Spark
session (dbt-spark, `method: session`) from the same raw files gives the same tables.

Spark runs dbt in a subprocess from a scratch directory: the session keeps a Derby metastore
and its tables there (SEGMART_SPARK_DIR), and Derby admits one process at a time. The Spark
tables are Parquet files under spark-warehouse/, read here with pyarrow: no second JVM.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from ml.build import run_dbt
from ml.config import DBT_PROJECT_DIR, PROFILES_DIR
from tests.conftest import AS_OF, HORIZON_DAYS, make_settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("spark"),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (apt openjdk-17)"),
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None, reason="needs the spark extra (pyspark)"
    ),
]

N_CUSTOMERS = 300
SEED = 7
# Data tests are left out of both builds: on a local session each costs about a second.
BUILD = "build --selector warehouse --exclude-resource-type unit_test --exclude-resource-type test"
DBT_VARS = f'{{"as_of": "{AS_OF.isoformat()}", "horizon_days": {HORIZON_DAYS}}}'
COUNTED_TABLES = (
    "staging.base_shop__customer_ids",
    "staging.stg_shop__customers",
    "staging.stg_shop__customer_versions",
    "staging.stg_shop__orders",
    "staging.stg_shop__order_items",
    "staging.stg_shop__products",
    "staging.stg_shop__web_events",
    "staging.stg_shop__campaign_touches",
    "core.customers",
    "core.orders",
    "core.quarantined_rows",
    "core.quarantined_values",
    "core.data_reconciliation",
)
FEATURE_MARTS = {
    "ml.customer_features": ["customer_id"],
    "ml.training_examples": ["customer_id", "snapshot_on"],
}
# A hash over the statistics' text: DuckDB and Java print doubles differently.
ENGINE_SPECIFIC_COLUMNS = {"feature_stats_id"}
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated shop as CSV, dirt included (malformed lines, bad values, copies)."""
    from scripts.generate import generate

    out = tmp_path_factory.mktemp("spark_shop")
    generate(N_CUSTOMERS, SEED, out, "csv")
    return out / "raw"


@pytest.fixture(scope="module")
def duckdb_warehouse(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark_duckdb")
    settings = make_settings(raw_dir, root / "segmart.duckdb", root)
    run_dbt(settings, BUILD)
    return settings.warehouse


@pytest.fixture(scope="module")
def spark_warehouse(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build on Spark; returns the spark-warehouse directory of its tables."""
    root = tmp_path_factory.mktemp("spark_session")
    env = os.environ | {
        "SEGMART_RAW_DIR": str(raw_dir),
        "SEGMART_SPARK_DIR": str(root),
        "DBT_TARGET_PATH": str(root / "target"),
    }
    dbt = Path(sys.executable).with_name("dbt")
    command = [
        str(dbt),
        *BUILD.split(),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(PROFILES_DIR),
        "--target",
        "spark",
        "--vars",
        DBT_VARS,
        "--log-path",
        str(root / "logs"),
    ]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, _dbt_failures(done.stdout)
    return root / "spark-warehouse"


def _dbt_failures(stdout: str) -> str:
    """dbt's summary of what failed, without Spark's Java stack traces."""
    lines = [line for line in stdout.splitlines() if not line.lstrip().startswith("at ")]
    return "\n".join(lines[-80:])


def read_duckdb(warehouse: Path, table: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(f"select * from {table}").df()


def read_spark(spark_dir: Path, table: str) -> pd.DataFrame:
    schema, name = table.split(".")
    table_dir = spark_dir / f"{schema}.db" / name
    return ds.dataset(table_dir, partitioning="hive").to_table().to_pandas()


@pytest.mark.parametrize("table", COUNTED_TABLES)
def test_staging_and_core_tables_have_the_same_rows(
    duckdb_warehouse: Path, spark_warehouse: Path, table: str
) -> None:
    assert len(read_spark(spark_warehouse, table)) == len(read_duckdb(duckdb_warehouse, table))


def quarantine_counts(rows: pd.DataFrame) -> dict[tuple[str, str], int]:
    grouped = rows.groupby(["source_table", "rule"])["n_raw_lines"].sum()
    return {key: int(value) for key, value in grouped.items()}


def test_quarantine_counts_by_reason_match(duckdb_warehouse: Path, spark_warehouse: Path) -> None:
    on_duckdb = quarantine_counts(read_duckdb(duckdb_warehouse, "core.quarantined_rows"))
    on_spark = quarantine_counts(read_spark(spark_warehouse, "core.quarantined_rows"))
    assert on_duckdb, "the generated shop has dirt: something must be quarantined"
    assert on_spark == on_duckdb


def test_every_raw_table_reconciles_on_spark(spark_warehouse: Path) -> None:
    reconciliation = read_spark(spark_warehouse, "core.data_reconciliation")
    assert len(reconciliation) == 6
    assert reconciliation["is_reconciled"].all(), reconciliation.to_string()


def comparable(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sorted by the grain, dates as dates, engine-specific columns left out."""
    frame = frame.drop(columns=[c for c in frame.columns if c in ENGINE_SPECIFIC_COLUMNS])
    for column in frame.columns:
        if column.endswith(("_on", "as_of")) or column == "feature_stats_fitted_as_of":
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame.sort_values(keys).reset_index(drop=True)


def mismatched_columns(on_duckdb: pd.DataFrame, on_spark: pd.DataFrame) -> list[str]:
    """Columns whose values differ: numbers beyond TOLERANCE, anything else at all."""
    mismatched = []
    for column in on_duckdb.columns:
        left, right = on_duckdb[column], on_spark[column]
        if pd.api.types.is_numeric_dtype(left) and not pd.api.types.is_bool_dtype(left):
            same = np.allclose(
                left.to_numpy(float), right.to_numpy(float), rtol=0, atol=TOLERANCE, equal_nan=True
            )
        else:
            same = left.astype(object).tolist() == right.astype(object).tolist()
        if not same:
            mismatched.append(column)
    return mismatched


@pytest.mark.parametrize("mart", sorted(FEATURE_MARTS))
def test_feature_marts_are_equal(duckdb_warehouse: Path, spark_warehouse: Path, mart: str) -> None:
    keys = FEATURE_MARTS[mart]
    on_duckdb = comparable(read_duckdb(duckdb_warehouse, mart), keys)
    on_spark = comparable(read_spark(spark_warehouse, mart), keys)
    assert list(on_spark.columns) == list(on_duckdb.columns)
    assert len(on_duckdb) > 0
    assert len(on_spark) == len(on_duckdb)
    assert mismatched_columns(on_duckdb, on_spark) == []
