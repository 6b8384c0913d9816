"""The rolling-origin backtest: which windows, fitted on what, and what it reports."""

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest

from ml.modelling.backtest import N_WINDOWS, origins, run_backtest
from ml.modelling.examples import Examples
from ml.value.seasonality import seasonal_factor
from tests.ml.synthetic import synthetic_marts
from tests.ml.test_seasonality import _daily


def _examples(n_snapshots: int, n_customers: int = 1500, seed: int = 3) -> Examples:
    training, _ = synthetic_marts(n_customers=n_customers, n_snapshots=n_snapshots, seed=seed)
    folds = pa.array(np.arange(training.num_rows) % 2, pa.int8())
    return Examples.from_arrow(training.append_column("customer_fold", folds))


def _snapshots(n: int) -> np.ndarray:
    latest = date(2025, 10, 1)
    return np.array([latest - timedelta(days=30 * i) for i in range(n)], dtype="datetime64[D]")


def test_each_window_is_fitted_only_on_snapshots_labelled_by_its_origin():
    found = origins(_snapshots(6), horizon_days=90)
    assert len(found) == N_WINDOWS
    assert [len(fit) for _, fit in found] == [3, 2, 1]
    for origin, fit in found:
        assert (fit + np.timedelta64(90, "D") <= origin).all()
    # Latest origin first; with a horizon shorter than the step every earlier snapshot counts.
    assert found[0][0] == _snapshots(6).max()
    assert [len(fit) for _, fit in origins(_snapshots(4), horizon_days=20)] == [3, 2, 1]


def test_too_few_snapshots_give_fewer_windows_and_say_so():
    assert [len(fit) for _, fit in origins(_snapshots(4), horizon_days=90)] == [1]
    assert origins(_snapshots(3), horizon_days=90) == []
    backtest = run_backtest(
        _examples(4, n_customers=600),
        algorithm="logistic_regression",
        params={"C": 1.0},
        horizon_days=90,
        value_at=lambda origin, ids: None,
        seed=0,
    )
    assert len(backtest.windows) == 1
    assert "1 of 3 windows" in backtest.notes[0]


@pytest.fixture(scope="module")
def backtest():
    return run_backtest(
        _examples(6),
        algorithm="hist_gradient_boosting",
        params={"max_leaf_nodes": 15, "min_samples_leaf": 50},
        horizon_days=90,
        value_at=lambda origin, ids: None,
        seed=0,
    )


def test_every_window_reports_purchase_and_revenue_against_the_baselines(backtest):
    assert len(backtest.windows) == 3
    for window in backtest.windows:
        assert {"model", "recency", "frequency"} <= set(window.purchase)
        assert {"roc_auc", "pr_auc", "brier", "lift_top_decile"} == set(window.purchase["model"])
        assert {"model", "recency", "frequency"} <= set(window.revenue)
        assert set(window.revenue["model"]) == {
            "revenue_capture_top_decile",
            "revenue_gini",
            "total_ratio",
            "mae",
        }
        # Rank-only baselines have no totals or errors.
        assert "mae" not in window.revenue["recency"]
    # The synthetic buyers are driven by a latent level the features reflect: the model ranks
    # far better than chance (0.5) in every window; the label noise caps it near 0.75.
    assert min(w.purchase["model"]["roc_auc"] for w in backtest.windows) > 0.7


def test_the_summary_gives_mean_and_spread_over_the_windows(backtest):
    summary = backtest.summary().set_index(["task", "scorer", "metric"])
    values = [w.purchase["model"]["roc_auc"] for w in backtest.windows]
    row = summary.loc[("purchase", "model", "roc_auc")]
    assert row["mean"] == pytest.approx(np.mean(values))
    assert row["sd"] == pytest.approx(np.std(values, ddof=1))
    assert row["min"] == min(values) and row["max"] == max(values)
    text = backtest.to_markdown()
    assert "3 windows" in text and "± " in text and "revenue_capture_top_decile" in text


def test_a_stationary_shop_gets_its_revenue_total_within_ten_percent(backtest):
    # The synthetic shop's spend does not change over time, so the probability x spend
    # prediction, fitted on earlier snapshots, should sum to the realised revenue.
    ratios = [w.revenue["model"]["total_ratio"] for w in backtest.windows]
    assert all(0.9 <= ratio <= 1.1 for ratio in ratios), ratios


def test_each_window_scales_its_revenue_by_the_seasonal_factor_at_its_origin(backtest):
    daily = _daily("2023-06-01", "2026-01-01")
    seasonal = run_backtest(
        _examples(6),
        algorithm="hist_gradient_boosting",
        params={"max_leaf_nodes": 15, "min_samples_leaf": 50},
        horizon_days=90,
        value_at=lambda origin, ids: None,
        seed=0,
        daily_revenue=daily,
    )
    found = origins(np.unique(_examples(6).snapshot_on), horizon_days=90)
    for plain, adjusted, (origin, fit) in zip(
        backtest.windows, seasonal.windows, found, strict=True
    ):
        expected = seasonal_factor(daily, origin, fit, 90)
        assert expected.reason is None and expected.factor != pytest.approx(1.0, abs=0.02)
        assert plain.seasonal_factor == 1.0 and adjusted.seasonal_factor == expected.factor
        model, unadjusted = adjusted.revenue["model"], plain.revenue["model"]
        assert model["total_ratio"] == pytest.approx(unadjusted["total_ratio"] * expected.factor)
        # One factor per window: the ranking is the same.
        assert model["revenue_gini"] == pytest.approx(unadjusted["revenue_gini"])
    assert any("no seasonal adjustment" in note for note in backtest.notes)
    assert not any("seasonal" in note for note in seasonal.notes)
    assert "Seasonal factor of the model's predicted revenue" in seasonal.to_markdown()
