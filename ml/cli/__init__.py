"""segmart's command line: parse, delegate, report. Long steps show progress through rich.

Results go to stdout (rich tables that fit the terminal, or JSON with `--json`); progress,
warnings and errors go to stderr, so `segmart train --json | jq` sees JSON only.

Typer's layout for a bigger app: `main.py` is the root app that gathers the command groups
(`data`: generate, build; `modelling`: train, score, run; `steps`: export, publish, report;
`privacy`: forget; `spark`: import-spark; `models`: the `segmart models` group); `options.py`
holds the options the commands share and `terminal.py` what every command prints with.
"""

from ml.cli.main import app, main

__all__ = ["app", "main"]
