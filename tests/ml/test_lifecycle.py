"""`segmart run`'s model step: the champion scores, or a new model is trained and gated.

The dbt build is a test double (the synthetic marts hold the one set of statistics every model
here is trained with); tests/integration/test_model_lifecycle.py runs the same through dbt.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml import registry, warehouse
from ml.config import Settings
from ml.errors import SegmartError
from ml.modelling.training import TrainOptions
from ml.run import lifecycle
from ml.run.lifecycle import Backtest, model_step
from tests.ml.synthetic import (
    AS_OF,
    STATS_ID,
    settings_for,
    single_threaded,  # noqa: F401 - autouse fixture
    synthetic_marts,
    synthetic_warehouse,
    write_warehouse,
)

FAST = TrainOptions(algorithm="logistic_regression", n_segments=3, n_threads=1)


class FakeBuild:
    """Records each dbt build asked for; builds nothing.

    The synthetic marts already hold the one set of statistics (STATS_ID fitted as of AS_OF)
    every model here is trained with, so a build with a model's statistics would leave them
    as they are.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, date | None]] = []

    def __call__(self, settings, stats_as_of: date | None = None, selector: str = "") -> None:
        self.calls.append((selector, stats_as_of))


@pytest.fixture
def shop(tmp_path: Path) -> Settings:
    settings = settings_for(tmp_path)
    _write_marts(settings)
    return settings


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic shop after its first model step: one model, promoted (read-only)."""
    root = tmp_path_factory.mktemp("first_run")
    settings = settings_for(root)
    _write_marts(settings)
    model_step(settings, FAST, FakeBuild(), lambda line: None)
    return root


@pytest.fixture
def promoted(first_run: Path, tmp_path: Path) -> Settings:
    """A private copy of `first_run`, free to change."""
    return settings_for(Path(shutil.copytree(first_run, tmp_path / "shop")))


def _write_marts(settings: Settings) -> None:
    synthetic_warehouse(settings.warehouse)
    # As in a dbt build (the synthetic table holds the one-hot rows only): training reads them.
    with warehouse.connect(settings.warehouse) as con:
        for column in ("center", "scale"):
            con.execute(f"alter table ml.feature_stats add column if not exists {column} double")


def _model_dirs(settings: Settings) -> set[str]:
    return {path.name for path in settings.models_dir.iterdir() if path.is_dir()}


def _rows(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _scores(settings: Settings) -> list[tuple]:
    return _rows(settings, "select * from predictions.customer_scores order by customer_id")


def _shuffle_labels(settings: Settings, where: str = "true") -> None:
    """Give the training examples matching `where` the label of another row, unrelated to theirs.

    Each takes the label 37 rows on in the order of a hash of (customer, snapshot): the same
    buyers' share, no relation to the features left.
    """
    with warehouse.connect(settings.warehouse) as con:
        con.execute(
            "create or replace table ml.training_examples as"
            " select * exclude (shuffled) replace (case when " + where + " then shuffled else"
            " purchased_in_horizon end as purchased_in_horizon) from ("
            " select *, lead(purchased_in_horizon, 37, purchased_in_horizon)"
            " over (order by hash(customer_id, snapshot_on)) as shuffled"
            " from ml.training_examples) order by snapshot_on, customer_id"
        )


def _aucs(backtest_line: str) -> tuple[float, float]:
    """The new model's and the champion's ROC-AUC in a backtest line."""
    found = re.search(r"new ROC-AUC ([\d.]+) vs champion ([\d.]+)", backtest_line)
    assert found, backtest_line
    return float(found[1]), float(found[2])


def test_the_first_run_trains_and_promotes_and_the_next_scores_with_the_champion(
    shop: Settings,
) -> None:
    lines: list[str] = []
    trained, first = model_step(shop, FAST, FakeBuild(), lines.append)
    assert trained is not None and "training: no champion yet" in lines
    champion = registry.champion_id(shop.models_dir)
    assert champion == trained.model_id == first.model_id
    models_before, build, lines = _model_dirs(shop), FakeBuild(), []
    retrained, second = model_step(shop, FAST, build, lines.append)
    assert retrained is None and _model_dirs(shop) == models_before
    assert second.model_id == champion
    assert _rows(shop, "select distinct model_id from predictions.customer_scores") == [
        (champion,)
    ]
    # Built once for scoring, with the champion's own statistics, then scored: no training.
    assert build.calls == [("scoring", AS_OF)]
    assert lines[0].startswith(f"scoring with champion {champion} (trained ")
    assert lines[0].endswith("0 days old); --retrain to train a new one")


def test_the_champion_is_loaded_once_when_it_scores(
    promoted: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loading a model checks its hash and audits its types (0.45-0.9 s at 1M customers): the
    # step scores with the champion it loaded to decide, not with a second copy.
    loads: list[str] = []
    load_model = registry.load_model

    def counted(models_dir: Path, ref: str):
        loads.append(ref)
        return load_model(models_dir, ref)

    monkeypatch.setattr(registry, "load_model", counted)
    trained, scored = model_step(promoted, FAST, FakeBuild(), lambda line: None)
    assert trained is None and scored.model_id == registry.champion_id(promoted.models_dir)
    assert loads == [registry.CHAMPION]


def test_retrain_trains_a_new_model_and_the_backtest_keeps_a_better_champion(
    promoted: Settings,
) -> None:
    champion = registry.champion_id(promoted.models_dir)
    # The new model learns from noise: every label before the validation snapshot shuffled.
    _shuffle_labels(promoted, "snapshot_on < (select max(snapshot_on) from ml.training_examples)")
    lines: list[str] = []
    trained, scored = model_step(promoted, FAST, FakeBuild(), lines.append, retrain=True)
    assert trained is not None and trained.model_id in _model_dirs(promoted)
    assert registry.champion_id(promoted.models_dir) == champion == scored.model_id
    kept = next(line for line in lines if line.startswith(f"keeping champion {champion}"))
    new, old = _aucs(kept)
    assert new + 0.1 < old


def test_retrain_promotes_a_new_model_that_beats_the_champion_in_the_backtest(
    shop: Settings,
) -> None:
    _shuffle_labels(shop)  # the first champion learns from noise
    model_step(shop, FAST, FakeBuild(), lambda line: None)
    champion = registry.champion_id(shop.models_dir)
    _write_marts(shop)  # the real labels again
    lines: list[str] = []
    trained, scored = model_step(shop, FAST, FakeBuild(), lines.append, retrain=True)
    assert registry.champion_id(shop.models_dir) == trained.model_id == scored.model_id
    promoted = _rows(
        shop, "select model_id, previous_model_id, reason from predictions.model_promotions"
    )[-1]
    assert promoted[:2] == (trained.model_id, champion)
    new, old = _aucs(promoted[2])
    assert old + 0.1 < new
    # Same as_of: the champion saw the window's labels, and the record says so.
    assert "the champion was trained on data reaching into it" in promoted[2]


def test_promote_makes_the_new_model_champion_even_when_the_backtest_would_keep_the_old(
    promoted: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:

    def unreachable(*args: object) -> Backtest:
        raise AssertionError("--promote skips the backtest")

    monkeypatch.setattr(lifecycle, "backtest_champion", unreachable)
    trained, scored = model_step(
        promoted, FAST, FakeBuild(), lambda line: None, retrain=True, promote=True
    )
    assert registry.champion_id(promoted.models_dir) == trained.model_id == scored.model_id


def test_a_champion_older_than_the_limit_is_retrained_and_the_run_says_why(
    promoted: Settings,
) -> None:
    champion = registry.champion_id(promoted.models_dir)
    older = replace(promoted, max_model_age_days=30)
    # Seen from 40 days after the champion's as_of (known up front: no build with its stats).
    later = replace(older, as_of=AS_OF + timedelta(days=40))
    champion_model = registry.load_model(promoted.models_dir, registry.CHAMPION)
    assert lifecycle.age_reason(champion_model.metadata, later.as_of, 30) == (
        f"champion {champion} is 40 days old (limit 30)"
    )
    assert lifecycle.age_reason(champion_model.metadata, AS_OF + timedelta(days=30), 30) is None
    lines: list[str] = []
    with pytest.raises(SegmartError, match="built as of 2025-10-01, not 2025-11-10"):
        # The synthetic marts cannot be rebuilt as of a later day: training refuses them. What
        # matters here is that the run went to training, having built nothing with old stats.
        build = FakeBuild()
        model_step(later, FAST, build, lines.append)
    assert lines[0] == f"retraining: champion {champion} is 40 days old (limit 30)"
    assert build.calls == [("warehouse", None)]


def test_a_champion_for_another_horizon_is_retrained_and_replaced_without_a_backtest(
    promoted: Settings,
) -> None:
    champion = registry.champion_id(promoted.models_dir)
    # The shop now asks for the 90 days the marts are built for; the champion predicted 30.
    path = promoted.models_dir / champion / registry.METADATA
    metadata = json.loads(path.read_text()) | {"horizon_days": 30}
    path.write_text(json.dumps(metadata))
    lines: list[str] = []
    build = FakeBuild()
    trained, scored = model_step(promoted, FAST, build, lines.append)
    assert lines[0] == f"retraining: champion {champion} predicts a 30-day horizon, not 90"
    assert build.calls == [("warehouse", None)]  # nothing built with the champion's statistics
    assert registry.champion_id(promoted.models_dir) == trained.model_id == scored.model_id
    reason = "the champion predicts a 30-day horizon"
    assert f"promoted {trained.model_id} to champion: {reason}" in lines


def test_a_champion_whose_inputs_drifted_beyond_the_limit_is_retrained(promoted: Settings) -> None:
    lines: list[str] = []
    strict = replace(promoted, retrain_drift_psi=0.0)
    trained, _ = model_step(strict, FAST, FakeBuild(), lines.append)
    assert trained is not None
    assert re.fullmatch(
        r"retraining: the champion's input \S+ drifted \(PSI [\d.]+ > 0\.0; \d+ input\(s\) above"
        r" the limit\)",
        lines[0],
    )


def test_drift_below_the_limit_keeps_the_champion() -> None:
    drift = pd.DataFrame({"feature": ["a", "b"], "psi": [0.4, 0.1], "is_drifted": [True, False]})
    assert lifecycle.drift_reason(drift, 0.5) is None
    assert lifecycle.drift_reason(drift, 0.3) == (
        "the champion's input a drifted (PSI 0.40 > 0.3; 1 input(s) above the limit)"
    )


def test_a_champion_whose_statistics_are_gone_is_a_one_line_error_that_changes_nothing(
    promoted: Settings,
) -> None:
    scores = _scores(promoted)
    models, champion = _model_dirs(promoted), registry.champion_id(promoted.models_dir)
    with warehouse.connect(promoted.warehouse) as con:
        con.execute("delete from ml.feature_stats")
    build = FakeBuild()
    with pytest.raises(SegmartError, match="no longer exist") as error:
        model_step(promoted, FAST, build, lambda line: None)
    message = str(error.value)
    assert "\n" not in message and "--retrain" in message and "models promote" in message
    assert build.calls == []  # refused before building anything
    assert _scores(promoted) == scores
    assert _model_dirs(promoted) == models
    assert registry.champion_id(promoted.models_dir) == champion


def test_marts_rebuilt_with_other_statistics_are_refused_before_scoring(
    promoted: Settings,
) -> None:
    scores = _scores(promoted)
    # As a refit of the same as_of on changed data leaves them.
    _, features = synthetic_marts(stats_id="stats-refit")
    write_warehouse(promoted.warehouse, {"ml.customer_features": features})
    with pytest.raises(SegmartError, match=r"no longer exist in .*--retrain"):
        model_step(promoted, FAST, FakeBuild(), lambda line: None)
    assert _scores(promoted) == scores


def test_a_tampered_champion_stops_the_run_before_it_builds(promoted: Settings) -> None:
    champion = registry.champion_id(promoted.models_dir)
    artifact = promoted.models_dir / champion / registry.ARTIFACT
    artifact.write_bytes(artifact.read_bytes()[:-1])
    build = FakeBuild()
    with pytest.raises(SegmartError, match="was modified after training"):
        model_step(promoted, FAST, build, lambda line: None)
    assert build.calls == []


def test_a_retrain_replaces_a_champion_whose_statistics_the_new_build_cannot_reproduce(
    promoted: Settings,
) -> None:
    champion = registry.champion_id(promoted.models_dir)
    # As after a refit of the champion's as_of on changed data: its statistics are gone.
    path = promoted.models_dir / champion / registry.METADATA
    path.write_text(path.read_text().replace(STATS_ID, "stats-before-the-refit"))
    lines: list[str] = []
    trained, scored = model_step(promoted, FAST, FakeBuild(), lines.append, retrain=True)
    assert registry.champion_id(promoted.models_dir) == trained.model_id == scored.model_id
    (reason,) = _rows(
        promoted,
        "select reason from predictions.model_promotions where model_id = ?",
        [trained.model_id],
    )[0]
    assert reason == (
        "the champion cannot be backtested on the new build: the feature statistics of model"
        f" {champion} (stats-before-the-refit, fitted as of {AS_OF}) no longer exist in"
        f" {promoted.warehouse}"
    )
