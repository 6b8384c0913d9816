"""The ML marts of a Spark build, brought to the driver through Arrow.

Training, Python scoring and the report run on the driver and read a DuckDB warehouse
(`ml.warehouse`). A Spark build keeps its marts in Spark: this module reads the few tables the
driver reads as Arrow tables and writes them, in one transaction, into a local DuckDB
warehouse that `segmart train` then reads as it reads a DuckDB build. Training samples its
examples there (`ml.modelling.examples.customer_sample`), as on a DuckDB build.

A local session (`method: session`) keeps its tables as Parquet under spark-warehouse/: pyarrow
reads them without a JVM. On a cluster the same tables come from `spark.sql(...).toArrow()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from ml import warehouse
from ml.errors import SegmartError
from ml.modelling.examples import TRAINING_TABLE
from ml.modelling.input_overlap import SCORING_TABLE
from ml.modelling.training import STATS_TABLE
from ml.value.customer_value import VALUE_INPUTS_TABLE
from ml.value.seasonality import DAILY_REVENUE_TABLE

# What training reads from the warehouse build (it writes predictions.* itself).
DRIVER_TABLES = (
    TRAINING_TABLE,
    SCORING_TABLE,
    STATS_TABLE,
    VALUE_INPUTS_TABLE,
    DAILY_REVENUE_TABLE,
)


def read_local_spark_table(spark_warehouse: Path, name: str) -> pa.Table:
    """A table of a local session's spark-warehouse/ (Parquet, partitions as columns)."""
    schema, table = name.split(".")
    location = spark_warehouse / f"{schema}.db" / table
    if not location.is_dir():
        raise SegmartError(
            f"{name} is not in the Spark warehouse {spark_warehouse}: build it first"
            " (dbt build --selector warehouse --target spark)"
        )
    dataset = ds.dataset(location, partitioning="hive")
    return _dates_in_partitions(dataset.to_table(), dataset.partitioning)


def _dates_in_partitions(table: pa.Table, partitioning: ds.Partitioning | None) -> pa.Table:
    """Date partitions back as dates: Hive keeps a partition's values as text in directory names.

    Dates are the partitions named as the house names dates (`*_on`, `*as_of`).
    """
    for field in partitioning.schema if partitioning is not None else []:
        if field.name.endswith(("_on", "as_of")) and pa.types.is_string(field.type):
            index = table.schema.get_field_index(field.name)
            dates = table.column(index).cast(pa.date32())
            table = table.set_column(index, pa.field(field.name, pa.date32()), dates)
    return table


def copy_to_duckdb(tables: dict[str, pa.Table], duckdb_warehouse: Path) -> None:
    """Replace these tables of a DuckDB warehouse, all or none."""
    duckdb_warehouse.parent.mkdir(parents=True, exist_ok=True)
    with warehouse.connect(duckdb_warehouse) as con:
        warehouse.replace_tables(con, tables)


def import_local_build(
    spark_warehouse: Path, duckdb_warehouse: Path, tables: Iterable[str] = DRIVER_TABLES
) -> dict[str, int]:
    """Copy a local Spark build's driver tables into a DuckDB warehouse; rows per table."""
    read = {name: read_local_spark_table(spark_warehouse, name) for name in tables}
    copy_to_duckdb(read, duckdb_warehouse)
    return {name: table.num_rows for name, table in read.items()}
