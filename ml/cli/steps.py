"""Commands that run one step of `segmart run` again: export, publish, report."""

from __future__ import annotations

import typer

from ml.cli import terminal
from ml.cli.options import HorizonOption, WarehouseOption, settings_from
from ml.cli.terminal import user_errors

app = typer.Typer()


@app.command()
@user_errors
def export(warehouse: WarehouseOption = None) -> None:
    """Write this run's audience files again: exports/<as_of>/, one CSV and Parquet each.

    Needs the scores and the marketing marts built on them.

    Example: segmart export --warehouse warehouse/segmart.duckdb
    """
    from ml.run.coverage import data_gaps
    from ml.run.pipeline import export_step

    settings = settings_from(None, warehouse, None, None)
    with terminal.console.status("exporting audiences"):
        directory = export_step(settings)
    terminal.warn([gap.line for gap in data_gaps(settings) if gap.key == "consent"], prefix="")
    terminal.stdout.print(f"audiences:  {directory}", soft_wrap=True, highlight=False)


@app.command()
@user_errors
def publish(warehouse: WarehouseOption = None) -> None:
    """Publish the BI tables again (segmart_bi.duckdb and segmart_bi_live.duckdb).

    Needs the scores and the marketing marts built on them.

    Example: segmart publish --warehouse warehouse/segmart.duckdb
    """
    from ml.run.pipeline import publish_step

    settings = settings_from(None, warehouse, None, None)
    with terminal.console.status("publishing the BI tables"):
        published = publish_step(settings)
    terminal.stdout.print(
        f"BI tables:  {published} (open read-only)", soft_wrap=True, highlight=False
    )


@app.command()
@user_errors
def report(warehouse: WarehouseOption = None, horizon_days: HorizonOption = None) -> None:
    """Write the HTML report again (reports/segmart_report.html), from the current warehouse.

    Needs the scores; the marketing charts need the marketing marts.

    Example: segmart report --warehouse warehouse/segmart.duckdb
    """
    from ml.run.pipeline import report_step

    settings = settings_from(None, warehouse, None, horizon_days)
    with terminal.console.status("writing the report"):
        path = report_step(settings)
    terminal.stdout.print(f"report:     {path}", soft_wrap=True, highlight=False)
