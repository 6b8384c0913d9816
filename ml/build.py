"""Run the dbt project through dbt's programmatic runner, with progress and one-line errors."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from dbt.cli.main import dbtRunner
from dbt_common.events.base_types import EventMsg

from ml.config import DBT_PROJECT_DIR, PROFILES_DIR, Settings
from ml.errors import SegmartError


@dataclass(frozen=True)
class BuildSummary:
    """What a dbt invocation did: node counts by status."""

    n_passed: int
    n_failed: int
    n_skipped: int
    n_warned: int


def dbt_vars(
    settings: Settings, stats_as_of: date | None = None, extra: dict | None = None
) -> dict:
    """The dbt vars for a run: point in time, horizon, the statistics' origin and the landing."""
    from ml.ingest.landing import plan_landing

    variables: dict = {"horizon_days": settings.horizon_days}
    if settings.raw_dir.is_dir():
        landing = plan_landing(settings.raw_dir, settings.landing_dir, settings.mapping)
        if landing:
            variables["landing"] = landing
    if settings.as_of is not None:
        variables["as_of"] = settings.as_of.isoformat()
    if stats_as_of is not None:
        variables["stats_as_of"] = stats_as_of.isoformat()
    return variables | (extra or {})


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_DBT_WRAPPER = re.compile(r"^(\w+ )?(Compilation|Runtime|Database|Parsing|Dependency) Error\b|^>")


_RAISED = re.compile(r"^[\w.]*(Error|Exception): (?P<message>.+)$")


def _first_error_line(text: object) -> str:
    """The cause inside dbt's wrapper lines ("Runtime Error in model x", "> in macro ...").

    A Python model's failure carries its traceback: the cause is the exception's own line.
    """
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        raised = [m["message"] for m in map(_RAISED.match, lines) if m]
        if raised:
            return raised[-1]
    useful = [
        line for line in lines if not _DBT_WRAPPER.search(line) and "compiled code" not in line
    ]
    return (useful or lines or ["unknown dbt error"])[0]


def _release_duckdb() -> None:
    """Close the DuckDB connection dbt-duckdb keeps for the life of the process.

    Left open, it holds the warehouse with dbt's configuration: the next step of `segmart run`
    cannot open it read-only ("different configuration than existing connections"), and the
    newest tables stay in the WAL.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    DuckDBConnectionManager.close_all_connections()
    if environment is not None:
        environment.close()


def run_dbt(
    settings: Settings,
    command: str = "build",
    variables: dict | None = None,
    select: str | None = None,
    full_refresh: bool = False,
    on_node: Callable[[str, str], None] | None = None,
    unit_tests: bool = True,
) -> BuildSummary:
    """Invoke dbt `command` (build, run, test, docs generate ...) on the segmart project.

    `unit_tests=False` leaves dbt's unit tests out (they check the SQL's logic on fixed inputs,
    not the shop's data). Raises SegmartError with the first failing node and its message on
    failure.
    """
    args = [
        *command.split(),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(PROFILES_DIR),
        "--target",
        settings.target,
        "--vars",
        json.dumps(variables or dbt_vars(settings)),
        "--quiet",
        "--log-level",
        "none",
        "--log-path",
        str(DBT_PROJECT_DIR / "logs"),
    ]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]

    def callback(event: EventMsg) -> None:
        if on_node and event.info.name == "NodeFinished":
            node = event.data.node_info
            on_node(node.node_name, node.node_status)

    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _environment(settings.dbt_env()):
            outcome = dbtRunner(callbacks=[callback]).invoke(args)
    finally:
        _release_duckdb()
    if outcome.exception is not None:
        raise SegmartError(f"dbt {command} failed: {_first_error_line(outcome.exception)}")
    statuses = [str(r.status) for r in getattr(outcome.result, "results", None) or []]
    summary = BuildSummary(
        n_passed=sum(s in ("success", "pass") for s in statuses),
        n_failed=sum(s in ("error", "fail") for s in statuses),
        n_skipped=statuses.count("skipped"),
        n_warned=statuses.count("warn"),
    )
    if not outcome.success:
        failed = [r for r in outcome.result.results if str(r.status) in ("error", "fail")]
        detail = f"{failed[0].node.name}: {_first_error_line(failed[0].message)}" if failed else ""
        raise SegmartError(
            f"dbt {command} failed ({summary.n_failed} failing node(s)); first: {detail}"
        )
    return summary
