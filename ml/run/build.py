"""Run the dbt project through dbt's programmatic runner, with progress and one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dbt.cli.main import dbtRunner
from dbt.contracts.graph.manifest import Manifest
from dbt.contracts.graph.nodes import CompiledNode
from dbt_common.events.base_types import EventMsg

from ml.config import DBT_HASH_KEY_VARIABLE, DBT_PROJECT_DIR, PROFILES_DIR, Settings
from ml.errors import SegmartError
from ml.run.partial_parse import partial_parse_for

# Commands that run on a parsed project: they get the manifest parsed once (`_parsed_manifest`).
_COMMANDS_ON_A_MANIFEST = frozenset({"build", "run", "test", "seed", "compile", "docs"})
# Commands whose one artifact read afterwards is run_results.json (per-node times): dbt would
# also write the 2.5 MB manifest.json, 0.5 s of CPU a build, so they run with --no-write-json and
# `run_dbt` writes run_results.json. `docs generate` needs manifest.json: it keeps it.
_COMMANDS_WITHOUT_MANIFEST_JSON = frozenset({"build", "run", "test", "seed"})
# Parses kept in this process, least recently used first. `segmart run` needs at most three
# sets of vars (the champion's statistics, a challenger's, none); each holds the whole project.
_PARSED: OrderedDict[tuple, Manifest] = OrderedDict()
_MAX_PARSED = 3


@dataclass(frozen=True)
class BuildSummary:
    """What a dbt invocation did: node counts by status."""

    n_passed: int
    n_failed: int
    n_skipped: int
    n_warned: int


# The selector of a build for scoring with an existing model; it goes with var scoring_only.
SCORING_SELECTOR = "scoring"


def dbt_vars(
    settings: Settings,
    stats_as_of: date | None = None,
    extra: dict | None = None,
    scoring_only: bool = False,
) -> dict:
    """The dbt vars for a run: point in time, horizon, the statistics' origin and the landing.

    `scoring_only` builds only what scoring with the model fitted at `stats_as_of` needs
    (selector `scoring`, see dbt_project.yml).
    """
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
    if scoring_only:
        variables["scoring_only"] = True
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


# dbt's wrapper lines, and py4j's over a Java exception from Spark ("An error occurred while
# calling o27.sql.", then ": org.apache.spark.SparkException: <cause>").
_DBT_WRAPPER = re.compile(
    r"^(\w+ )?(Compilation|Runtime|Database|Parsing|Dependency) Error\b|^>"
    r"|^An error occurred while calling o\d+"
)
_JAVA_EXCEPTION_PREFIX = re.compile(r"^: [\w.$]+: ")


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
    return _JAVA_EXCEPTION_PREFIX.sub("", (useful or lines or ["unknown dbt error"])[0])


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


def _target_dir() -> Path:
    """dbt's target dir: DBT_TARGET_PATH (relative to the project, or absolute) or target/."""
    return DBT_PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target")


def _vars_key(settings: Settings, variables_json: str) -> str:
    """The key of a parse kept in this process: vars, target, environment.

    A manifest held in memory is not checked by dbt again, so every variable the project and
    profile read is in the key. The secret hash key is left out: only the profile reads it, at
    run time.
    """
    environment = {k: v for k, v in settings.dbt_env().items() if k != DBT_HASH_KEY_VARIABLE}
    text = json.dumps([json.loads(variables_json), settings.target, environment], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _project_files_state() -> tuple[tuple[str, int, int], ...]:
    """Path, size and modification time of every file a parse reads."""
    # dbt's output, which other processes' runs keep changing.
    skipped = {(DBT_PROJECT_DIR / d).resolve() for d in ("target", "logs", _target_dir())}
    state = []
    for folder, subfolders, files in os.walk(DBT_PROJECT_DIR):
        subfolders[:] = [d for d in subfolders if (Path(folder) / d).resolve() not in skipped]
        for name in files:
            stat = (Path(folder) / name).stat()
            state.append((os.path.join(folder, name), stat.st_size, stat.st_mtime_ns))
    profiles = (PROFILES_DIR / "profiles.yml").stat()
    state.append(("profiles.yml", profiles.st_size, profiles.st_mtime_ns))
    return tuple(sorted(state))


def _parsed_manifest(
    settings: Settings, command: str, variables_json: str, shared_args: list[str]
) -> Manifest:
    """The project parsed with these vars: once per process while its files stay unchanged.

    Every dbt invocation parses the project again (about 2 s with a partial parse, and 1 s
    more writing the 2.5 MB manifest.json); `segmart run` invokes dbt several times with the
    same vars. Vars are rendered at parse time, so a parse is reused only for the same vars.
    """
    state = (_vars_key(settings, variables_json), _project_files_state())
    if state not in _PARSED:
        with partial_parse_for(settings, variables_json, _target_dir()):
            # The command's own run writes manifest.json; the parse need not.
            outcome = dbtRunner().invoke(["parse", *shared_args, "--no-write-json"])
        if not outcome.success:
            raise SegmartError(
                f"dbt {command} failed: {_first_error_line(outcome.exception or '')}"
            )
        _PARSED[state] = outcome.result
        while len(_PARSED) > _MAX_PARSED:
            _PARSED.popitem(last=False)
    _PARSED.move_to_end(state)
    return _forget_compilation(_PARSED[state])


def _forget_compilation(manifest: Manifest) -> Manifest:
    """The manifest as parsed: without the SQL an earlier run compiled into its nodes.

    dbt compiles in place and skips a node whose ephemeral CTEs it marked as injected, so a
    second run would render the SQL again but not inject them ("table __dbt__cte__... does not
    exist"). A copy is no way out: Manifest's __reduce_ex__ swaps its lookups (dbt 1.11).
    """
    for node in manifest.nodes.values():
        if isinstance(node, CompiledNode):
            node.compiled = False
            node.compiled_code = None
            node.compiled_path = None
            node.extra_ctes = []
            node.extra_ctes_injected = False
            node._pre_injected_sql = None
    return manifest


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
    variables_json = json.dumps(variables or dbt_vars(settings))
    shared_args = [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(PROFILES_DIR),
        "--target",
        settings.target,
        "--vars",
        variables_json,
        "--quiet",
        "--log-level",
        "none",
        "--log-path",
        str(DBT_PROJECT_DIR / "logs"),
    ]
    args = [*command.split(), *shared_args]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    without_manifest_json = command.split()[0] in _COMMANDS_WITHOUT_MANIFEST_JSON
    if without_manifest_json:
        args.append("--no-write-json")

    def callback(event: EventMsg) -> None:
        if on_node and event.info.name == "NodeFinished":
            node = event.data.node_info
            on_node(node.node_name, node.node_status)

    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _environment(settings.dbt_env()):
            manifest = None
            if command.split()[0] in _COMMANDS_ON_A_MANIFEST:
                manifest = _parsed_manifest(settings, command, variables_json, shared_args)
            outcome = dbtRunner(manifest=manifest, callbacks=[callback]).invoke(args)
    finally:
        _release_duckdb()
    if without_manifest_json and hasattr(outcome.result, "write"):
        outcome.result.write(str(_target_dir() / "run_results.json"))
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
