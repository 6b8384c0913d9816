"""The seasonal factor of predicted revenue: history needed, recovery, and point in time."""

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.value.revenue import SpendModel
from ml.value.seasonality import (
    MIN_MONTHS,
    for_scoring,
    month_index,
    monthly_rates,
    read_daily_revenue,
    seasonal_factor,
    window_index,
)
from tests.ml.test_revenue import _shop

# Summer dip, November/December peak (the generator's shape, on purpose not normalised).
SEASON = np.array([0.90, 0.85, 0.95, 1.00, 1.00, 0.90, 0.80, 0.80, 0.95, 1.05, 1.45, 1.55])
REFERENCE = [date(2025, 5, 6), date(2025, 6, 5), date(2025, 7, 5)]
AS_OF = date(2025, 10, 3)


def _daily(
    start: str,
    end: str,
    season: np.ndarray = SEASON,
    drift_per_year: float = -0.15,
    noise: float = 0.0,
) -> pd.DataFrame:
    """Rows of ml.daily_revenue: a linearly growing buyer base, each buyer spending at a rate
    that follows `season` and drifts by `drift_per_year` (log scale)."""
    days = pd.date_range(start, end, freq="D", inclusive="left")
    rng = np.random.default_rng(0)
    first = np.full(len(days), 30)
    before = np.concatenate([[200], 200 + np.cumsum(first)[:-1]])
    years = np.arange(len(days)) / 365.25
    rate = 2.0 * season[days.month - 1] * np.exp(drift_per_year * years)
    repeat = before * rate * np.exp(noise * rng.normal(size=len(days)))
    return pd.DataFrame(
        {
            "revenue_on": days.date,
            "n_first_purchases": first,
            "n_buyers_before": before,
            "repeat_revenue": repeat,
        }
    )


def _true_factor(season: np.ndarray, as_of: date, reference: list[date], days: int = 90):
    trained = np.mean([window_index(season, snapshot, days) for snapshot in reference])
    return window_index(season, as_of, days) / trained


def test_the_factor_is_1_without_a_year_of_history_and_says_why():
    daily = _daily("2024-10-01", "2025-10-03")  # 12 complete months
    factor = seasonal_factor(daily, AS_OF, REFERENCE, 90)
    assert factor.factor == 1.0 and factor.month_index == ()
    assert f"12 complete months of revenue before it; a seasonal index needs {MIN_MONTHS}" in (
        factor.reason
    )
    assert "factor 1" in factor.describe()
    missing = seasonal_factor(None, AS_OF, REFERENCE, 90)
    assert missing.factor == 1.0 and "ml.daily_revenue is missing" in missing.reason


def test_thirteen_months_are_enough():
    daily = _daily("2024-09-01", "2025-10-03")  # September 2024 to September 2025
    factor = seasonal_factor(daily, AS_OF, REFERENCE, 90)
    assert factor.reason is None and factor.n_months == 13
    assert factor.factor == pytest.approx(_true_factor(SEASON, AS_OF, REFERENCE), rel=0.02)


def test_a_known_seasonal_pattern_is_recovered_despite_growth_and_drift():
    daily = _daily("2024-01-01", "2025-10-03", noise=0.05)
    index = month_index(monthly_rates(daily, AS_OF))
    normalised = SEASON / np.exp(np.log(SEASON).mean())
    np.testing.assert_allclose(index, normalised, rtol=0.02)
    factor = seasonal_factor(daily, AS_OF, REFERENCE, 90)
    truth = _true_factor(SEASON, AS_OF, REFERENCE)
    assert truth == pytest.approx(1.58, abs=0.01)  # October-December over summer horizons
    assert factor.factor == pytest.approx(truth, rel=0.02)
    assert factor.n_months == 21  # January 2024 to September 2025


def test_a_shop_without_seasons_gets_a_factor_of_about_1():
    daily = _daily("2024-01-01", "2025-10-03", season=np.ones(12), noise=0.05)
    assert seasonal_factor(daily, AS_OF, REFERENCE, 90).factor == pytest.approx(1.0, abs=0.02)


