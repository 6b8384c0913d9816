"""`segmart run`'s orchestration: no step is optional by accident, warnings reach the summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ml.pipeline import PipelineResult, run_pipeline
from tests.conftest import make_settings


@pytest.mark.parametrize("module", ["ml.report", "ml.activation", "ml.coverage"])
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
