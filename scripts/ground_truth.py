"""The simulation's purchase process, its ground truth, and the oracle built on it.

The synthetic shop (``scripts.generate``) draws every customer's orders from an inhomogeneous
Poisson process whose rate is piecewise constant per calendar week, plus an optional "first
order" shortly after signup. This module owns that process, so the generator and the oracle
evaluate the very same formula:

``lambda_i(week) = rate_i * season(week) * trend_i(week)`` orders per week, active from the
customer's ``created_at`` (to the second) until ``DATA_END``, where

* ``season(week)`` is ``SEASONALITY_BY_MONTH`` of the month of the week's fourth day,
* ``trend_i(week)`` (``weekly_profile``) is 1 before the customer's ``decline_start_at`` and
  ``exp(-(week_start - decline_start_at) / decline_tau_days)`` after it (null start: no decline),

times ``rate_multiplier`` inside the effect window of every treated campaign touch (from its
``sent_at`` for ``effect_days``; control touches and placebo campaigns change nothing), and,
independently, with probability ``first_order_prob`` one order at ``created_at + D`` with
``D ~ Exponential(FIRST_ORDER_MEAN_DELAY_DAYS)`` (dropped if it would fall on or after
``DATA_END``). Every order is cancelled independently with probability ``cancel_prob``. Order
times are floored to whole seconds; since ``created_at`` and all window bounds are whole
seconds, flooring never moves an order across a bound.

The ground truth lives in ``<out_dir>/ground_truth/`` (the pipeline never reads it):
``customers.parquet`` (one row per real customer: persona, every latent parameter, the clean
attribute values, ``is_reloaded``), ``campaigns.parquet`` (the schedule and each campaign's
``rate_multiplier``, ``effect_days``, ``is_placebo``), ``uplift_windows.parquet`` (one row per
treated touch that changes purchases: ``customer_id``, ``campaign_id``, ``starts_at``,
``ends_at``, ``rate_multiplier``), ``weeks.parquet`` (week bounds and season), ``meta.json``
(arguments, shape, rates, the complementary category pairs) and ``malformed_csv_lines.json``
(physical line numbers of the deliberately malformed CSV lines; empty for parquet).

The oracle is exact when given the uplift windows (``load_uplift_windows``); without them it
is the probability the shop would have had without any campaign.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

DATA_START = date(2024, 1, 1)
"""First day of simulated data (inclusive)."""
DATA_END = date(2026, 1, 1)
"""Day after the last simulated day (exclusive)."""

SECONDS_PER_DAY = 86_400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
DATA_SECONDS = (DATA_END - DATA_START).days * SECONDS_PER_DAY
N_WEEKS = -(-DATA_SECONDS // SECONDS_PER_WEEK)
"""Calendar weeks from ``DATA_START`` (a Monday); the last one is partial (3 days)."""

SEASONALITY_BY_MONTH = np.array(
    [0.90, 0.85, 0.95, 1.00, 1.00, 0.90, 0.80, 0.80, 0.95, 1.05, 1.45, 1.55]
)
"""Purchase and browse multiplier per calendar month: summer dip, November/December peak."""

FIRST_ORDER_MEAN_DELAY_DAYS = 1.5
"""Mean of the exponential delay between signup and the optional first order."""

GROUND_TRUTH_DIR = "ground_truth"


def week_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Return the start and end of every simulated week in seconds since ``DATA_START``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(starts, ends)``, int64 arrays of length ``N_WEEKS``; the last week ends at
        ``DATA_END``.
    """
    starts = np.arange(N_WEEKS, dtype=np.int64) * SECONDS_PER_WEEK
    ends = np.minimum(starts + SECONDS_PER_WEEK, DATA_SECONDS)
    return starts, ends


def seasonality() -> np.ndarray:
    """Return the season multiplier of every simulated week.

    Returns
    -------
    numpy.ndarray
        float64 array of length ``N_WEEKS``.
    """
    fourth_days = np.datetime64(DATA_START, "D") + np.arange(N_WEEKS) * 7 + 3
    months = fourth_days.astype("datetime64[M]").astype(np.int64) % 12
    return SEASONALITY_BY_MONTH[months]


