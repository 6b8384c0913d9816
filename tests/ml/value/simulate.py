"""Draw customers from the generative processes of BG/NBD and Gamma-Gamma (test data)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class BetaGeoParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    v: float


def simulate_purchases(
    params: BetaGeoParams,
    T: np.ndarray,
    future_days: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One row per customer first seen T days before the snapshot: the BG/NBD inputs, whether
    the customer is really still active at the snapshot, and the purchases they make in the
    `future_days` after it.

    Each customer draws a rate lambda ~ Gamma(r, rate alpha) and a drop-out probability
    p ~ Beta(a, b). Potential purchases after the first arrive as a Poisson process; the
    customer drops out after the J-th repeat purchase, J ~ Geometric(p), so the observed
    purchases are the first min(J, N(T)) arrivals. Given N(T) = n arrivals in (0, T], the x-th
    arrival time is T times the x-th order statistic of n uniforms, Beta(x, n - x + 1).
    """
    n = len(T)
    rate = rng.gamma(params.r, 1.0 / params.alpha, n)
    dropout = np.clip(rng.beta(params.a, params.b, n), 1e-12, 1.0)
    n_arrivals = rng.poisson(rate * T)
    n_allowed = rng.geometric(dropout)
    frequency = np.minimum(n_arrivals, n_allowed)
    last = T * rng.beta(np.maximum(frequency, 1), np.maximum(n_arrivals - frequency + 1, 1))
    recency = np.where(frequency > 0, last, 0.0)
    is_alive = n_arrivals < n_allowed
    future_arrivals = rng.poisson(rate * future_days)
    future = np.where(is_alive, np.minimum(n_allowed - n_arrivals, future_arrivals), 0)
    return pd.DataFrame(
        {
            "frequency": frequency.astype(float),
            "recency": recency,
            "T": T.astype(float),
            "is_alive": is_alive,
            "future_purchases": future.astype(float),
        }
    )


def simulate_spend(
    params: GammaGammaParams, frequency: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """Per customer with `frequency` purchases: nu ~ Gamma(q, rate v), each purchase value
    ~ Gamma(p, rate nu); the mean of the purchases, and the customer's true mean p / nu."""
    nu = rng.gamma(params.q, 1.0 / params.v, len(frequency))
    # The sum of x Gamma(p, nu) draws is Gamma(p x, nu).
    total = rng.gamma(params.p * frequency, 1.0 / nu)
    return pd.DataFrame(
        {
            "frequency": frequency.astype(float),
            "mean_spend": total / frequency,
            "true_mean_spend": params.p / nu,
        }
    )