def test_the_factor_uses_no_day_on_or_after_as_of():
    daily = _daily("2024-01-01", "2026-01-01", noise=0.05)
    factor = seasonal_factor(daily, AS_OF, REFERENCE, 90).factor
    after = pd.to_datetime(daily["revenue_on"]) >= pd.Timestamp(AS_OF)
    changed = daily.copy()
    changed.loc[after, "repeat_revenue"] *= 10.0
    changed.loc[after, "n_buyers_before"] //= 3
    assert seasonal_factor(changed, AS_OF, REFERENCE, 90).factor == factor
    # The same change one month earlier does move it: the test can fail.
    earlier = pd.to_datetime(daily["revenue_on"]) >= pd.Timestamp("2025-09-01")
    changed.loc[earlier, "repeat_revenue"] *= 10.0
    assert seasonal_factor(changed, AS_OF, REFERENCE, 90).factor != pytest.approx(factor)


def test_the_spend_model_sums_to_its_buyers_revenue_and_carries_the_factor():
    features, revenue = _shop(6000)
    spend = SpendModel.fit(features, revenue, ("level", "noise"), seed=0)
    bought = revenue > 0
    assert spend.predict(features)[bought].sum() == pytest.approx(revenue[bought].sum())
    factor = seasonal_factor(_daily("2024-01-01", "2025-10-03"), AS_OF, REFERENCE, 90)
    seasonal = spend.with_season(factor)
    assert seasonal.season_as_of == "2025-10-03"
    np.testing.assert_allclose(
        seasonal.predict(features), spend.predict(features) * factor.factor, rtol=1e-12
    )


def test_a_spend_model_saved_before_the_factors_predicts_as_before():
    features, revenue = _shop(3000)
    spend = SpendModel.fit(features, revenue, ("level", "noise"), seed=0)
    # What loading an older artifact gives: only the fields it had.
    old = object.__new__(SpendModel)
    object.__setattr__(old, "regressor", spend.regressor)
    object.__setattr__(old, "inputs", spend.inputs)
    assert (old.level, old.season, old.season_as_of) == (1.0, 1.0, None)
    np.testing.assert_array_equal(old.predict(features), spend.regressor.predict(features))


@dataclass(frozen=True)
class _Metadata:
    snapshots: tuple[str, ...]
    horizon_days: int = 90


@dataclass(frozen=True)
class _Model:
    metadata: _Metadata
    spend: SpendModel | None


def _warehouse(daily: pd.DataFrame, as_of: date) -> duckdb.DuckDBPyConnection:
    """ml.daily_revenue as a build at `as_of` leaves it: the days before, each with as_of."""
    con = duckdb.connect()
    con.execute("create schema ml")
    con.register("daily", daily)
    con.execute(
        "create table ml.daily_revenue as select *, ?::date as as_of_on from daily"
        " where revenue_on < ?",
        [as_of, as_of],
    )
    return con


def test_scoring_a_later_as_of_recomputes_the_factor_from_the_data_before_it():
    features, revenue = _shop(3000)
    daily = _daily("2024-01-01", "2026-01-01", noise=0.05)
    trained_at = seasonal_factor(daily, date(2025, 7, 1), REFERENCE[:1], 90)
    spend = SpendModel.fit(features, revenue, ("level", "noise"), seed=0).with_season(trained_at)
    model = _Model(_Metadata(("2025-03-01", "2025-04-01")), spend)
    same = for_scoring(_warehouse(daily, date(2025, 7, 1)), model)
    assert same.spend.season == trained_at.factor
    con = _warehouse(daily, AS_OF)
    later = for_scoring(con, model).spend
    expected = seasonal_factor(read_daily_revenue(con, AS_OF), AS_OF, model.metadata.snapshots, 90)
    assert later.season_as_of == "2025-10-03" and later.season == expected.factor
    assert later.season != pytest.approx(trained_at.factor)
    # A warehouse built before ml.daily_revenue existed: no adjustment rather than a stale one.
    unadjusted = for_scoring(duckdb.connect(), model).spend
    assert (unadjusted.season, unadjusted.season_as_of) == (1.0, None)


def test_the_factor_is_found_while_the_features_are_being_streamed_from_the_same_connection():
    # The dbt Python model opens its feature reader on the session before scoring.
    features, revenue = _shop(3000)
    spend = SpendModel.fit(features, revenue, ("level", "noise"), seed=0)
    model = _Model(_Metadata(("2025-03-01", "2025-04-01")), spend)
    con = _warehouse(_daily("2024-01-01", "2026-01-01"), AS_OF)
    reader = con.sql("select * from ml.daily_revenue").to_arrow_reader(10)
    assert for_scoring(con, model).spend.season_as_of == "2025-10-03"
    assert reader.read_next_batch().num_rows == 10
