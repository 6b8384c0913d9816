"""The raw-data cases of the bad-input battery on a local Spark session, all in one process.

Run as `python -m tests.reliability.spark_battery ROOT` (test_bad_inputs_on_spark.py does):
one JVM and one Derby metastore under ROOT serve every case, because starting a session costs
about 15 s and Derby admits one process at a time. Each case builds through `ml.run.build.run_dbt`
with dbt's `spark` target, the function `segmart build` runs: the SegmartError it raises is the
one `error:` line the CLI prints before exiting 1. In order:

1. each case of SPARK_CASES breaks a tiny clean shop and runs the landing and one cheap model;
2. the dirty shop (rawdirs.write_dirty_shop) is built, only the nodes the quarantine
   assertions read, and its tables stay in ROOT/spark-warehouse as Parquet.

ROOT/results.json holds, per case, whether the build failed, its message, its seconds and, when
it passed, the row count of each raw table and the tables raw.files lists.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.dataset as ds

from ml.config import Settings
from ml.errors import SegmartError
from ml.run.build import run_dbt
from tests.reliability.rawdirs import write_clean_shop, write_dirty_shop
from tests.reliability.test_bad_inputs import ERROR_CASES, RAW_TABLES

# The quote-laden path of the DuckDB battery: Spark's landing splices it into SQL too.
DIRTY_RAW = Path("o'brien's shop'); drop table raw.files; --") / "raw"
# What the quarantine assertions read, and everything upstream of it. Data tests are left
# out: on a local session each costs about a second, and the DuckDB battery runs them.
DIRTY_BUILD = "build --exclude-resource-type test"
DIRTY_SELECTION = (
    "+data_reconciliation +quarantined_values +customers +orders +stg_shop__customers"
    " +int_snapshot_dates"
)
# A case fails in the landing (an on-run-start hook), before any model: one cheap model keeps
# a case that passes from building the whole warehouse.
CASE_SELECTION = "base_shop__customer_ids"

# No Spark scan lists a zero-byte file (its file index drops them before reading), and the
# landing has only SQL to list raw_dir with: an empty file is no file on Spark. DuckDB refuses
# an empty optional file ("lacks required column(s) ... (it has: no header)"); Spark lands it
# as an absent optional table. An empty required file fails on both, with other words.
NOT_ON_SPARK = {"zero_byte_required_file", "zero_byte_optional_file"}


def _optional_tables_missing_or_header_only(raw: Path) -> None:
    for table in RAW_TABLES:
        if table not in ("orders", "products"):
            next(raw.glob(f"{table}.*")).unlink()
    (raw / "products.csv").write_text("product_id,category,brand,list_price\n")


def _empty_orders(raw: Path) -> None:
    (raw / "orders.csv").write_bytes(b"")


# case -> (how it breaks a clean shop, fragments of the error; none: the build must pass)
SPARK_CASES: dict[str, tuple[Callable[[Path], None], list[str] | None]] = {
    **{case: spec for case, spec in ERROR_CASES.items() if case not in NOT_ON_SPARK},
    "zero_byte_orders_file": (_empty_orders, ["required raw table orders not found"]),
    "optional_tables_missing_or_header_only": (_optional_tables_missing_or_header_only, None),
}


def spark_settings(root: Path, raw_dir: Path) -> Settings:
    """Settings for dbt's `spark` target; the DuckDB paths only hold the hash key."""
    return Settings(
        raw_dir=raw_dir,
        warehouse=root / "workspace" / "unused.duckdb",
        models_dir=root / "workspace" / "models",
        target="spark",
    )


def raw_table_rows(spark_warehouse: Path) -> dict[str, int]:
    """Rows of each landed raw table (Parquet tables; a Parquet raw file lands as a view)."""
    tables = spark_warehouse / "raw.db"
    return {
        table: ds.dataset(tables / table).count_rows()
        for table in RAW_TABLES
        if (tables / table).is_dir()
    }


def run_case(root: Path, case: str) -> dict:
    """Break a clean 5-customer shop the case's way and build it; what the build said."""
    breaks, _ = SPARK_CASES[case]
    raw_dir = root / "cases" / "raw"
    shutil.rmtree(raw_dir, ignore_errors=True)
    breaks(write_clean_shop(raw_dir, n_customers=5))
    settings = spark_settings(root, raw_dir)
    started = time.perf_counter()
    outcome: dict = {"failed": False, "message": ""}
    try:
        run_dbt(
            settings,
            "run",
            variables={"horizon_days": settings.horizon_days},
            select=CASE_SELECTION,
        )
    except SegmartError as error:
        outcome = {"failed": True, "message": str(error)}
    else:
        files = ds.dataset(root / "spark-warehouse" / "raw.db" / "files").to_table()
        outcome["raw_files"] = sorted(files.column("table_name").to_pylist())
        outcome["raw_rows"] = raw_table_rows(root / "spark-warehouse")
    return outcome | {"seconds": round(time.perf_counter() - started, 1)}


def build_dirty_shop(root: Path) -> dict:
    """Build the dirty shop with the default as_of (from its data)."""
    settings = spark_settings(root, write_dirty_shop(root / DIRTY_RAW))
    started = time.perf_counter()
    run_dbt(
        settings,
        DIRTY_BUILD,
        variables={"horizon_days": settings.horizon_days},
        select=DIRTY_SELECTION,
        unit_tests=False,
    )
    return {"seconds": round(time.perf_counter() - started, 1)}


def main(root: Path) -> None:
    os.environ["SEGMART_SPARK_DIR"] = str(root)
    os.environ["DBT_TARGET_PATH"] = str(root / "dbt-target")
    os.chdir(root)  # the session writes derby.log and the like to its working directory
    results = {case: run_case(root, case) for case in SPARK_CASES}
    results["dirty_build"] = build_dirty_shop(root)
    (root / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
