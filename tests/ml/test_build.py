"""run_dbt parses a project once per set of vars and keeps a partial parse per set of vars.

A tiny dbt project (an ephemeral model under a table) stands in for segmart's, so each parse
takes about a second; dbt and DuckDB run for real.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from ml.config import Settings
from ml.errors import SegmartError
from ml.run import build
from ml.run.build import run_dbt
from tests.conftest import make_settings

PROJECT = """
name: tiny
profile: segmart
config-version: 2
model-paths: [models]
"""
EPHEMERAL = "{{ config(materialized='ephemeral') }}\nselect {{ var('n') }} as n\n"
TABLE = "{{ config(materialized='table') }}\nselect n from {{ ref('numbers') }}\n"


class RecordingRunner(dbtRunner):
    """dbt's runner, recording each invocation's command and every event name it fired."""

    invocations: ClassVar[list[tuple[str, list[str]]]] = []

    def invoke(self, args: list[str], **kwargs):  # type: ignore[no-untyped-def]
        events: list[str] = []
        self.callbacks = [*self.callbacks, lambda event: events.append(event.info.name)]
        RecordingRunner.invocations.append((args[0], events))
        return super().invoke(args, **kwargs)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "dbt_project"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(PROJECT)
    (root / "models" / "numbers.sql").write_text(EPHEMERAL)
    (root / "models" / "final.sql").write_text(TABLE)
    monkeypatch.setattr(build, "DBT_PROJECT_DIR", root)
    monkeypatch.setattr(build, "_PARSED", OrderedDict())
    monkeypatch.setattr(build, "dbtRunner", RecordingRunner)
    monkeypatch.setattr(RecordingRunner, "invocations", [])
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    return root


@pytest.fixture
def settings(project: Path, tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "raw", tmp_path / "tiny.duckdb", tmp_path)


def _final(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute("select n from final").fetchall()


def _parses() -> list[list[str]]:
    """The events of each `dbt parse` invoked so far."""
    return [events for command, events in RecordingRunner.invocations if command == "parse"]


def test_runs_with_the_same_vars_share_one_parse_and_each_injects_the_ephemeral_cte(
    settings: Settings,
) -> None:
    run_dbt(settings, "run", {"n": 1})
    run_dbt(settings, "run", {"n": 1})

    assert len(_parses()) == 1
    assert _final(settings) == [(1,)]


def test_other_vars_are_parsed_again(settings: Settings) -> None:
    run_dbt(settings, "run", {"n": 1})
    run_dbt(settings, "run", {"n": 2})

    assert len(_parses()) == 2
    assert _final(settings) == [(2,)]


def test_a_model_changed_between_runs_is_parsed_again(settings: Settings, project: Path) -> None:
    run_dbt(settings, "run", {"n": 1})
    (project / "models" / "final.sql").write_text(TABLE.replace("select n", "select n + 10 as n"))
    run_dbt(settings, "run", {"n": 1})

    assert len(_parses()) == 2
    assert _final(settings) == [(11,)]


def test_alternating_vars_keep_their_partial_parses_across_processes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `segmart run` builds with a champion's statistics, then without: different vars. dbt
    # keeps one partial-parse file and re-parses everything when the vars differ from it.
    for variables in ({"n": 1}, {"n": 2}, {"n": 1}):
        monkeypatch.setattr(build, "_PARSED", OrderedDict())  # as a new process would start
        run_dbt(settings, "run", variables)

    _, second, third = _parses()
    assert "UnableToPartialParse" in second  # new vars: a full parse, as dbt must
    assert "PartialParsingEnabled" in third
    assert "UnableToPartialParse" not in third


def test_a_new_workspace_starts_from_the_partial_parse_of_another(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dbt's profile hash covers the warehouse path and the workspace's hash key: before, the
    # first build of every workspace (every test) parsed the project in full.
    other_root = tmp_path / "other"
    other = make_settings(settings.raw_dir, other_root / "tiny.duckdb", other_root)
    assert other.hash_key() != settings.hash_key()

    run_dbt(settings, "run", {"n": 1})
    monkeypatch.setattr(build, "_PARSED", OrderedDict())  # as a new process would start
    run_dbt(other, "run", {"n": 2})
    monkeypatch.setattr(build, "_PARSED", OrderedDict())
    run_dbt(other, "run", {"n": 1})

    _, other_vars, same_vars = _parses()
    assert "UnableToPartialParse" in other_vars  # other vars: a full parse, as dbt must
    assert "PartialParsingEnabled" in same_vars
    assert "UnableToPartialParse" not in same_vars
    assert _final(other) == [(1,)]


def test_a_warehouse_of_another_name_is_parsed_for_its_own_database(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file's name is the database every node is parsed into: no parse is shared.
    other_root = tmp_path / "other"
    other = make_settings(settings.raw_dir, other_root / "renamed.duckdb", other_root)

    run_dbt(settings, "run", {"n": 1})
    monkeypatch.setattr(build, "_PARSED", OrderedDict())
    run_dbt(other, "run", {"n": 1})

    _, second = _parses()
    assert "UnableToPartialParse" in second
    assert _final(other) == [(1,)]


def test_a_run_writes_its_run_results_and_no_manifest_json(
    settings: Settings, tmp_path: Path
) -> None:
    run_dbt(settings, "run", {"n": 1})

    target = tmp_path / "target"
    results = json.loads((target / "run_results.json").read_text())
    assert [r["unique_id"] for r in results["results"]] == ["model.tiny.final"]
    assert not (target / "manifest.json").exists()


def test_every_node_runs_with_the_profiles_database_settings(
    settings: Settings, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given once when the warehouse opens (config_options), not per node: still in force for
    # the second node's connection.
    monkeypatch.setenv("SEGMART_MEMORY_LIMIT", "1234MB")
    settings_sql = (
        "{{ config(materialized='table') }}\n"
        "select current_setting('memory_limit') as memory_limit,"
        " current_setting('preserve_insertion_order') as preserve_insertion_order"
        " from {{ ref('final') }}\n"
    )
    (project / "models" / "node_settings.sql").write_text(settings_sql)

    run_dbt(settings, "run", {"n": 1})

    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        row = con.execute("select * from node_settings").fetchall()
    assert row == [("1.1 GiB", False)]


def test_a_parse_error_fails_with_the_command_and_one_line(
    settings: Settings, project: Path
) -> None:
    (project / "models" / "final.sql").write_text("select n from {{ ref('missing') }}\n")

    with pytest.raises(SegmartError, match=r"^dbt run failed: .*missing") as raised:
        run_dbt(settings, "run", {"n": 1})

    assert "\n" not in str(raised.value)


def test_a_spark_error_is_its_cause_without_the_py4j_and_java_wrappers() -> None:
    # dbt-spark's session passes on py4j's text: a wrapper line, the Java exception, its stack
    raised = (
        "Database Error in operation segmart-on-run-start-0 (./dbt_project.yml)\n"
        "  An error occurred while calling o27.sql.\n"
        "  : org.apache.spark.SparkException: [FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER]"
        " Encountered error while reading file file:/raw/customers.parquet.\n"
        "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.cannotReadFooterForFileError\n"
    )
    assert build._first_error_line(raised) == (
        "[FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER]"
        " Encountered error while reading file file:/raw/customers.parquet."
    )
