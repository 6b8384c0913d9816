"""The marts of a Spark build, brought to the driver through Arrow.

Training, Python scoring, the report and the exports run on the driver and read a DuckDB
warehouse (`ml.warehouse`). A Spark build keeps its marts in Spark: this module reads the
tables the driver reads as Arrow tables and writes them, in one transaction, into a local
DuckDB warehouse that `segmart train`, `segmart report` and `segmart export` then read as they
read a DuckDB build (`segmart import-spark`).

Two ways to reach the tables. `read_spark_build` asks a live SparkSession for them
(`DataFrame.toArrow`): a cluster's through Spark Connect (`remote_session`), or a local build's
through its Hive metastore (`local_session`, configured as profiles.yml's `spark` output).
There the training examples are sampled in Spark, with training's own customer sample
(`ml.modelling.examples.customer_sample`), so at most about `max_training_rows` cross.
`import_local_build` reads a local build's Parquet files with pyarrow instead: no JVM, and
every row crosses.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds

from ml import warehouse
from ml.errors import SegmartError
from ml.modelling.examples import SAMPLE_HASH_BITS, TRAINING_TABLE, customer_sample
from ml.modelling.input_overlap import SCORING_TABLE
from ml.modelling.training import STATS_TABLE
from ml.value.customer_value import VALUE_INPUTS_TABLE
from ml.value.seasonality import DAILY_REVENUE_TABLE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# What training reads from the warehouse build (it writes predictions.* itself).
DRIVER_TABLES = (
    TRAINING_TABLE,
    SCORING_TABLE,
    STATS_TABLE,
    VALUE_INPUTS_TABLE,
    DAILY_REVENUE_TABLE,
)
# What the report, the exports and the BI summaries read, when the Spark build made them (the
# `spark` selector, after a promotion): the SQL scores and, below, every marketing mart.
SCORE_TABLES = (
    "predictions.customer_scores",
    "predictions.customer_scores_sql",
    "predictions.segment_profiles",
)
MARKETING_SCHEMA = "marketing"
BUILD_WAREHOUSE = "dbt build --selector warehouse --target spark"
BUILD_SCORES = "dbt build --selector spark --target spark"


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


# --- A live SparkSession: a cluster through Spark Connect, or a local build's metastore ---


@dataclass(frozen=True)
class SparkImport:
    """What `import_spark_build` copied: rows per table, and what it sampled or left out."""

    rows: dict[str, int]
    n_training_rows_on_spark: int
    missing: tuple[str, ...]

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(
            f"{name} is not in the Spark build: not copied (`{BUILD_SCORES}` builds it once a"
            " champion is promoted)"
            for name in self.missing
        )


def local_session_conf(spark_dir: Path) -> dict[str, str]:
    """The settings of profiles.yml's `spark` output (`method: session`) for `spark_dir`.

    The metastore is opened, never created: a wrong directory fails instead of showing an
    empty catalog.
    """
    return {
        "spark.master": f"local[{os.environ.get('SEGMART_SPARK_CORES', '2')}]",
        "spark.driver.memory": os.environ.get("SEGMART_SPARK_MEMORY", "2g"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
        # The command shows its own progress: no stage bars through it on stderr.
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(spark_dir / "spark-warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={spark_dir / 'metastore_db'};create=false"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={spark_dir}",
    }


@contextmanager
def local_session(spark_dir: Path) -> Iterator[SparkSession]:
    """A classic SparkSession on a local build's Hive metastore (a JVM in this process).

    Derby admits one process per metastore: stop any dbt run on `spark_dir` first. A session
    this process already had is reused and left running; one started here is stopped.
    """
    spark_dir = spark_dir.expanduser().resolve()
    if not (spark_dir / "metastore_db").is_dir():
        raise SegmartError(
            f"no Spark metastore in {spark_dir} (metastore_db/): pass the SEGMART_SPARK_DIR"
            f" of a Spark build (`{BUILD_WAREHOUSE}`)"
        )
    pyspark_sql = _import_pyspark()
    existing = pyspark_sql.SparkSession.getActiveSession()
    builder = pyspark_sql.SparkSession.builder.appName("segmart import-spark").enableHiveSupport()
    for key, value in local_session_conf(spark_dir).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        yield spark
    finally:
        if existing is None:
            spark.stop()


@contextmanager
def remote_session(url: str) -> Iterator[SparkSession]:
    """A Spark Connect session on a cluster (`sc://host:15002`): no JVM on this machine."""
    if not url.startswith("sc://"):
        raise SegmartError(f"--remote takes a Spark Connect URL (sc://host:15002), not {url!r}")
    _check_reachable(url)
    pyspark_sql = _import_pyspark()
    try:
        spark = pyspark_sql.SparkSession.builder.remote(url).getOrCreate()
    except ImportError as error:
        raise SegmartError(
            f"Spark Connect needs pyspark's connect extra ({error}): pip install -e '.[spark]'"
        ) from error
    try:
        yield spark
    finally:
        spark.stop()


def _check_reachable(url: str, timeout_seconds: float = 10) -> None:
    """Fail in seconds on a server that does not answer: Spark Connect retries for minutes."""
    address = url.removeprefix("sc://").split("/")[0]
    host, _, port = address.partition(":")
    try:
        socket.create_connection((host, int(port or 15002)), timeout=timeout_seconds).close()
    except (OSError, ValueError) as error:
        raise SegmartError(
            f"no Spark Connect server answers at {address} ({error}): start it"
            " (start-connect-server.sh) or check --remote"
        ) from error


def _import_pyspark() -> ModuleType:
    try:
        import pyspark.sql
    except ImportError as error:
        raise SegmartError("reading Spark needs pyspark: pip install -e '.[spark]'") from error
    return pyspark.sql


def spark_customer_bucket(column: str = "customer_id", bits: int = SAMPLE_HASH_BITS) -> str:
    """Spark SQL for DuckDB's `md5_number(column) >> (128 - bits)`: training's sample bucket.

    DuckDB reads the md5's 16 bytes as one little-endian number, so its top bits are the
    md5's last bytes, last first: the hex pairs read from the end.
    """
    if bits % 4:
        raise ValueError(f"bits must be whole hex digits, not {bits}")
    digits = bits // 4
    pairs = [f"substr(md5({column}), {31 - 2 * i}, 2)" for i in range((digits + 1) // 2)]
    return f"cast(conv(substr(concat({', '.join(pairs)}), 1, {digits}), 16, 10) as bigint)"


def read_sampled_examples(spark: SparkSession, max_rows: int) -> tuple[pa.Table, int]:
    """`ml.training_examples` as training samples it (whole customers by md5); rows on Spark.

    The threshold comes from the Spark table's full count, as `read_examples` computes it on
    a DuckDB build, so the same customers cross.
    """
    examples = spark.table(TRAINING_TABLE)
    n_rows = examples.count()
    where, params = customer_sample(n_rows, max_rows)
    if where:
        examples = examples.where(f"{spark_customer_bucket()} < {params[0]}")
    return examples.toArrow(), n_rows


def marketing_tables(spark: SparkSession) -> list[str]:
    """The marketing marts the Spark build holds (none before its first promotion)."""
    if not spark.catalog.databaseExists(MARKETING_SCHEMA):
        return []
    tables = spark.catalog.listTables(MARKETING_SCHEMA)
    return sorted(f"{MARKETING_SCHEMA}.{table.name}" for table in tables if not table.isTemporary)


def read_spark_build(
    spark: SparkSession, max_training_rows: int, where: str
) -> tuple[dict[str, pa.Table], SparkImport]:
    """Every table the driver reads from a Spark build, as Arrow; `where` names the build.

    Raises
    ------
    SegmartError
        A table training needs is missing: built by the `warehouse` selector on Spark.
    """
    for name in DRIVER_TABLES:
        if not spark.catalog.tableExists(name):
            raise SegmartError(
                f"{name} is not in the Spark build {where}: build it first (`{BUILD_WAREHOUSE}`)"
            )
    examples, n_on_spark = read_sampled_examples(spark, max_training_rows)
    read = {TRAINING_TABLE: examples}
    for name in DRIVER_TABLES:
        if name != TRAINING_TABLE:
            read[name] = spark.table(name).toArrow()
    optional = [*SCORE_TABLES, *marketing_tables(spark)]
    missing = tuple(name for name in SCORE_TABLES if not spark.catalog.tableExists(name))
    for name in optional:
        if name not in missing:
            read[name] = spark.table(name).toArrow()
    rows = {name: table.num_rows for name, table in read.items()}
    return read, SparkImport(rows, n_on_spark, missing)


def import_spark_build(
    open_session: Callable[[], AbstractContextManager[SparkSession]],
    duckdb_warehouse: Path,
    max_training_rows: int,
    where: str,
) -> SparkImport:
    """Read a Spark build through a session, then replace its tables in DuckDB, all or none."""
    with open_session() as spark:
        tables, summary = read_spark_build(spark, max_training_rows, where)
    copy_to_duckdb(tables, duckdb_warehouse)
    return summary