def weekly_profile(
    week: np.ndarray, decline_start_s: np.ndarray, decline_tau_days: np.ndarray
) -> np.ndarray:
    """Return ``season(week) * trend(week)`` element-wise (rows are customer-week cells).

    Parameters
    ----------
    week : numpy.ndarray
        Week index of each cell.
    decline_start_s : numpy.ndarray
        The cell's customer's decline start in seconds since ``DATA_START``; NaN for none.
    decline_tau_days : numpy.ndarray
        The cell's customer's decay time constant in days (ignored without a decline).

    Returns
    -------
    numpy.ndarray
        float64 multiplier of the base rate, one per cell.
    """
    profile = seasonality()[week]
    declining = np.flatnonzero(~np.isnan(decline_start_s))
    if declining.size:
        lag_days = (
            week[declining].astype(np.int64) * SECONDS_PER_WEEK - decline_start_s[declining]
        ) / SECONDS_PER_DAY
        profile[declining] *= np.exp(-np.maximum(lag_days, 0.0) / decline_tau_days[declining])
    return profile


def to_seconds(values: pd.Series) -> np.ndarray:
    """Convert naive UTC timestamps to float seconds since ``DATA_START`` (NaT becomes NaN).

    Parameters
    ----------
    values : pandas.Series
        Datetime-like series.

    Returns
    -------
    numpy.ndarray
        float64 seconds.
    """
    origin = pd.Timestamp(DATA_START)
    delta = pd.to_datetime(values) - origin
    return delta.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)


def load_ground_truth(out_dir: Path) -> pd.DataFrame:
    """Load the per-customer ground truth written by ``scripts.generate.generate``.

    Parameters
    ----------
    out_dir : Path
        The generator's output directory (the one holding ``raw/`` and ``ground_truth/``).

    Returns
    -------
    pandas.DataFrame
        One row per real customer, indexed by ``customer_id``, with ``persona`` and the latent
        parameters that ``true_purchase_probability`` needs.
    """
    path = Path(out_dir) / GROUND_TRUTH_DIR / "customers.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no ground truth at {path}; run the generator first")
    return pd.read_parquet(path).set_index("customer_id")


def load_uplift_windows(out_dir: Path) -> pd.DataFrame:
    """Load the campaign effect windows written by ``scripts.generate.generate``.

    Parameters
    ----------
    out_dir : Path
        The generator's output directory (the one holding ``raw/`` and ``ground_truth/``).

    Returns
    -------
    pandas.DataFrame
        One row per treated touch that changes purchases: ``customer_id``, ``campaign_id``,
        ``starts_at``, ``ends_at`` (exclusive) and ``rate_multiplier``.
    """
    path = Path(out_dir) / GROUND_TRUTH_DIR / "uplift_windows.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no uplift windows at {path}; run the generator first")
    return pd.read_parquet(path)


