"""Options shared by the commands, and the settings they make."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from ml.config import Settings, dbt_var_defaults
from ml.errors import SegmartError

# Options shared by every command that touches data.
RawDirOption = Annotated[
    Path | None,
    typer.Option(
        "--raw-dir",
        help="Directory of raw files (<table>.csv|.parquet). [env: SEGMART_RAW_DIR]",
        show_default=False,
    ),
]
WarehouseOption = Annotated[
    Path | None,
    typer.Option(
        "--warehouse", help="DuckDB warehouse file. [env: SEGMART_WAREHOUSE]", show_default=False
    ),
]
AsOfOption = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        show_default=False,
        help="Cutoff date YYYY-MM-DD: features from data strictly before it "
        "(default: the day after the latest order or event).",
    ),
]
MappingOption = Annotated[
    str | None,
    typer.Option(
        "--mapping",
        help="YAML mapping of the shop's own export (file, encoding, delimiter, columns), "
        "or a shipped one: shopify_orders, transactions. [env: SEGMART_MAPPING]",
        show_default=False,
    ),
]
HorizonOption = Annotated[
    int | None,
    typer.Option(
        "--horizon-days",
        min=1,
        max=3650,
        show_default=False,
        help="Label window length in days (default: horizon_days in dbt_project.yml, "
        f"{dbt_var_defaults()['horizon_days']}).",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", help="Print the results as JSON on stdout (progress and warnings on stderr)."
    ),
]
MarkdownOption = Annotated[
    Path | None,
    typer.Option(
        "--markdown",
        help="Also write the full report (every section, as markdown) to this file.",
        show_default=False,
    ),
]
AlgorithmOption = Annotated[
    Literal["hist_gradient_boosting", "random_forest", "decision_tree", "logistic_regression"],
    typer.Option(help="Propensity classifier."),
]


def settings_from(
    raw_dir: Path | None,
    warehouse: Path | None,
    as_of: datetime | None,
    horizon_days: int | None,
    mapping: str | None = None,
) -> Settings:
    """`Settings` from the environment, overridden by the options given on the command line."""
    return Settings().with_overrides(
        raw_dir=raw_dir.expanduser().resolve() if raw_dir else None,
        warehouse=warehouse.expanduser().resolve() if warehouse else None,
        as_of=as_of.date() if as_of else None,
        horizon_days=horizon_days,
        mapping=mapping,
    )


def check_raw_dir(settings: Settings) -> None:
    """Fail with the fix when the raw directory is missing, before anything runs."""
    if not settings.raw_dir.is_dir():
        raise SegmartError(
            f"raw directory {settings.raw_dir} does not exist: pass --raw-dir or set "
            "SEGMART_RAW_DIR (`segmart generate --out DIR` makes a demo set in DIR/raw)"
        )
