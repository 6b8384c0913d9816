"""Train and score on a generated shop built by dbt, judged against the simulation's truth.

The generator knows every customer's true purchase probability (the oracle), so the model's
ROC-AUC on the purchases realised after as_of can be compared with the best any model could do.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml import warehouse
from ml.config import Settings
from ml.modelling.evaluate import baseline_scores
from ml.modelling.train_report import TrainReport
from ml.modelling.training import TrainOptions, train
from ml.registry import load_model
from ml.serving.compatibility import scorer_columns
from ml.serving.scoring import SCORES_TABLE, ScoreReport, score
from ml.serving.spool import score_batch
from scripts.ground_truth import (
    load_ground_truth,
    load_uplift_windows,
    true_purchase_probability,
)
from tests.conftest import AS_OF, HORIZON_DAYS, make_settings

pytestmark = pytest.mark.integration

# The mart's features cannot pin down each simulated customer's latent purchase rate and
# decline, which the oracle knows exactly; that gap, not sampling noise, dominates. Measured on
# generated shops of 5k and 20k customers (seed 1): oracle 0.961, model 0.904-0.905, the same gap
# at both sizes; the same gradient boosting given the true latent rate as an extra feature
# reaches 0.934, and with the decline flag too 0.950. Trend features (orders 90-180 days back,
# recent over lifetime order rate, recency over the usual gap) moved the 20k demo shop (seed 42)
# from 0.910 to 0.911 against an oracle of 0.963; lifetime order rates and 365-day browsing
# added in an experiment moved it by less than 0.001. The sampling standard error of the AUC
# difference at ~4k customers is about 0.005, so 0.07 leaves room for noise but not for a
# model that learnt less than the features allow.
ORACLE_AUC_TOLERANCE = 0.07
OPTIONS = TrainOptions(n_threads=1)


@dataclass(frozen=True)
class Run:
    settings: Settings
    trained: TrainReport
    scored: ScoreReport
    scores: pd.DataFrame


def _train_and_score(built: Path, raw_dir: Path, root: Path) -> Run:
    root.mkdir(parents=True)
    shutil.copy(built / "segmart.duckdb", root / "segmart.duckdb")
    settings = make_settings(raw_dir, root / "segmart.duckdb", root)
    trained = train(settings, OPTIONS)
    scored = score(settings, n_threads=1)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        scores = con.sql(f"select * from {SCORES_TABLE} order by customer_id").fetchdf()
    return Run(settings, trained, scored, scores)


@pytest.fixture(scope="module")
def run(built_warehouse_dir: Path, generated_data: Path, tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("train_and_score")
    return _train_and_score(built_warehouse_dir, generated_data / "raw", root / "first")


@pytest.fixture(scope="module")
def outcomes(run: Run, generated_data: Path) -> pd.DataFrame:
    """Per scored customer: the score, the oracle probability, realised purchase, features."""
    window_end = AS_OF + timedelta(days=HORIZON_DAYS)
    with duckdb.connect(str(run.settings.warehouse), read_only=True) as con:
        buyers = con.sql(
            "select distinct customer_id from core.orders where is_counted_purchase"
            " and ordered_on >= ? and ordered_on < ?",
            params=[AS_OF, window_end],
        ).fetchdf()["customer_id"]
        features = con.sql("select * from ml.customer_features order by customer_id").fetchdf()
    truth = load_ground_truth(generated_data)
    windows = load_uplift_windows(generated_data)  # campaigns raise treated customers' rates
    oracle = true_purchase_probability(truth, AS_OF, HORIZON_DAYS, windows)
    frame = features.merge(run.scores[["customer_id", "purchase_probability"]], on="customer_id")
    frame["oracle"] = frame["customer_id"].map(oracle)
    frame["purchased"] = frame["customer_id"].isin(set(buyers))
    # Customers the pipeline knows but the simulation does not (injected dirt) have no oracle.
    return frame[frame["oracle"].notna()].reset_index(drop=True)


def test_out_of_time_auc_is_close_to_the_oracle(outcomes: pd.DataFrame, record_property):
    model_auc = roc_auc_score(outcomes["purchased"], outcomes["purchase_probability"])
    oracle_auc = roc_auc_score(outcomes["purchased"], outcomes["oracle"])
    record_property("model_auc", round(model_auc, 4))
    record_property("oracle_auc", round(oracle_auc, 4))
    print(f"\nout-of-time ROC-AUC at {AS_OF}: model {model_auc:.4f}, oracle {oracle_auc:.4f}")
    assert len(outcomes) > 3_000
    assert model_auc >= oracle_auc - ORACLE_AUC_TOLERANCE


def test_every_naive_baseline_is_beaten_out_of_time_and_on_validation(
    run: Run, outcomes: pd.DataFrame, record_property
):
    model_auc = roc_auc_score(outcomes["purchased"], outcomes["purchase_probability"])
    for name, baseline in baseline_scores(outcomes).items():
        baseline_auc = roc_auc_score(outcomes["purchased"], baseline)
        record_property(f"{name}_auc", round(baseline_auc, 4))
        assert model_auc > baseline_auc + 0.02, name
    assert all(margin > 0.02 for margin in run.trained.margins.values())
    assert not run.trained.warnings


def test_validation_probabilities_beat_the_base_rate_and_deciles_hold_out_of_time(
    run: Run, outcomes: pd.DataFrame, record_property
):
    metrics = run.trained.metrics
    # Brier score of always predicting the validation purchase rate p is p * (1 - p).
    rate = run.trained.metadata.extra["validation_curves"]["calibration"]["fraction_positive"]
    base_rate = float(np.mean(rate))
    assert metrics["brier"] < 0.75 * base_rate * (1 - base_rate)
    # Out of time the ranking must hold: each decile buys less than the one above it. The
    # level may trail the realised rate: the model was calibrated on a summer window and
    # scores the autumn peak, and seasonality is not a feature.
    deciles = outcomes.merge(run.scores[["customer_id", "propensity_decile"]], on="customer_id")
    realised = deciles.groupby("propensity_decile")["purchased"].mean()
    record_property("realised_rate_by_decile", [round(r, 3) for r in realised])
    assert realised.index.tolist() == list(range(1, 11))
    assert (realised.diff().dropna() < 0.03).all()
    assert realised[1] > 3 * realised[10]


def test_segments_are_named_profiled_and_ordered_by_value(run: Run):
    profiles = run.scored.segments
    assert profiles["segment_name"].is_unique
    assert profiles["segment_id"].tolist() == list(range(1, len(profiles) + 1))
    assert 3 <= len(profiles) <= 10
    # Segment 1 is the most valuable: the highest mean revenue at training time and now.
    assert profiles.loc[0, "mean_revenue"] == profiles["mean_revenue"].max()
    assert run.scores["reason_1"].str.len().gt(5).all()


def test_the_registry_artifact_loads_and_reproduces_the_scores(run: Run):
    model = load_model(run.settings.models_dir, run.trained.model_id)
    with duckdb.connect(str(run.settings.warehouse), read_only=True) as con:
        columns = ["customer_id", "as_of", *scorer_columns(model.metadata)]
        batch = next(warehouse.iter_batches(con, "ml.customer_features", 500, columns=columns))
    scores, _ = score_batch(model, batch)
    expected = run.scores.set_index("customer_id").loc[batch.column("customer_id").to_pylist()]
    np.testing.assert_array_equal(
        scores.column("purchase_probability").to_numpy(), expected["purchase_probability"]
    )
    assert scores.column("segment_id").to_pylist() == expected["segment_id"].tolist()


def test_same_inputs_and_seed_give_identical_scores_and_segments(
    run: Run, built_warehouse_dir: Path, generated_data: Path, tmp_path: Path
):
    again = _train_and_score(built_warehouse_dir, generated_data / "raw", tmp_path / "again")
    assert again.trained.metadata.training_data_sha256 == run.trained.metadata.training_data_sha256
    assert again.trained.metrics == run.trained.metrics
    columns = [c for c in run.scores.columns if c != "model_id"]
    pd.testing.assert_frame_equal(again.scores[columns], run.scores[columns])
    assert np.array_equal(again.scores["segment_id"], run.scores["segment_id"])
    assert again.trained.metadata.segments == run.trained.metadata.segments
