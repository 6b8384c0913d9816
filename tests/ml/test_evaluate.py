import numpy as np
import pandas as pd
import pytest

from ml.modelling.evaluate import (
    baseline_metrics,
    baseline_scores,
    classification_metrics,
    markdown_table,
    metrics_table,
    rank_order,
    top_decile_metrics,
)


def test_top_decile_lift_and_capture_on_a_known_ranking():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1] * 2)  # 6 buyers out of 20 (30%)
    score = np.linspace(1, 0, 20)  # rows in order: the top 2 rows are buyers
    ids = np.arange(20)
    metrics = top_decile_metrics(y, score, ids)
    assert metrics["lift_top_decile"] == pytest.approx(1.0 / 0.3)
    assert metrics["capture_top_decile"] == pytest.approx(2 / 6)


def test_ties_are_broken_by_customer_id_so_the_top_decile_is_deterministic():
    order = rank_order(np.array([0.5, 0.9, 0.5, 0.5]), np.array(["c", "a", "b", "a0"]))
    assert order.tolist() == [1, 3, 2, 0]


def test_recency_baseline_ranks_customers_who_never_ordered_last():
    raw = pd.DataFrame(
        {
            "days_since_last_order": [5.0, 200.0, 97.0],  # the last one is the imputed mean
            "days_since_last_order_was_missing": [0.0, 0.0, 1.0],
            "n_orders_365d": [3.0, 1.0, 0.0],
            "n_orders_90d": [1.0, 0.0, 0.0],
        }
    )
    scores = baseline_scores(raw)
    assert np.argsort(-scores["recency"]).tolist() == [0, 1, 2]
    assert scores["bought_last_horizon"].tolist() == [1.0, 0.0, 0.0]


def test_metrics_table_has_the_model_first_and_leaves_non_probability_cells_empty():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    proba = np.clip(y * 0.6 + rng.uniform(0, 0.4, 200), 0, 1)
    raw = pd.DataFrame(
        {
            "days_since_last_order": rng.uniform(1, 300, 200),
            "days_since_last_order_was_missing": np.zeros(200),
            "n_orders_365d": rng.poisson(2, 200).astype(float),
            "n_orders_90d": rng.poisson(1, 200).astype(float),
        }
    )
    ids = np.arange(200)
    model = classification_metrics(y, proba, ids)
    table = metrics_table(model, baseline_metrics(y, raw, ids))
    assert table.index.tolist() == [
        "model",
        "baseline: recency",
        "baseline: frequency",
        "baseline: bought_last_horizon",
    ]
    assert table.loc["model"].notna().all()
    assert np.isnan(table.loc["baseline: recency", "brier"])
    assert table.loc["baseline: bought_last_horizon", "f1"] >= 0
    assert model["roc_auc"] > 0.9


def test_markdown_table_renders_nan_as_a_dash_and_escapes_pipes():
    text = markdown_table(pd.DataFrame({"name": ["a|b"], "x": [np.nan]}), index=False)
    assert text.splitlines() == ["| name | x |", "|---|---|", "| a\\|b | — |"]
