"""The command line through Typer's CliRunner: help, --json, one-line errors, tables that fit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ml.cli import app
from tests.ml.synthetic import single_threaded, synthetic_warehouse  # noqa: F401 - an autouse fixture

COMMANDS = (
    "generate",
    "build",
    "train",
    "score",
    "run",
    "export",
    "publish",
    "report",
    "forget",
    "import-spark",
)
TRAIN_OPTIONS = ("--algorithm", "logistic_regression", "--segments", "3")


def environment(root: Path, columns: int = 80) -> dict[str, str]:
    """Every path of a run inside root, and a terminal `columns` wide."""
    return {
        "SEGMART_WAREHOUSE": str(root / "warehouse.duckdb"),
        "SEGMART_MODELS_DIR": str(root / "models"),
        "SEGMART_REPORTS_DIR": str(root / "reports"),
        "SEGMART_EXPORTS_DIR": str(root / "exports"),
        "SEGMART_PUBLISHED_DIR": str(root / "published"),
        "COLUMNS": str(columns),
    }


def invoke(root: Path, *args: str, columns: int = 80) -> Result:
    return CliRunner().invoke(app, list(args), env=environment(root, columns))


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result, Result]:
    """A synthetic warehouse trained and scored through the CLI, with the two results."""
    from threadpoolctl import threadpool_limits

    root = tmp_path_factory.mktemp("cli")
    synthetic_warehouse(root / "warehouse.duckdb", n_customers=600)
    with threadpool_limits(limits=1):
        trained = invoke(root, "train", *TRAIN_OPTIONS)
        scored = invoke(root, "score")
    return root, trained, scored


def test_the_help_lists_every_command_and_each_command_has_an_example() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for command in (*COMMANDS, "models"):
        assert command in result.stdout
    for command in COMMANDS:
        help_text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert help_text.exit_code == 0
        assert f"Example: segmart {command}" in help_text.stdout


@pytest.mark.parametrize("command", ["train", "score", "run", "models list", "models show"])
def test_every_command_with_results_offers_json(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
    assert "--json" in result.stdout


@pytest.mark.parametrize("command", ["export", "publish", "report"])
def test_a_step_on_a_missing_warehouse_is_one_line_saying_to_build(
    command: str, tmp_path: Path
) -> None:
    result = invoke(tmp_path, command)
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: warehouse ") and "run `segmart build` first" in line


@pytest.mark.parametrize("command", ["export", "publish", "report"])
def test_a_step_on_a_warehouse_without_scores_is_one_line_saying_to_score(
    command: str, tmp_path: Path
) -> None:
    synthetic_warehouse(tmp_path / "warehouse.duckdb", n_customers=50, n_snapshots=1)
    result = invoke(tmp_path, command, columns=80)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: no scores in ") and line.endswith("run `segmart score` first")


@pytest.mark.parametrize("command", ["export", "publish"])
def test_export_and_publish_without_marketing_marts_say_to_build_them(
    command: str, scored: tuple[Path, Result, Result]
) -> None:
    root, _, _ = scored
    result = invoke(root, command)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.endswith("run `segmart build --selector marketing` first")
    assert not (root / "published" / "segmart_bi.duckdb").exists()


def test_report_needs_only_the_scores(scored: tuple[Path, Result, Result]) -> None:
    root, _, _ = scored
    result = invoke(root, "report")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"report:     {root / 'reports' / 'segmart_report.html'}"
    assert (root / "reports" / "segmart_report.html").exists()


def test_train_and_score_print_tables_that_fit_80_columns(
    scored: tuple[Path, Result, Result],
) -> None:
    _, trained, scored_ = scored
    for result in (trained, scored_):
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80
        assert not any(line.startswith("#") or line.startswith("|") for line in lines)
    assert "validation metrics" in trained.stdout and "ROC-AUC" in trained.stdout
    assert "more columns: widen the terminal or --json" in trained.stdout
    assert "propensity deciles" in scored_.stdout


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_models_tables_fit_the_terminal(scored: tuple[Path, Result, Result], columns: int) -> None:
    root, _, _ = scored
    for args in (["models", "list"], ["models", "show", "latest"]):
        result = invoke(root, *args, columns=columns)
        assert result.exit_code == 0, result.stderr
        assert max(len(line) for line in result.stdout.splitlines()) <= columns


def test_a_wide_terminal_shows_every_metric(scored: tuple[Path, Result, Result]) -> None:
    root, _, _ = scored
    result = invoke(root, "models", "show", "latest", columns=200)
    assert "F1" in result.stdout and "more column" not in result.stdout


def test_train_json_is_the_only_thing_on_stdout(
    scored: tuple[Path, Result, Result], tmp_path: Path
) -> None:
    # A copy: the shared root keeps its single model for the promotion tests.
    root = Path(shutil.copytree(scored[0], tmp_path / "cli"))
    result = invoke(root, "train", *TRAIN_OPTIONS, "--random-state", "1", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"model_id", "metrics", "baselines", "margins", "segments", "warnings"} <= set(data)
    assert {"roc_auc", "pr_auc", "brier"} <= set(data["metrics"])
    assert {"segment_id", "segment_name", "n_customers"} <= set(data["segments"][0])


def test_score_json_has_deciles_segments_and_drift(scored: tuple[Path, Result, Result]) -> None:
    root, _, _ = scored
    result = invoke(root, "score", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"model_id", "as_of", "n_customers", "deciles", "segments", "drift"} <= set(data)
    assert data["n_customers"] == 600 and len(data["deciles"]) == 10


def test_models_json_lists_and_shows_the_registry(scored: tuple[Path, Result, Result]) -> None:
    root, _, _ = scored
    listed = json.loads(invoke(root, "models", "list", "--json").stdout)
    assert listed and {"model_id", "trained_at", "algorithm", "as_of", "metrics"} <= set(listed[0])
    shown = json.loads(invoke(root, "models", "show", listed[0]["model_id"], "--json").stdout)
    assert shown["model_id"] == listed[0]["model_id"]
    assert {"feature_columns", "metrics", "baselines", "artifact_sha256"} <= set(shown)


def test_models_commands_read_the_registry_of_the_given_warehouse(
    scored: tuple[Path, Result, Result], tmp_path: Path
) -> None:
    root, _, _ = scored
    other = tmp_path / "shop.duckdb"  # its workspace, and so its registry: tmp_path/shop/
    shutil.copytree(root / "models", tmp_path / "shop" / "models")
    env = environment(root) | {"SEGMART_MODELS_DIR": None}

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=env)

    listed = json.loads(run("models", "list", "--warehouse", str(other), "--json").stdout)
    shown = run("models", "show", "latest", "--warehouse", str(other), "--json")

    assert [model["model_id"] for model in listed] == sorted(
        p.name for p in (root / "models").iterdir() if p.is_dir()
    )[::-1]
    assert json.loads(shown.stdout)["model_id"] == listed[0]["model_id"]
    assert json.loads(run("models", "list", "--json").stdout) == []


def test_the_markdown_option_writes_the_full_report(
    scored: tuple[Path, Result, Result], tmp_path: Path
) -> None:
    root, _, _ = scored
    result = invoke(root, "score", "--markdown", str(tmp_path / "score.md"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "score.md").read_text().startswith("# Scores as of ")


def test_run_json_says_where_the_results_are_and_repeats_the_warnings(tmp_path: Path) -> None:
    from ml.cli.output import run_data
    from ml.run.pipeline import PipelineResult

    result = PipelineResult(
        warehouse=tmp_path / "w.duckdb",
        exports=tmp_path / "exports" / "2025-10-01",
        warnings=["warning: a"],
        exports_empty=True,
    )
    data = json.loads(json.dumps(run_data(result)))
    assert data["exports"] == str(tmp_path / "exports" / "2025-10-01")
    assert data["exports_empty"] is True and data["warnings"] == ["warning: a"]
    assert {"warehouse", "published", "report", "train", "score"} <= set(data)


def test_score_uses_the_promoted_champion_and_without_one_the_latest_with_a_note(
    scored: tuple[Path, Result, Result], tmp_path: Path
) -> None:
    root = Path(shutil.copytree(scored[0], tmp_path / "cli"))
    fallback = invoke(root, "score", "--json")
    assert fallback.exit_code == 0, fallback.stderr
    [note] = [line for line in fallback.stderr.splitlines() if "champion" in line]
    assert note.startswith("note: no champion promoted yet: using the latest model")
    first = json.loads(fallback.stdout)["model_id"]
    # A later model: a copy under a later id (training again would only take longer).
    latest = "29990101T000000Z-11111111"
    shutil.copytree(root / "models" / first, root / "models" / latest)
    metadata = json.loads((root / "models" / latest / "metadata.json").read_text())
    metadata |= {"model_id": latest, "trained_at": "2999-01-01T00:00:00+00:00"}
    (root / "models" / latest / "metadata.json").write_text(json.dumps(metadata))
    promoted = invoke(root, "models", "promote", first, "--reason", "the reviewed one")
    assert promoted.exit_code == 0, promoted.stderr
    assert promoted.stdout.strip() == f"champion: {first} (the reviewed one)"
    again = invoke(root, "score", "--json")
    assert again.exit_code == 0 and "champion" not in again.stderr
    assert json.loads(again.stdout)["model_id"] == first != latest
    listed = json.loads(invoke(root, "models", "list", "--json").stdout)
    assert {m["model_id"]: m["is_champion"] for m in listed} == {first: True, latest: False}
    assert f"{first} (champion)" in invoke(root, "models", "list", columns=200).stdout


def test_promoting_an_unknown_model_is_one_line_and_keeps_the_champion(
    scored: tuple[Path, Result, Result], tmp_path: Path
) -> None:
    root = Path(shutil.copytree(scored[0], tmp_path / "cli"))
    [model] = json.loads(invoke(root, "models", "list", "--json").stdout)
    assert invoke(root, "models", "promote", model["model_id"]).exit_code == 0
    result = invoke(root, "models", "promote", "nope")
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: unknown model id 'nope'")
    assert json.loads(invoke(root, "models", "list", "--json").stdout)[0]["is_champion"]
