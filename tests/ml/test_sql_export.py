import copy
from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier

from ml.errors import SegmartError
from ml.modelling.evaluate import rank_order
from ml.modelling.features import model_matrix
from ml.modelling.propensity import CANDIDATES, PropensityModel, fit_cross_fitted
from ml.modelling.training import TrainOptions, train
from ml.registry import load_model
from ml.serving.spool import score_batch
from ml.serving.sql_export import hist_gradient_boosting_sql, number, scoring_sql, string_literal
from tests.ml.synthetic import (
    examples_from,
    settings_for,
    single_threaded,  # noqa: F401 - autouse fixture
    synthetic_marts,
    synthetic_warehouse,
)

TOLERANCE = 1e-6
# Model inputs blanked in some scoring rows: scaled numerics (also segmentation inputs), a
# missing-value flag and a one-hot slot.
GAPPED = ("n_orders__scaled", "days_since_last_visit__scaled", "revenue_was_missing",
          "region__level_1")  # fmt: skip


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model trained the default way (gradient boosting, calibrated, cross-fitted)."""
    shop = settings_for(tmp_path_factory.mktemp("sql_export"))
    synthetic_warehouse(shop.warehouse)
    train(shop, TrainOptions(n_threads=1))
    return load_model(shop.models_dir, "latest")


@pytest.fixture(scope="module")
def marts():
    return synthetic_marts()


def _with_gaps(features: pa.Table, every: int = 5) -> pa.Table:
    """Every `every`-th row has NULL inputs, a different column each time (and all at once)."""
    row = np.arange(features.num_rows)
    pattern = np.where(row % every == 0, (row // every) % (len(GAPPED) + 1), -1)
    for position, column in enumerate(GAPPED):
        blank = pa.array((pattern == position) | (pattern == len(GAPPED)))
        index = features.column_names.index(column)
        values = features.column(column)
        features = features.set_column(
            index, column, pc.if_else(blank, pa.nulls(len(row), values.type), values)
        )
    return features


def _sql_scores(model, features: pa.Table) -> pd.DataFrame:
    with duckdb.connect() as con:
        con.execute("set threads = 1")
        con.register("customer_features", features)
        scores = con.sql(scoring_sql(model, "customer_features")).to_df()
    return scores.set_index("customer_id").loc[features.column("customer_id").to_pylist()]


def _max_difference(model, features: pa.Table, sql: pd.DataFrame) -> float:
    columns = list(model.propensity.feature_columns)
    expected = model.propensity.predict_proba(model_matrix(features, columns)).to_numpy()
    return float(np.max(np.abs(sql["purchase_probability"].to_numpy() - expected)))


def test_sql_scores_equal_the_python_scorers(model, marts):
    _, features = marts
    python, _ = score_batch(model, features.combine_chunks().to_batches()[0])
    sql = _sql_scores(model, features)
    proba = python.column("purchase_probability").to_numpy()
    difference = np.abs(sql["purchase_probability"].to_numpy() - proba)
    assert difference.max() <= TOLERANCE
    np.testing.assert_array_equal(sql["segment_id"], python.column("segment_id").to_numpy())
    order = rank_order(proba, sql.index.to_numpy())
    deciles = np.empty(len(proba), int)
    deciles[order] = np.arange(len(proba)) * 10 // len(proba) + 1
    np.testing.assert_array_equal(sql["propensity_decile"], deciles)


def test_null_inputs_take_each_splits_missing_value_branch(model, marts):
    features = _with_gaps(marts[1])
    sql = _sql_scores(model, features)
    assert _max_difference(model, features, sql) <= TOLERANCE


def test_a_null_segmentation_input_leaves_only_that_rows_segment_null(model, marts):
    features = _with_gaps(marts[1])
    sql = _sql_scores(model, features)
    scaled = model_matrix(features, list(model.segmenter.feature_names_in_))
    complete = scaled.notna().all(axis=1).to_numpy()
    assert 0 < complete.sum() < len(complete)
    assert sql["segment_id"][~complete].isna().all()
    np.testing.assert_array_equal(
        sql["segment_id"][complete].astype(int), model.segmenter.predict(scaled[complete])
    )


def test_a_moved_tree_threshold_is_caught(model, marts):
    """The comparison can fail: one root threshold moved across the data shows up."""
    _, features = marts
    moved = copy.deepcopy(model)
    member = moved.propensity.estimator.estimators_[0].estimator
    booster = member.calibrated_classifiers_[0].estimator.estimator
    root = booster._predictors[0][0].nodes[0]
    column = model.propensity.feature_columns[root["feature_idx"]]
    values = features.column(column).to_numpy()
    below = (values <= root["num_threshold"]).mean()
    root["num_threshold"] = np.quantile(values, 0.9 if below < 0.5 else 0.1)
    assert _max_difference(model, features, _sql_scores(moved, features)) > TOLERANCE


def test_a_split_of_missing_from_present_values_sends_nulls_right():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2000, 1))
    gap = rng.uniform(size=2000) < 0.3
    x[gap, 0] = np.nan
    label = (gap | (rng.uniform(size=2000) < 0.2)).astype(int)
    booster = HistGradientBoostingClassifier(max_iter=3, early_stopping=False).fit(x, label)
    assert np.isinf(booster._predictors[0][0].nodes[0]["num_threshold"])
    decision = " + ".join(hist_gradient_boosting_sql(booster, ["x"]))
    with duckdb.connect() as con:
        con.register("rows", pd.DataFrame({"x": x[:, 0]}))  # NaN arrives as NULL
        sql = con.sql(f"select {decision} as decision from rows").to_df()["decision"]
    np.testing.assert_allclose(sql, booster.decision_function(x), rtol=0, atol=TOLERANCE)


def _cross_fitted(marts, algorithm: str, method: str, missing_share: float):
    """Cross-fitted members as `fit_cross_fitted` makes them, on inputs with NaN gaps."""
    training, _ = marts
    examples = examples_from(training)
    X = examples.X.copy()
    gaps = np.random.default_rng(1).uniform(size=len(X)) < missing_share
    X.loc[gaps, ["n_orders__scaled", "tenure_days__scaled"]] = np.nan
    latest = examples.snapshot_on == examples.snapshot_on.max()
    halves = [examples.fold == k for k in (0, 1)]
    ensemble, _ = fit_cross_fitted(
        algorithm,
        CANDIDATES[algorithm][0],
        method,
        random_state=0,
        train=[(X[half], examples.label[half]) for half in halves],
        calibrate_on=[(X[half & latest], examples.label[half & latest]) for half in halves],
    )
    return PropensityModel(ensemble, examples.inputs)


@pytest.mark.parametrize(
    ("algorithm", "method", "missing_share"),
    [
        ("hist_gradient_boosting", "isotonic", 0.2),
        ("hist_gradient_boosting", "sigmoid", 0.2),
        ("logistic_regression", "isotonic", 0.0),
        ("logistic_regression", "sigmoid", 0.0),
    ],
)
def test_every_supported_algorithm_and_calibration_matches(
    model, marts, algorithm, method, missing_share
):
    propensity = _cross_fitted(marts, algorithm, method, missing_share)
    exported = replace(model, propensity=propensity)
    features = _with_gaps(marts[1]) if missing_share else marts[1]
    assert _max_difference(exported, features, _sql_scores(exported, features)) <= TOLERANCE


def test_an_algorithm_without_an_export_is_refused_with_the_fix(model, marts):
    exported = replace(model, propensity=_cross_fitted(marts, "decision_tree", "sigmoid", 0.0))
    with pytest.raises(SegmartError, match="retrain with --algorithm"):
        scoring_sql(exported, "customer_features")


@settings(deadline=None)  # a DuckDB connection per example; the machine is shared
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_a_number_reads_back_as_the_same_double(values):
    with duckdb.connect() as con:
        read = con.execute(f"select {', '.join(number(v) for v in values)}").fetchone()
    assert list(read) == values
    assert [np.signbit(r) for r in read] == [np.signbit(v) for v in values]


def test_segment_names_come_with_the_scores_quotes_included(model, marts):
    _, features = marts
    some_segment = int(model.segmenter.predict(model_matrix(features, _segment_inputs(model)))[0])
    renamed = {**model.segment_names, some_segment: ("Won't buy", "quoted")}
    named = replace(model, segment_names=renamed)
    with duckdb.connect() as con:
        con.register("customer_features", features)
        scores = con.sql(scoring_sql(named, "customer_features", with_segment_names=True)).df()
    expected = [named.segment_names[int(segment)][0] for segment in scores["segment_id"]]
    assert scores["segment_name"].tolist() == expected
    assert "Won't buy" in expected


def _segment_inputs(model) -> list[str]:
    return list(model.segmenter.feature_names_in_)


def test_a_backslash_in_a_segment_name_is_refused():
    with pytest.raises(ValueError, match="backslash"):
        string_literal("a\\b")
