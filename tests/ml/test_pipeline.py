"""`segmart run`'s orchestration: no step is optional by accident, warnings reach the summary."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ml.config import Settings
from ml.run import pipeline
from ml.run.pipeline import PipelineResult, run_pipeline
from tests.conftest import make_settings


@pytest.mark.parametrize("module", ["ml.report", "ml.delivery.activation", "ml.run.coverage"])
def test_a_step_that_cannot_be_imported_fails_the_run_before_it_builds(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broken import (say, of plotly inside the report) must never let a run pass silently
    # without its report or its exports.
    monkeypatch.setitem(sys.modules, module, None)
    settings = make_settings(tmp_path / "raw", tmp_path / "segmart.duckdb", tmp_path)
    built: list[str] = []
    with pytest.raises(ImportError):
        run_pipeline(
            settings,
            algorithm="logistic_regression",
            random_state=0,
            build=lambda settings, selector: built.append(selector),
            log=lambda line: None,
        )
    assert built == []


def test_the_summary_repeats_every_warning_and_says_when_the_export_is_empty(
    tmp_path: Path,
) -> None:
    result = PipelineResult(
        warehouse=tmp_path / "w.duckdb",
        exports=tmp_path / "exports" / "2025-10-01",
        lines=["## train report"],
        warnings=["warning: a", "note: b"],
        exports_empty=True,
    )
    lines = result.summary().splitlines()
    assert lines[:4] == ["## train report", "", "warning: a", "note: b"]
    assert lines[-1] == (
        f"audiences:  {tmp_path / 'exports' / '2025-10-01'}"
        " (empty files: no customer has marketing consent)"
    )


def test_the_inputs_of_export_publish_and_report_are_checked_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "raw", tmp_path / "segmart.duckdb", tmp_path)
    scored = SimpleNamespace(warnings=(), to_markdown=lambda: "## scores")
    checks: list[Settings] = []
    monkeypatch.setattr(pipeline, "model_step", lambda *args: (None, scored))
    monkeypatch.setattr(pipeline, "check_step_inputs", checks.append)
    monkeypatch.setattr("ml.run.coverage.data_gaps", lambda settings: [])
    for module, step in [
        ("ml.delivery.activation", "export_audiences"),
        ("ml.delivery.publish", "publish"),
        ("ml.report", "write_report"),
    ]:
        monkeypatch.setattr(f"{module}.{step}", lambda settings, step=step: tmp_path / step)
    result = run_pipeline(
        settings, "logistic_regression", 0, lambda settings, selector: None, lambda line: None
    )
    assert checks == [settings]
    assert (result.exports, result.published, result.report) == (
        tmp_path / "export_audiences",
        tmp_path / "publish",
        tmp_path / "write_report",
    )


def test_full_refresh_rebuilds_only_the_runs_first_warehouse_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A champion found unfit after its build makes the run build the warehouse again to train:
    # the second build must read only what is new, not every raw file a second time.
    settings = make_settings(tmp_path / "raw", tmp_path / "segmart.duckdb", tmp_path)
    scored = SimpleNamespace(warnings=(), to_markdown=lambda: "## scores")

    def champion_then_retrain(settings, options, build, log, retrain, promote):
        build(settings, stats_as_of="2025-09-01", selector="scoring")
        build(settings, selector="warehouse")
        return None, scored

    monkeypatch.setattr(pipeline, "model_step", champion_then_retrain)
    monkeypatch.setattr(pipeline, "check_step_inputs", lambda settings: None)
    monkeypatch.setattr("ml.run.coverage.data_gaps", lambda settings: [])
    for module, step in [
        ("ml.delivery.activation", "export_audiences"),
        ("ml.delivery.publish", "publish"),
        ("ml.report", "write_report"),
    ]:
        monkeypatch.setattr(f"{module}.{step}", lambda settings: None)
    builds: list[tuple[str, bool]] = []

    def build(settings, selector, stats_as_of=None, full_refresh=False):
        builds.append((selector, full_refresh))

    run_pipeline(settings, "logistic_regression", 0, build, lambda line: None, full_refresh=True)
    assert builds == [("scoring", True), ("warehouse", False), ("marketing", False)]
    builds.clear()
    run_pipeline(settings, "logistic_regression", 0, build, lambda line: None)
    assert builds == [("scoring", False), ("warehouse", False), ("marketing", False)]
