"""Commands that train and score: `segmart train`, `segmart score` and `segmart run`."""

from __future__ import annotations

import functools
from typing import Annotated

import typer

from ml.cli import output as cli_output
from ml.cli import terminal
from ml.cli.data import build_warehouse
from ml.cli.options import (
    AlgorithmOption,
    AsOfOption,
    HorizonOption,
    JsonOption,
    MappingOption,
    MarkdownOption,
    RawDirOption,
    WarehouseOption,
    check_raw_dir,
    settings_from,
)
from ml.cli.terminal import user_errors
from ml.config import Settings

app = typer.Typer()


@app.command()
@user_errors
def train(
    raw_dir: RawDirOption = None,
    warehouse: WarehouseOption = None,
    as_of: AsOfOption = None,
    horizon_days: HorizonOption = None,
    algorithm: AlgorithmOption = "hist_gradient_boosting",
    segments: Annotated[
        int | None, typer.Option(min=2, max=20, help="Number of segments (default: automatic).")
    ] = None,
    random_state: Annotated[int, typer.Option(help="Seed for every random step.")] = 42,
    as_json: JsonOption = False,
    markdown: MarkdownOption = None,
) -> None:
    """Train the propensity and segmentation models on ml.training_examples.

    Prints the validation metrics against the naive baselines, the segments and the top
    features; the full report is saved next to the model (report.md).

    Example: segmart train --algorithm hist_gradient_boosting
    """
    from ml.modelling.training import TrainOptions
    from ml.modelling.training import train as train_models

    settings = settings_from(raw_dir, warehouse, as_of, horizon_days)
    options = TrainOptions(algorithm=algorithm, n_segments=segments, random_state=random_state)
    with terminal.console.status("training") as status:
        report = train_models(settings, options, progress=lambda msg: status.update(msg))
    terminal.warn(report.warnings)
    terminal.write_markdown(markdown, report.to_markdown())
    data = cli_output.train_data(report)
    if as_json:
        terminal.print_json(data)
    else:
        terminal.print_tables(
            cli_output.train_tables(data, terminal.stdout.width, terminal.stdout)
        )


@app.command()
@user_errors
def score(
    raw_dir: RawDirOption = None,
    warehouse: WarehouseOption = None,
    as_of: AsOfOption = None,
    horizon_days: HorizonOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model id, 'champion' or 'latest' (default: the champion, else the latest).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    markdown: MarkdownOption = None,
) -> None:
    """Score ml.customer_features and write scores, segments and drift back atomically.

    Prints the propensity deciles, the segments and the most drifted features.

    Example: segmart score --model champion
    """
    from ml.registry import default_model_ref
    from ml.serving.scoring import score as score_customers

    settings = settings_from(raw_dir, warehouse, as_of, horizon_days)
    if model is None:
        model, note = default_model_ref(settings.models_dir)
        terminal.warn([note] if note else [], prefix="note: ")
    with terminal.console.status("scoring") as status:
        report = score_customers(settings, model, progress=lambda msg: status.update(msg))
    terminal.warn(report.warnings)
    terminal.write_markdown(markdown, report.to_markdown())
    data = cli_output.score_data(report)
    if as_json:
        terminal.print_json(data)
    else:
        terminal.print_tables(
            cli_output.score_tables(data, terminal.stdout.width, terminal.stdout)
        )


@app.command()
@user_errors
def run(
    raw_dir: RawDirOption = None,
    warehouse: WarehouseOption = None,
    as_of: AsOfOption = None,
    horizon_days: HorizonOption = None,
    algorithm: AlgorithmOption = "hist_gradient_boosting",
    random_state: Annotated[int, typer.Option(help="Seed for every random step.")] = 42,
    mapping: MappingOption = None,
    retrain: Annotated[
        bool, typer.Option(help="Train a new model even if the champion is fit to score.")
    ] = False,
    promote: Annotated[
        bool,
        typer.Option(help="If this run trains, make its model the champion without the backtest."),
    ] = False,
    max_model_age_days: Annotated[
        int | None,
        typer.Option(
            min=0,
            show_default=False,
            help="Retrain when the champion's as_of is more than this many days before as_of "
            f"(default {Settings.max_model_age_days}).",
        ),
    ] = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            help="Rebuild the incremental staging tables from every raw file (a run otherwise "
            "reads only the files and rows it has not read)."
        ),
    ] = False,
    as_json: JsonOption = False,
    markdown: MarkdownOption = None,
) -> None:
    """Run the whole pipeline: build, score with the champion or train, marketing, BI, report.

    The champion scores with its own feature statistics unless --retrain, it is too old or its
    inputs drifted; a new model is promoted only if it beats the champion's backtest (or with
    --promote). Prints the decision, the tables, every warning again, and where the results are.

    Example: segmart run --raw-dir data/demo/raw
    """
    from ml.run.pipeline import run_pipeline

    settings = settings_from(raw_dir, warehouse, as_of, horizon_days, mapping)
    settings = settings.with_overrides(max_model_age_days=max_model_age_days)
    check_raw_dir(settings)
    result = run_pipeline(
        settings,
        algorithm=algorithm,
        random_state=random_state,
        build=build_warehouse,
        # soft_wrap: a warning stays one line, whatever the width (rich wraps at 80 in a pipe).
        log=functools.partial(terminal.console.print, soft_wrap=True),
        retrain=retrain,
        promote=promote,
        full_refresh=full_refresh,
    )
    terminal.write_markdown(markdown, "\n".join(result.lines))
    if as_json:
        terminal.print_json(cli_output.run_data(result))
        return
    parts: list = []
    if result.trained is not None:
        parts += cli_output.train_tables(
            cli_output.train_data(result.trained), terminal.stdout.width, terminal.stdout
        )
    if result.scored is not None:
        parts += cli_output.score_tables(
            cli_output.score_data(result.scored), terminal.stdout.width, terminal.stdout
        )
    terminal.print_tables(parts)
    # soft_wrap: a warning or a path stays one line, whatever the width.
    warnings = ["", *result.warnings] if result.warnings else []
    terminal.stdout.print(
        "\n".join([*warnings, "", *result.where()]), soft_wrap=True, highlight=False
    )
