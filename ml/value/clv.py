"""Customer lifetime value over a horizon from the purchase and spend models."""

from __future__ import annotations

import numpy as np

from ml.value._fitting import ArrayLike, FloatArray
from ml.value.bgnbd import BetaGeoModel
from ml.value.gamma_gamma import GammaGammaModel

DAYS_PER_YEAR = 365.0


def customer_lifetime_value(
    purchases: BetaGeoModel,
    spend: GammaGammaModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    mean_spend: ArrayLike,
    *,
    horizon_days: float = 365.0,
    annual_discount_rate: float = 0.0,
    period_days: float = 30.0,
) -> FloatArray:
    """Expected revenue of each customer in (T, T + horizon_days], optionally discounted.

    Method: the horizon is cut into periods of ``period_days`` (the last one shorter when the
    horizon is not a multiple); the BG/NBD expected purchases in period k are the difference of
    the conditional expectations at its end and its start; each period's purchases are valued at
    the Gamma-Gamma expected spend per purchase and discounted to T at the period's end,
    ``(1 + annual_discount_rate) ** -(end_day / 365)``:

        CLV = E[spend] * sum_k (E[Y(end_k)] - E[Y(start_k)]) * (1 + d) ** -(end_k / 365)

    With ``annual_discount_rate=0`` this is exactly E[Y(horizon)] x E[spend] (``period_days``
    then does not matter). Multiplying the two expectations assumes, as the Gamma-Gamma model
    does, that spend per purchase is independent of the purchase process. The value is revenue;
    apply a margin downstream for profit.

    Parameters
    ----------
    purchases, spend
        Fitted models.
    frequency, recency, T, mean_spend
        Each customer's inputs in days (``ml.customer_value_inputs``: frequency, recency_days,
        t_days, mean_repeat_spend; mean_spend may be NaN where frequency is 0).
    horizon_days
        Length of the future window.
    annual_discount_rate
        Yearly discount rate (0.1 for 10%); 0 for undiscounted revenue.
    period_days
        Length of the discounting periods.

    Returns
    -------
    One value per customer, in the currency of ``mean_spend``.
    """
    if horizon_days <= 0 or period_days <= 0:
        raise ValueError("horizon_days and period_days must be positive")
    if annual_discount_rate < 0:
        raise ValueError("annual_discount_rate must be non-negative")
    spend_per_purchase = spend.conditional_expected_spend(frequency, mean_spend)
    if annual_discount_rate == 0:
        ends = np.array([float(horizon_days)])
    else:
        ends = np.append(np.arange(period_days, horizon_days, period_days), float(horizon_days))
    cumulative = np.vstack(
        [purchases.conditional_expected_purchases(end, frequency, recency, T) for end in ends]
    )
    per_period = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1.0 + annual_discount_rate) ** -(ends / DAYS_PER_YEAR)
    return spend_per_purchase * (discount @ per_period)
