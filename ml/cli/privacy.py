"""`segmart forget`: a customer's right to erasure."""

from __future__ import annotations

from typing import Annotated

import typer

from ml.cli import terminal
from ml.cli.options import WarehouseOption, settings_from
from ml.cli.terminal import user_errors

app = typer.Typer()


@app.command()
@user_errors
def forget(
    customer_id: Annotated[str, typer.Argument(help="The customer to forget.")],
    warehouse: WarehouseOption = None,
) -> None:
    """Remove a customer from every derived table, score, audience, export and the BI copy.

    Example: segmart forget C0001234
    """
    from ml.delivery.privacy import forget_customer

    settings = settings_from(None, warehouse, None, None)
    terminal.stdout.print(forget_customer(settings, customer_id).summary())
    terminal.console.print(
        "the raw files still hold this customer: their owner must delete them there "
        "(until then every build skips the id)"
    )