def true_purchase_probability(
    truth: pd.DataFrame,
    start: date,
    horizon_days: int,
    uplift_windows: pd.DataFrame | None = None,
) -> pd.Series:
    """Return the exact probability of a non-cancelled order in ``[start, start + horizon)``.

    The window is clipped to the simulated calendar (no order exists on or after
    ``DATA_END``), which is what a label computed from the raw data sees. Injected dirt
    (duplicates, orders dated before signup, orphans) is ignored.

    Parameters
    ----------
    truth : pandas.DataFrame
        Output of ``load_ground_truth`` (or any subset of its rows).
    start : datetime.date
        First day of the window (midnight, naive UTC).
    horizon_days : int
        Window length in days.
    uplift_windows : pandas.DataFrame, optional
        Output of ``load_uplift_windows``; without it campaign effects are left out.

    Returns
    -------
    pandas.Series
        Probabilities in [0, 1], indexed like ``truth`` and named ``purchase_probability``.
    """
    if horizon_days < 0:
        raise ValueError(f"horizon_days must be >= 0, got {horizon_days}")
    window_start = (datetime.combine(start, datetime.min.time()) - _origin()).total_seconds()
    window_end = min(window_start + horizon_days * SECONDS_PER_DAY, DATA_SECONDS)
    window_start = max(window_start, 0.0)
    created = to_seconds(truth["created_at"])
    keep = 1.0 - truth["cancel_prob"].to_numpy(dtype=np.float64)
    if window_end <= window_start:
        return pd.Series(0.0, index=truth.index, name="purchase_probability")

    starts, ends = week_bounds()
    weeks = np.flatnonzero((starts < window_end) & (ends > window_start))
    n, k = len(truth), len(weeks)
    cell_week = np.tile(weeks, n)
    profile = weekly_profile(
        cell_week,
        np.repeat(to_seconds(truth["decline_start_at"]), k),
        np.repeat(truth["decline_tau_days"].to_numpy(dtype=np.float64, na_value=np.nan), k),
    )
    rate = np.repeat(truth["rate_per_week"].to_numpy(dtype=np.float64), k)
    lo = np.maximum(np.maximum(starts[cell_week], window_start), np.repeat(created, k))
    overlap = np.clip(np.minimum(ends[cell_week], window_end) - lo, 0.0, None)
    # Same association as the generator: (rate * profile) * active seconds / week seconds.
    expected = (rate * profile * overlap / SECONDS_PER_WEEK).reshape(n, k).sum(axis=1)
    if uplift_windows is not None:
        expected += _expected_uplift(truth, uplift_windows, window_start, window_end)

    mean_delay = FIRST_ORDER_MEAN_DELAY_DAYS * SECONDS_PER_DAY
    first_lo = np.clip(window_start - created, 0.0, None)
    first_hi = np.clip(window_end - created, 0.0, None)
    first_in_window = np.exp(-first_lo / mean_delay) - np.exp(-first_hi / mean_delay)
    first = truth["first_order_prob"].to_numpy(dtype=np.float64) * first_in_window

    none = np.exp(-keep * expected) * (1.0 - keep * first)
    return pd.Series(1.0 - none, index=truth.index, name="purchase_probability")


def _expected_uplift(
    truth: pd.DataFrame, windows: pd.DataFrame, window_start: float, window_end: float
) -> np.ndarray:
    """Expected extra orders per customer from effect windows inside the label window."""
    row = truth.index.get_indexer(windows["customer_id"])
    low = np.maximum(to_seconds(windows["starts_at"]), window_start)
    high = np.minimum(to_seconds(windows["ends_at"]), window_end)
    keep = (row >= 0) & (high > low)
    row, low, high = row[keep], low[keep], high[keep]
    extra = windows["rate_multiplier"].to_numpy(dtype=np.float64)[keep] - 1.0
    # Split every window at week bounds: the season and the decline are constant per week.
    first_week = (low // SECONDS_PER_WEEK).astype(np.int64)
    last_week = ((high - 1) // SECONDS_PER_WEEK).astype(np.int64)
    n_pieces = int((last_week - first_week).max(initial=0)) + 1
    piece = np.repeat(np.arange(len(row)), n_pieces)
    week = first_week[piece] + np.tile(np.arange(n_pieces), len(row))
    inside = week <= last_week[piece]
    piece, week = piece[inside], week[inside]
    starts, ends = week_bounds()
    overlap = np.minimum(ends[week], high[piece]) - np.maximum(starts[week], low[piece])
    customer = row[piece]
    profile = weekly_profile(
        week,
        to_seconds(truth["decline_start_at"])[customer],
        truth["decline_tau_days"].to_numpy(dtype=np.float64, na_value=np.nan)[customer],
    )
    rate = truth["rate_per_week"].to_numpy(dtype=np.float64)[customer]
    mean = extra[piece] * rate * profile * overlap / SECONDS_PER_WEEK
    return np.bincount(customer, weights=mean, minlength=len(truth))


def _origin() -> datetime:
    return datetime.combine(DATA_START, datetime.min.time())
