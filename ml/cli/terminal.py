"""What every command prints with: the two consoles, one-line errors, tables, JSON, progress.

Commands read the consoles as `terminal.console` and `terminal.stdout`, never by importing the
names: the root app's callback replaces them when a command starts.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from ml.cli import output as cli_output
from ml.errors import SegmartError

console = Console(stderr=True)
stdout = Console()

F = TypeVar("F", bound=Callable[..., object])


def refresh_consoles() -> None:
    """Measure the terminal now: a console sizes itself when it is made."""
    global console, stdout
    console, stdout = Console(stderr=True), Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def user_errors(command: F) -> F:
    """Print fixable errors (and any unexpected one) as one line and exit non-zero."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except SegmartError as error:
            _fail(str(error))
        except KeyboardInterrupt:
            _fail("interrupted; published tables are unchanged")
        except (typer.Exit, typer.Abort):
            raise
        except Exception as error:
            if os.environ.get("SEGMART_DEBUG"):
                raise
            first_line = (str(error).strip().splitlines() or [""])[0]
            _fail(f"{type(error).__name__}: {first_line} (set SEGMART_DEBUG=1 for a traceback)")
        return None

    return wrapper  # type: ignore[return-value]


def print_json(data: object) -> None:
    """Results as JSON on stdout: no colour, no wrapping, one document."""
    typer.echo(json.dumps(data, indent=2))


def print_tables(parts: list) -> None:
    """Rich tables and text on stdout, fitted to the terminal."""
    stdout.print(cli_output.printable(parts))


def warn(lines: tuple[str, ...] | list[str], prefix: str = "warning: ") -> None:
    """One line on stderr per warning, whatever the width."""
    for line in lines:
        console.print(f"[yellow]{prefix}[/]{line}", highlight=False, soft_wrap=True)


def write_markdown(path: Path | None, text: str) -> None:
    """Write the full report to `path` if one was asked for, and say where."""
    if path is not None:
        path.expanduser().write_text(text, encoding="utf-8")
        console.print(f"full report: {path}", highlight=False, soft_wrap=True)


def progress() -> Progress:
    """A transient progress bar on stderr."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    )
