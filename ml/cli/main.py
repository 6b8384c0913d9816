"""The root app: every command group added to `segmart`, in the order `--help` lists them."""

from __future__ import annotations

import typer

from ml.cli import data, modelling, models, privacy, spark, steps, terminal

app = typer.Typer(
    name="segmart",
    help="SQL-first customer segmentation and targeted marketing on dbt + DuckDB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Without a name a group's commands join the top level (typer's "one file per command").
app.add_typer(data.app)
app.add_typer(modelling.app)
app.add_typer(steps.app)
app.add_typer(privacy.app)
app.add_typer(spark.app)
app.add_typer(models.app, name="models")


@app.callback()
def _fresh_consoles() -> None:
    """Measure the terminal when a command starts, not when the module was first imported."""
    terminal.refresh_consoles()


def main() -> None:  # pragma: no cover - console-script convenience
    app(prog_name="segmart")
