"""Customer lifetime value: expected purchases x expected spend, discounted by period."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from ml.value import BetaGeoModel, GammaGammaModel, customer_lifetime_value

FREQUENCY = np.array([0.0, 1.0, 4.0, 20.0])
RECENCY = np.array([0.0, 30.0, 200.0, 350.0])
T = np.array([60.0, 100.0, 400.0, 365.0])
MEAN_SPEND = np.array([np.nan, 25.0, 40.0, 55.0])


@pytest.fixture
def models() -> tuple[BetaGeoModel, GammaGammaModel]:
    purchases = BetaGeoModel()
    purchases.r_, purchases.alpha_, purchases.a_, purchases.b_ = 0.6, 60.0, 0.8, 2.5
    spend = GammaGammaModel()
    spend.p_, spend.q_, spend.v_ = 6.0, 4.0, 15.0
    spend.population_mean_spend_ = 30.0
    return purchases, spend


def test_undiscounted_value_is_expected_purchases_times_expected_spend(models) -> None:
    purchases, spend = models
    value = customer_lifetime_value(
        purchases, spend, FREQUENCY, RECENCY, T, MEAN_SPEND, horizon_days=365
    )
    expected = purchases.conditional_expected_purchases(
        365, FREQUENCY, RECENCY, T
    ) * spend.conditional_expected_spend(FREQUENCY, MEAN_SPEND)
    np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_discounting_by_short_periods_approaches_continuous_discounting(models) -> None:
    """With 1-day periods the sum equals the integral of the purchase rate times the discount
    factor (the rate by differentiating expected purchases numerically) to within 0.1%."""
    purchases, spend = models
    rate = 0.15
    value = customer_lifetime_value(
        purchases,
        spend,
        FREQUENCY,
        RECENCY,
        T,
        MEAN_SPEND,
        horizon_days=730,
        annual_discount_rate=rate,
        period_days=1,
    )
    per_purchase = spend.conditional_expected_spend(FREQUENCY, MEAN_SPEND)
    for i in range(len(FREQUENCY)):

        def discounted_rate(day: float, i: int = i) -> float:
            step = 1e-3
            upper = purchases.conditional_expected_purchases(
                day + step, FREQUENCY[i : i + 1], RECENCY[i : i + 1], T[i : i + 1]
            )[0]
            lower = purchases.conditional_expected_purchases(
                max(day - step, 0.0), FREQUENCY[i : i + 1], RECENCY[i : i + 1], T[i : i + 1]
            )[0]
            return (
                (upper - lower) / (day + step - max(day - step, 0.0)) * (1 + rate) ** (-day / 365)
            )

        continuous, _ = integrate.quad(discounted_rate, 0, 730, limit=200)
        assert value[i] == pytest.approx(continuous * per_purchase[i], rel=1e-3)


def test_value_falls_as_the_discount_rate_rises(models) -> None:
    purchases, spend = models
    values = [
        customer_lifetime_value(
            purchases, spend, FREQUENCY, RECENCY, T, MEAN_SPEND, annual_discount_rate=rate
        )
        for rate in (0.0, 0.1, 0.3)
    ]
    assert np.all(values[0] > values[1]) and np.all(values[1] > values[2])


def test_a_horizon_that_is_not_a_multiple_of_the_period_counts_every_day(models) -> None:
    purchases, spend = models
    # A discount rate near zero: the sum of the period differences telescopes to the horizon.
    value = customer_lifetime_value(
        purchases,
        spend,
        FREQUENCY,
        RECENCY,
        T,
        MEAN_SPEND,
        horizon_days=100,
        period_days=30,
        annual_discount_rate=1e-12,
    )
    undiscounted = customer_lifetime_value(
        purchases, spend, FREQUENCY, RECENCY, T, MEAN_SPEND, horizon_days=100
    )
    np.testing.assert_allclose(value, undiscounted, rtol=1e-9)


@pytest.mark.parametrize(
    "options",
    [{"horizon_days": 0}, {"period_days": -1}, {"annual_discount_rate": -0.1}],
)
def test_nonsense_options_are_refused(models, options: dict) -> None:
    purchases, spend = models
    with pytest.raises(ValueError, match="must be"):
        customer_lifetime_value(purchases, spend, FREQUENCY, RECENCY, T, MEAN_SPEND, **options)
