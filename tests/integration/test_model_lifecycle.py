"""The model lifecycle through the real CLI and dbt, on the minimal shape (customers and orders).

One shop is run three times, as a user would week after week: the first run trains and promotes,
the second scores with the champion without training, a run 30 days later with a 20-day age
limit retrains and keeps whichever model wins the backtest. Bad input in between (an unknown id,
a tampered champion, statistics that are gone) is a one-line error that leaves BI as it was.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.integration.cli import segmart

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("model_lifecycle")]

N_CUSTOMERS = 1_000
AS_OF = "2025-10-01"
LATER = "2025-10-31"


def _run(workspace: Path, *options: str) -> subprocess.CompletedProcess[str]:
    raw = workspace / "shop" / "raw"
    return segmart(
        workspace, "run", "--raw-dir", str(raw), "--algorithm", "logistic_regression", *options
    )


def _champion(workspace: Path) -> str:
    return json.loads((workspace / "models" / "champion.json").read_text())["model_id"]


def _model_ids(workspace: Path) -> set[str]:
    return {path.name for path in (workspace / "models").iterdir() if path.is_dir()}


def _published_scores(workspace: Path) -> list[tuple]:
    published = workspace / "published" / "segmart_bi.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        return con.execute(
            "select distinct model_id, as_of from predictions.customer_scores"
        ).fetchall()


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """A one-line error naming the fix: exit 1, no traceback."""
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal-shape shop after its first run: one model, promoted."""
    from scripts.generate import generate

    root = tmp_path_factory.mktemp("lifecycle")
    generate(N_CUSTOMERS, 11, root / "shop", "csv", shape="minimal")
    first = _run(root, "--as-of", AS_OF)
    assert first.returncode == 0, first.stderr
    assert "training: no champion yet" in first.stderr
    assert "to champion: first model: no champion yet" in first.stderr
    return root


def test_the_first_run_promotes_its_model_and_the_next_scores_with_it_without_training(
    workspace: Path,
) -> None:
    champion = _champion(workspace)
    assert _model_ids(workspace) == {champion}
    assert _published_scores(workspace) == [(champion, _date(AS_OF))]
    features = "select * from ml.customer_features order by customer_id"
    built_whole = _query(workspace, features)
    again = _run(workspace, "--as-of", AS_OF)
    assert again.returncode == 0, again.stderr
    assert f"scoring with champion {champion} (trained " in again.stderr
    assert "0 days old); --retrain to train a new one" in again.stderr
    assert "fitting" not in again.stderr and _model_ids(workspace) == {champion}
    assert _published_scores(workspace) == [(champion, _date(AS_OF))]
    # The champion's run built only what scoring needs (selector scoring): the same features
    # as the whole build, and no training examples left from it for `segmart train` to use.
    assert _query(workspace, features) == built_whole
    value_snapshots = "select count(distinct snapshot_on) from ml.customer_value_inputs"
    assert _query(workspace, value_snapshots) == [(1,)]
    _refused(segmart(workspace, "train"), "ml.training_examples is missing", "segmart build")
    listed = json.loads(segmart(workspace, "models", "list", "--json").stdout)
    assert [(m["model_id"], m["is_champion"]) for m in listed] == [(champion, True)]


def test_bad_input_is_a_one_line_error_that_leaves_the_champion_and_bi_as_they_were(
    workspace: Path,
) -> None:
    champion, bi = _champion(workspace), workspace / "published" / "segmart_bi.duckdb"
    marker, published = _fingerprint(workspace / "models" / "champion.json"), _fingerprint(bi)
    _refused(segmart(workspace, "models", "promote", "nope"), "unknown model id 'nope'")
    artifact = workspace / "models" / champion / "model.skops"
    original = artifact.read_bytes()
    artifact.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        _refused(_run(workspace, "--as-of", AS_OF), "was modified after training")
        _refused(segmart(workspace, "models", "promote", champion), "was modified")
    finally:
        artifact.write_bytes(original)
    # The statistics the champion was trained with, lost: refused before anything is built.
    stats = f"select * from ml.feature_stats where fitted_as_of = '{AS_OF}'"
    with duckdb.connect(str(workspace / "segmart.duckdb")) as con:
        con.execute(f"create table main.kept_stats as {stats}")
        con.execute(f"delete from ml.feature_stats where fitted_as_of = '{AS_OF}'")
    try:
        _refused(
            _run(workspace, "--as-of", "2025-10-15"),
            "no longer exist",
            "segmart run --retrain",
            "segmart models promote ID",
        )
    finally:
        with duckdb.connect(str(workspace / "segmart.duckdb")) as con:
            con.execute("insert into ml.feature_stats select * from main.kept_stats")
            con.execute("drop table main.kept_stats")
    assert _fingerprint(workspace / "models" / "champion.json") == marker
    assert _fingerprint(bi) == published and _model_ids(workspace) == {champion}


def test_a_champion_past_the_age_limit_is_retrained_and_the_backtest_decides(
    workspace: Path,
) -> None:
    old = _champion(workspace)
    done = _run(workspace, "--as-of", LATER, "--max-model-age-days", "20")
    assert done.returncode == 0, done.stderr
    assert f"retraining: champion {old} is 30 days old (limit 20)" in done.stderr
    (new,) = _model_ids(workspace) - {old}
    decision = next(
        line for line in done.stderr.splitlines() if line.startswith(("keeping", "promoted"))
    )
    assert "backtest on the 2025-08-02 validation snapshot" in decision
    new_auc, old_auc = (float(x) for x in decision.split("new ROC-AUC ")[1].split(" vs champion "))
    winner = new if new_auc > old_auc else old
    assert _champion(workspace) == winner
    assert _published_scores(workspace) == [(winner, _date(LATER))]
    with duckdb.connect(str(workspace / "segmart.duckdb"), read_only=True) as con:
        promotions = con.execute(
            "select model_id, reason from predictions.model_promotions order by promoted_at"
        ).fetchall()
    expected = [(old, "first model: no champion yet")]
    if winner == new:
        expected.append((new, decision.split(": ", 1)[1]))
    assert promotions == expected


def _query(workspace: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workspace / "segmart.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _date(text: str) -> object:
    from datetime import date

    return date.fromisoformat(text)
