"""A local Spark build's tables (Parquet under spark-warehouse/) copied into DuckDB, no JVM."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.errors import SegmartError
from ml.spark_marts import import_local_build, read_local_spark_table


def _write_spark_table(spark_warehouse: Path, name: str, partitions: dict[str, pa.Table]) -> None:
    """As Spark lays a table out: <schema>.db/<table>/[<partition>=<value>/]part-*.parquet."""
    schema, table = name.split(".")
    for partition, data in partitions.items():
        folder = spark_warehouse / f"{schema}.db" / table / partition
        folder.mkdir(parents=True)
        pq.write_table(data, folder / "part-00000.parquet")


def test_a_date_partition_is_read_back_as_a_date(tmp_path: Path) -> None:
    stats = pa.table({"feature": ["n_orders"], "center": [1.5]})
    _write_spark_table(
        tmp_path,
        "ml.feature_stats",
        {"fitted_as_of=2025-07-01": stats, "fitted_as_of=2025-04-02": stats},
    )
    table = read_local_spark_table(tmp_path, "ml.feature_stats")
    assert table.schema.field("fitted_as_of").type == pa.date32()
    assert sorted(table.column("fitted_as_of").to_pylist()) == [date(2025, 4, 2), date(2025, 7, 1)]


def test_the_tables_land_in_duckdb_with_their_types(tmp_path: Path) -> None:
    examples = pa.table(
        {
            "customer_id": ["C1", "C2"],
            "snapshot_on": [date(2025, 1, 1)] * 2,
            "n_orders": [1.0, 2.0],
        }
    )
    _write_spark_table(tmp_path / "spark", "ml.training_examples", {"": examples})
    copied = import_local_build(
        tmp_path / "spark", tmp_path / "segmart.duckdb", tables=["ml.training_examples"]
    )
    assert copied == {"ml.training_examples": 2}
    with duckdb.connect(str(tmp_path / "segmart.duckdb"), read_only=True) as con:
        assert con.execute(
            "select customer_id, snapshot_on, n_orders from ml.training_examples order by 1"
        ).fetchall() == [("C1", date(2025, 1, 1), 1.0), ("C2", date(2025, 1, 1), 2.0)]


def test_a_table_the_spark_build_lacks_is_named(tmp_path: Path) -> None:
    with pytest.raises(SegmartError, match=r"ml\.daily_revenue is not in the Spark warehouse"):
        read_local_spark_table(tmp_path, "ml.daily_revenue")
