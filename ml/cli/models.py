"""`segmart models`: list, show and promote the models in the registry."""

from __future__ import annotations

from typing import Annotated

import typer

from ml.cli import output as cli_output
from ml.cli import terminal
from ml.cli.options import JsonOption, WarehouseOption, settings_from
from ml.cli.terminal import user_errors

app = typer.Typer(
    help="Inspect the model registry and promote the champion.", no_args_is_help=True
)


@app.command("list")
@user_errors
def models_list(warehouse: WarehouseOption = None, as_json: JsonOption = False) -> None:
    """List trained models, newest first (the registry of the warehouse's workspace).

    Example: segmart models list
    """
    from ml.registry import champion_id, list_models

    models_dir = settings_from(None, warehouse, None, None).models_dir
    champion = champion_id(models_dir)
    models = [
        cli_output.model_summary(meta) | {"is_champion": meta.model_id == champion}
        for meta in list_models(models_dir)
    ]
    if as_json:
        terminal.print_json(models)
        return
    marked = [
        model | {"model_id": f"{model['model_id']} (champion)"} if model["is_champion"] else model
        for model in models
    ]
    terminal.print_tables(
        [cli_output.models_table(marked, terminal.stdout.width, terminal.stdout)]
    )


@app.command("promote")
@user_errors
def models_promote(
    model_id: Annotated[str, typer.Argument(help="Id of the model to make the champion.")],
    warehouse: WarehouseOption = None,
    reason: Annotated[
        str, typer.Option(help="Why, recorded in predictions.model_promotions.")
    ] = "promoted by hand",
) -> None:
    """Make a model the champion that `segmart score` and `segmart run` use.

    Example: segmart models promote 20251001T120000Z-1a2b3c4d
    """
    from ml.promotion import promote

    settings = settings_from(None, warehouse, None, None)
    marker = promote(settings, model_id, reason)
    terminal.stdout.print(
        f"champion: {marker.model_id} ({marker.reason})", soft_wrap=True, highlight=False
    )


@app.command("show")
@user_errors
def models_show(
    model_id: Annotated[str, typer.Argument(help="Model id or 'latest'.")],
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one model: what it was trained on and its metrics (--json: all of metadata.json).

    Example: segmart models show latest
    """
    from ml.registry import load_metadata

    models_dir = settings_from(None, warehouse, None, None).models_dir
    data = cli_output.model_data(load_metadata(models_dir, model_id))
    if as_json:
        terminal.print_json(data)
    else:
        terminal.print_tables(
            cli_output.model_tables(data, terminal.stdout.width, terminal.stdout)
        )
