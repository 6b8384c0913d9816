"""The spend model, predicted revenue and the revenue metrics."""

import numpy as np
import pandas as pd
import pytest

from ml.modelling.evaluate import revenue_metrics
from ml.value.revenue import (
    MIN_BUYERS_WITH_REVENUE,
    SpendModel,
    SpendModelError,
    predicted_revenue,
)


def test_revenue_metrics_of_known_rankings():
    realised = np.array([0.0, 0.0, 10.0, 0.0, 30.0, 0.0, 0.0, 60.0, 0.0, 0.0])
    ids = np.arange(10)
    perfect = revenue_metrics(realised, realised, ids)
    assert perfect["revenue_gini"] == pytest.approx(1.0)
    assert perfect["revenue_capture_top_decile"] == pytest.approx(0.6)  # 1 of 10 customers
    assert perfect["total_ratio"] == pytest.approx(1.0) and perfect["mae"] == 0.0
    worst = revenue_metrics(realised, -realised, ids)
    assert worst["revenue_gini"] < 0 and worst["revenue_capture_top_decile"] == 0.0
    flat = revenue_metrics(realised, np.full(10, 5.0), ids)
    assert flat["total_ratio"] == pytest.approx(0.5)
    assert flat["mae"] == pytest.approx((5 * 7 + 5 + 25 + 55) / 10)
    ranks = revenue_metrics(realised, realised, ids, in_currency=False)
    assert set(ranks) == {"revenue_capture_top_decile", "revenue_gini"}


def test_a_random_ranking_has_a_gini_near_zero():
    rng = np.random.default_rng(0)
    realised = rng.gamma(1.0, 50.0, 20_000) * (rng.uniform(size=20_000) < 0.3)
    gini = revenue_metrics(realised, rng.uniform(size=20_000), np.arange(20_000))["revenue_gini"]
    assert abs(gini) < 0.03


def _shop(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    level = rng.normal(size=n)
    features = pd.DataFrame({"level": level, "noise": rng.normal(size=n)})
    bought = rng.uniform(size=n) < 0.4
    revenue = bought * rng.gamma(4.0, 25.0 * np.exp(0.5 * level))
    return features, revenue


def test_the_spend_model_learns_spend_given_a_purchase_and_ignores_non_buyers():
    features, revenue = _shop(6000)
    spend = SpendModel.fit(features, revenue, ("level", "noise"), seed=0)
    predicted = spend.predict(features)
    bought = revenue > 0
    # Fitted on buyers only: its mean is the buyers' mean spend, not diluted by the zeros.
    assert predicted[bought].mean() == pytest.approx(revenue[bought].mean(), rel=0.05)
    assert np.corrcoef(predicted, features["level"])[0, 1] > 0.9
    expected = predicted_revenue(np.full(len(revenue), 0.4), predicted)
    assert expected.sum() == pytest.approx(revenue.sum(), rel=0.05)


def test_the_spend_model_is_the_same_in_any_currency():
    # Early stopping compares gamma deviance with an absolute tolerance: a shop in yen must
    # stop after the same trees as the same shop in euros, with the same predictions scaled.
    features, revenue = _shop(6000)
    euros = SpendModel.fit(features, revenue, ("level", "noise"), seed=0)
    yen = SpendModel.fit(features, revenue * 160.0, ("level", "noise"), seed=0)
    # What early stopping compares, the gain in validation score, is the same in both.
    gains = [np.diff(m.regressor.validation_score_) for m in (euros, yen)]
    np.testing.assert_allclose(gains[1], gains[0], rtol=1e-6, atol=1e-12)
    assert yen.regressor.n_iter_ == euros.regressor.n_iter_
    np.testing.assert_allclose(yen.predict(features), 160.0 * euros.predict(features), rtol=1e-6)


def test_too_few_buyers_with_a_revenue_is_a_clear_error():
    features, revenue = _shop(1000)
    revenue[np.flatnonzero(revenue > 0)[MIN_BUYERS_WITH_REVENUE - 1 :]] = np.nan
    with pytest.raises(SpendModelError, match="a spend model needs at least 100"):
        SpendModel.fit(features, revenue, ("level", "noise"), seed=0)
