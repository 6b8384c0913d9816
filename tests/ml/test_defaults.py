"""One home for each default: dbt vars in dbt_project.yml, which Settings and the CLI follow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import ml.config
from ml.cli import app
from ml.config import DBT_PROJECT_DIR, Settings, dbt_var_defaults

VAR_CALL = re.compile(r"\bvar\(\s*['\"](\w+)['\"]\s*(,)?")


@pytest.fixture
def project_horizon_of_45_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dbt project whose horizon_days is 45, as Settings would read it."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    project["vars"]["horizon_days"] = 45
    (tmp_path / "dbt_project.yml").write_text(yaml.safe_dump(project), encoding="utf-8")
    monkeypatch.setattr(ml.config, "DBT_PROJECT_DIR", tmp_path)
    dbt_var_defaults.cache_clear()
    yield
    dbt_var_defaults.cache_clear()


def _var_calls() -> list[tuple[Path, str, bool]]:
    calls = []
    for folder in ("models", "macros"):
        for path in sorted((DBT_PROJECT_DIR / folder).rglob("*.sql")):
            text = path.read_text(encoding="utf-8")
            calls += [(path, m[1], bool(m[2])) for m in VAR_CALL.finditer(text)]
    return calls


def test_settings_take_the_horizon_from_dbt_project_yml() -> None:
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    assert Settings().horizon_days == project["vars"]["horizon_days"]


@pytest.mark.usefixtures("project_horizon_of_45_days")
def test_a_new_horizon_in_dbt_project_yml_is_the_one_settings_use() -> None:
    assert Settings().horizon_days == 45
    assert Settings(horizon_days=30).horizon_days == 30


@pytest.mark.usefixtures("project_horizon_of_45_days")
@pytest.mark.parametrize("command", ["report", "export", "publish"])
def test_commands_without_horizon_days_use_the_settings_default(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml.run.coverage
    import ml.run.pipeline

    seen = []

    def step(settings: Settings) -> Path:
        seen.append(settings.horizon_days)
        return tmp_path

    monkeypatch.setattr(ml.run.pipeline, f"{command}_step", step)
    monkeypatch.setattr(ml.run.coverage, "data_gaps", lambda settings: [])
    result = CliRunner().invoke(app, [command, "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 0, result.output
    assert seen == [45]


def test_an_explicit_horizon_days_wins_over_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml.run.pipeline

    seen = []
    monkeypatch.setattr(
        ml.run.pipeline, "report_step", lambda s: seen.append(s.horizon_days) or "x"
    )
    args = ["report", "--warehouse", str(tmp_path / "w.duckdb"), "--horizon-days", "30"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert seen == [30]


def test_dbt_vars_have_their_default_only_in_dbt_project_yml() -> None:
    calls = _var_calls()
    repeated = sorted(
        f"{path.relative_to(DBT_PROJECT_DIR)}: var('{name}', ...)"
        for path, name, has_default in calls
        if has_default
    )
    assert calls, "the scan found no var() at all: the pattern is broken"
    assert repeated == []


def test_every_var_a_model_or_macro_reads_has_a_default_in_dbt_project_yml() -> None:
    undeclared = {name for _, name, _ in _var_calls()} - set(dbt_var_defaults())
    assert undeclared == set()
