"""`segmart import-spark`: a Spark build's marts into the DuckDB warehouse the driver reads."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ml.cli import terminal
from ml.cli.options import JsonOption, WarehouseOption, settings_from
from ml.cli.terminal import user_errors
from ml.errors import SegmartError

app = typer.Typer()

# TrainOptions.max_training_rows, without importing training (and scikit-learn) for --help.
DEFAULT_MAX_TRAINING_ROWS = 200_000


@app.command("import-spark")
@user_errors
def import_spark(
    spark_dir: Annotated[
        Path | None,
        typer.Option(
            "--spark-dir",
            help="A local Spark build: the SEGMART_SPARK_DIR of its metastore_db and "
            "spark-warehouse (starts a JVM here; no dbt run on it meanwhile).",
            show_default=False,
        ),
    ] = None,
    remote: Annotated[
        str | None,
        typer.Option(
            "--remote",
            help="A cluster's Spark Connect server, sc://host:15002 (no JVM here).",
            show_default=False,
        ),
    ] = None,
    warehouse: WarehouseOption = None,
    max_training_rows: Annotated[
        int,
        typer.Option(
            min=1,
            help="Sample the training examples in Spark as training samples them (whole "
            "customers by hash) above this many rows.",
        ),
    ] = DEFAULT_MAX_TRAINING_ROWS,
    as_json: JsonOption = False,
) -> None:
    """Copy a Spark build's marts into the DuckDB warehouse: then train, report and export.

    Copies what training reads (the ML marts; the training examples sampled in Spark) and,
    when the Spark build has them, the scores and the marketing marts, through Arrow, all or
    none.

    Example: segmart import-spark --remote sc://spark-driver:15002 --warehouse segmart.duckdb
    """
    from ml import spark_marts

    if (spark_dir is None) == (remote is None):
        raise SegmartError(
            "pass one Spark build: --spark-dir DIR (a local build) or --remote sc://host:port"
        )
    settings = settings_from(None, warehouse, None, None)
    if remote is not None:
        where, open_session = remote, functools.partial(spark_marts.remote_session, remote)
    else:
        where, open_session = (
            str(spark_dir),
            functools.partial(spark_marts.local_session, spark_dir),
        )
    with terminal.console.status(f"reading the Spark build {where}"):
        summary = spark_marts.import_spark_build(
            open_session, settings.warehouse, max_training_rows, where
        )
    terminal.warn(summary.warnings)
    if as_json:
        terminal.print_json(
            {
                "warehouse": str(settings.warehouse),
                "rows": summary.rows,
                "n_training_rows_on_spark": summary.n_training_rows_on_spark,
                "missing": list(summary.missing),
            }
        )
        return
    table = Table("table", "rows", title=f"copied into {settings.warehouse}")
    for name, n_rows in summary.rows.items():
        table.add_row(name, f"{n_rows:,}")
    terminal.stdout.print(table)
    terminal.stdout.print(
        f"training examples: {summary.rows[spark_marts.TRAINING_TABLE]:,} of "
        f"{summary.n_training_rows_on_spark:,} on Spark",
        soft_wrap=True,
        highlight=False,
    )
