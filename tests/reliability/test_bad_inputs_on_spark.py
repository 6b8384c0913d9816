"""Bad input on Spark behaves as on DuckDB: the raw-data cases of test_bad_inputs.py on dbt's
`spark` target (a local session), with the same assertions where the engines can agree.

One subprocess (tests/reliability/spark_battery.py) runs every case on one JVM and one Derby
metastore: the error cases first, each a broken 5-customer shop landed and one model built,
then the dirty shop built up to the marts the assertions read (no data tests). The Spark tables
are Parquet files under spark-warehouse/, opened here as DuckDB views named as on DuckDB, so
the quarantine tests of test_bad_inputs.py run here unchanged (imported below).

Run on Spark, with the DuckDB battery's assertions:
- every bad row of the dirty shop quarantined under its rule, with its number of raw lines
  (malformed CSV lines, unparsable and out-of-range timestamps, bad amounts and quantities,
  missing and orphan keys, unknown statuses, a Parquet column of the wrong type);
- bad optional values nulled with a note (an unparsable timestamp or amount; Latin-1 bytes
  read as UTF-8 become U+FFFD, `undecodable_value`), the row kept;
- rows in = accepted + duplicates + quarantined for every raw table, duplicates as on DuckDB;
- only clean rows in core.customers and core.orders; extra columns listed in raw.files and
  dropped; an all-null column; the later reload of a customer wins;
- quarantined dates do not move the default as_of (read from int_snapshot_dates: ml's marts
  would add a minute of Spark models for the same value);
- a required file missing, a key column missing (CSV and Parquet), a header-only required
  file, both .csv and .parquet for one table, a file that is no Parquet: one named line
  (`dbt run failed: <the DuckDB battery's fragment>`), which `segmart build` prints as its
  `error:` line before exiting 1. The raw path with quotes and `); drop table` of the DuckDB
  battery is the dirty shop's path here too.
Spark only: a zero-byte orders.csv fails as a missing required table; optional tables missing
or header-only land empty and the build passes (as documented for DuckDB).

Not run on Spark, and why:
- zero-byte optional files (`zero_byte_required_file` is customers.csv, optional): no Spark
  scan lists a zero-byte file and the landing has only SQL, so Spark lands it as an absent
  table where DuckDB refuses it. A known difference, listed in the README.
- the ML gates (one customer, a single class, too few customers), the missing --raw-dir and
  the published-file checks: training, the CLI's checks and publishing run in Python on DuckDB
  whatever engine built the warehouse; nothing in them reads Spark.
- mapped or re-encoded exports (var `landing`): refused on Spark with a message (README).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ml.config import PROJECT_ROOT
from tests.reliability.conftest import Workspace
from tests.reliability.rawdirs import AS_OF
from tests.reliability.spark_battery import DIRTY_RAW, SPARK_CASES
from tests.reliability.test_bad_inputs import (  # noqa: F401 - collected here, on Spark's tables
    test_bad_optional_value_is_nulled_with_a_note_and_the_row_kept,
    test_bad_row_is_quarantined_under_its_rule,
    test_every_raw_row_is_accepted_deduplicated_or_quarantined,
    test_extra_columns_are_recorded_and_dropped_and_an_all_null_column_is_fine,
    test_only_clean_rows_reach_the_marts,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("spark"),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (apt openjdk-17)"),
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None, reason="needs the spark extra (pyspark)"
    ),
]

BATTERY_TIMEOUT = 900


@pytest.fixture(scope="module")
def spark_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the whole Spark battery once; its directory holds results.json and the tables."""
    root = tmp_path_factory.mktemp("spark_battery")
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.spark_battery", str(root)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=BATTERY_TIMEOUT,
    )
    assert done.returncode == 0, _without_java_stacks(done.stderr + done.stdout)
    return root


def _without_java_stacks(output: str) -> str:
    lines = [line for line in output.splitlines() if not line.lstrip().startswith("at ")]
    return "\n".join(lines[-60:])


@pytest.fixture(scope="module")
def results(spark_root: Path) -> dict[str, dict]:
    return json.loads((spark_root / "results.json").read_text())


@pytest.fixture(scope="module")
def dirty_build(spark_root: Path) -> Workspace:
    """The Spark build of the dirty shop, as the DuckDB battery's tests expect it."""
    return Workspace(root=spark_root, raw_dir=spark_root / DIRTY_RAW)


@pytest.fixture(scope="module")
def dirty(spark_root: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Every Spark table of the dirty build as a DuckDB view `schema.table`."""
    with duckdb.connect() as con:
        for schema_dir in sorted((spark_root / "spark-warehouse").glob("*.db")):
            schema = schema_dir.name.removesuffix(".db")
            con.execute(f"create schema if not exists {schema}")
            for table_dir in sorted(schema_dir.iterdir()):
                if any(table_dir.rglob("*.parquet")):
                    files = str(table_dir / "**" / "*.parquet").replace("'", "''")
                    con.execute(
                        f"create view {schema}.{table_dir.name} as select * from"
                        f" read_parquet('{files}', hive_partitioning = true)"
                    )
        yield con


def test_quarantined_dates_do_not_move_the_default_as_of_on_spark(
    dirty: duckdb.DuckDBPyConnection,
) -> None:
    # the 2200 order and event are quarantined, so as_of is the day after the latest good order
    assert dirty.execute(
        "select distinct as_of_on from intermediate.int_snapshot_dates"
    ).fetchall() == [(AS_OF,)]


ERROR_CASES = [case for case, (_, fragments) in SPARK_CASES.items() if fragments is not None]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_raw_directory_fails_on_spark_with_one_named_line(
    results: dict[str, dict], case: str
) -> None:
    _, fragments = SPARK_CASES[case]
    outcome = results[case]
    assert outcome["failed"], f"the build passed: {outcome}"
    message = outcome["message"]
    assert message.startswith("dbt run failed: "), message
    assert "\n" not in message and "Traceback" not in message and "at org." not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def test_optional_tables_missing_or_header_only_build_on_spark(
    results: dict[str, dict],
) -> None:
    outcome = results["optional_tables_missing_or_header_only"]
    assert not outcome["failed"], outcome["message"]
    # raw.files lists the files read: the header-only products file, not the absent ones
    assert outcome["raw_files"] == ["orders", "products"]
    rows = outcome["raw_rows"]
    assert rows.pop("orders") > 0
    assert rows == {
        "customers": 0,
        "order_items": 0,
        "products": 0,
        "web_events": 0,
        "campaign_touches": 0,
    }
