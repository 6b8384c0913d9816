"""The BG/NBD model of repeat purchases: expected purchases and probability alive."""

from __future__ import annotations

from typing import Self

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1
from sklearn.utils.validation import check_is_fitted

from ml.value._fitting import (
    ArrayLike,
    DistinctValues,
    FloatArray,
    LikelihoodModel,
    ValueModelError,
    as_float_array,
    check_frequency,
    check_same_length,
    sample_weights,
)

PARAMETER_NAMES = ("r", "alpha", "a", "b")
# Closest a may come to 1 in the expectation's (a + b + x - 1) / (a - 1) factor, a removable
# singularity; the error this introduces is far below any sampling error.
MIN_DISTANCE_OF_A_FROM_1 = 1e-6


class BetaGeoModel(LikelihoodModel):
    """BG/NBD (Fader, Hardie & Lee 2005) fitted by maximum likelihood.

    While active, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after
    each repeat purchase they drop out for good with probability p ~ Beta(a, b). The inputs per
    customer describe the history since their first purchase:

    - ``frequency`` (x): number of repeat purchases (segmart: distinct purchase days minus one),
    - ``recency`` (t_x): time from the first to the last purchase (0 when x = 0),
    - ``T``: time from the first purchase to the end of observation (the snapshot).

    Times may be in any unit as long as it is the same everywhere; segmart uses **days**, so
    ``alpha_`` and every horizon ``t`` are in days (alpha in days is 7 x alpha in weeks; r, a and
    b do not depend on the unit).

    Parameters
    ----------
    penalizer_coef
        L2 penalty on the log-parameters added to the mean negative log-likelihood; 0 (the
        default) is plain maximum likelihood.
    min_repeat_customers
        Fewer customers (sum of weights) with a repeat purchase than this raises
        `ValueModelError`: the drop-out process cannot be estimated without repeat buyers.
    max_iter, tol
        L-BFGS-B's iteration limit and tolerance.

    Attributes
    ----------
    r_, alpha_, a_, b_ : float
        The fitted parameters.
    log_likelihood_ : float
        Weighted mean log-likelihood per customer at the fitted parameters.
    n_customers_ : float
        Sum of the weights fitted on (the number of customers with count weights).
    n_iter_ : int
        Iterations of the maximiser.

    Notes
    -----
    The log-likelihood is evaluated in log space (``gammaln``, ``betaln``, ``logaddexp``), so it
    stays finite for frequencies in the hundreds. The conditional expectation uses Euler's
    transformation of the Gauss hypergeometric function of the published closed form,
    ``(1 - z)**(r + x) * 2F1(r + x, b + x; a + b + x - 1; z)`` =
    ``(1 - z)**(a - 1) * 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z)``, whose series has small
    numerator parameters and converges fast however large x is, where the original 2F1
    overflows.
    """

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> Self:
        """Fit r, alpha, a and b by maximum likelihood.

        Parameters
        ----------
        frequency, recency, T
            One value per customer (see the class docstring), e.g. columns of
            ``ml.customer_value_inputs`` (frequency, recency_days, t_days) of customers who
            have purchased.
        sample_weight
            Optional non-negative weight per row. Pass counts of identical (frequency, recency,
            T) rows (`collapse_identical_rows`) to fit fewer rows: the estimates equal those on
            the uncollapsed rows.

        Returns
        -------
        self

        Raises
        ------
        ValueModelError
            Too few repeat buyers, or a likelihood without a finite maximum or that does not
            converge.
        """
        x, t_x, T_ = _checked_inputs(frequency, recency, T)
        weights = sample_weights(sample_weight, len(x))
        n_repeat = float(weights[x > 0].sum())
        if n_repeat < self.min_repeat_customers:
            raise ValueModelError(
                f"BG/NBD needs at least {self.min_repeat_customers} customers with a repeat "
                f"purchase, the data has {n_repeat:g}"
            )
        total_weight = float(weights.sum())
        # Start from a rate matching the repeat purchases per unit of time, no drop-out bias.
        rate = float((weights * x).sum() / max((weights * T_).sum(), 1e-12))
        start = np.log([1.0, 1.0 / max(rate, 1e-6), 1.0, 1.0])

        histories = _Histories(x, t_x, T_)
        params = self._maximise(
            histories.log_likelihood_and_gradient,
            weights,
            start,
            PARAMETER_NAMES,
            "BG/NBD",
        )
        self.r_, self.alpha_, self.a_, self.b_ = (float(value) for value in params)
        self.n_customers_ = total_weight
        return self

    def log_likelihood(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """Log-likelihood of each customer's (frequency, recency, T) under the fitted model."""
        check_is_fitted(self)
        x, t_x, T_ = _checked_inputs(frequency, recency, T)
        log_likelihood, _ = _log_likelihood_and_gradient(self._params(), x, t_x, T_)
        return log_likelihood

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Probability that each customer is still active at T, given their history.

        ``1 / (1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))``,
        evaluated as a logistic of the log-odds so that it neither overflows nor loses
        precision. Customers without a repeat purchase cannot have dropped out yet: 1.
        """
        check_is_fitted(self)
        x, t_x, T_ = _checked_inputs(frequency, recency, T)
        return expit(-_log_odds_dead(self._params(), x, t_x, T_))

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected number of purchases in (T, T + t] for each customer, given their history.

        Parameters
        ----------
        t
            Length of the future window in the model's time unit (days in segmart): a scalar
            or one value per customer.
        frequency, recency, T
            Each customer's history.
        """
        check_is_fitted(self)
        x, t_x, T_ = _checked_inputs(frequency, recency, T)
        t_ = np.broadcast_to(as_float_array(np.atleast_1d(t), "t"), x.shape)
        if np.any(t_ < 0):
            raise ValueError("t must be non-negative")
        params = self._params()
        alive = expit(-_log_odds_dead(params, x, t_x, T_))
        return alive * _expected_purchases_if_alive(params, t_, x, T_)

    def expected_purchases(self, t: ArrayLike) -> FloatArray:
        """Expected repeat purchases in (0, t] of a customer who has just made a first purchase."""
        check_is_fitted(self)
        t_ = as_float_array(np.atleast_1d(t), "t")
        zeros = np.zeros_like(t_)
        return _expected_purchases_if_alive(self._params(), t_, zeros, zeros)

    def _params(self) -> FloatArray:
        return np.array([self.r_, self.alpha_, self.a_, self.b_])


def _checked_inputs(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = as_float_array(frequency, "frequency")
    t_x = as_float_array(recency, "recency")
    T_ = as_float_array(T, "T")
    check_same_length(frequency=x, recency=t_x, T=T_)
    check_frequency(x)
    if np.any(t_x < 0) or np.any(t_x > T_):
        raise ValueError("recency must lie between 0 and T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 for customers without a repeat purchase")
    return x, t_x, T_


def _log_odds_dead(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """log(P(dropped out) / P(active)) at T; -inf where x = 0 (nobody drops before a repeat)."""
    r, alpha, a, b = params
    repeat = x > 0
    log_odds = np.full_like(x, -np.inf)
    xr = x[repeat]
    log_odds[repeat] = (
        np.log(a)
        - np.log(b + xr - 1.0)
        + (r + xr) * (np.log(alpha + T[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return log_odds


def _expected_purchases_if_alive(
    params: FloatArray, t: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in (T, T + t] | active at T] = (a + b + x - 1) / (a - 1) * (1 - H), where
    H = (1 - z)**(a - 1) * 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z), z = t / (alpha + T + t)
    (Euler's transformation of the published form; see BetaGeoModel's notes)."""
    r, alpha, a, b = params
    if abs(a - 1.0) < MIN_DISTANCE_OF_A_FROM_1:
        a = 1.0 + np.copysign(MIN_DISTANCE_OF_A_FROM_1, a - 1.0)
    c = a + b + x - 1.0
    log_one_minus_z = np.log(alpha + T) - np.log(alpha + T + t)
    z = t / (alpha + T + t)
    hypergeometric = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    if not np.all(np.isfinite(hypergeometric) & (hypergeometric > 0)):
        raise ValueModelError("BG/NBD expected purchases are not finite for these parameters")
    one_minus_h = -np.expm1((a - 1.0) * log_one_minus_z + np.log(hypergeometric))
    return c / (a - 1.0) * one_minus_h


def _log_likelihood_and_gradient(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per-customer log-likelihood (FHL 2005, eq. 6) and its gradient (4 x n) in r, alpha, a, b.

    L = B(a, b + x) / B(a, b) * Gamma(r + x) alpha^r / Gamma(r) * [(alpha + T)^-(r + x)
        + [x > 0] * a / (b + x - 1) * (alpha + t_x)^-(r + x)]
    """
    return _Histories(x, t_x, T).log_likelihood_and_gradient(params)


class _Histories:
    """Customers' (x, t_x, T), prepared once for the maximiser's many likelihood evaluations.

    Every term that depends on one column only is evaluated per distinct value of it
    (`DistinctValues`): the special functions of x, and the logarithms of alpha + t_x and
    alpha + T; only their combination runs per row.
    """

    def __init__(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
        self.x = x
        self.frequency = DistinctValues(x)
        self.recency = DistinctValues(t_x)
        self.age = DistinctValues(T)

    def log_likelihood_and_gradient(self, params: FloatArray) -> tuple[FloatArray, FloatArray]:
        """See `_log_likelihood_and_gradient`."""
        r, alpha, a, _ = params
        common, d_r_of_x, d_a_of_x, d_b_of_x, log_dropped_weight, inverse_b_x = (
            self.frequency.per_row(*self._terms_of_frequency(params))
        )
        log_alpha_T, inverse_alpha_T = self.age.per_row(*_log_and_inverse(alpha + self.age.values))
        log_alpha_tx, inverse_alpha_tx = self.recency.per_row(
            *_log_and_inverse(alpha + self.recency.values)
        )
        r_x = r + self.x
        log_active_term = -r_x * log_alpha_T
        # Log-odds of the bracket's dropped-out term against its active one; -inf where x = 0
        # (nobody drops out before a repeat purchase). The bracket is the active term times
        # 1 + exp(odds), taken as a softplus that neither overflows nor loses precision; one
        # exp serves both the softplus and the shares (np.logaddexp took several times as long).
        log_odds = log_dropped_weight + r_x * (log_alpha_T - log_alpha_tx)
        small = np.exp(-np.abs(log_odds))
        dropped_more_likely = log_odds > 0
        log_bracket = log_active_term + np.maximum(log_odds, 0.0) + np.log1p(small)
        # Shares of the bracket's two terms: the posterior probabilities of active / dropped out.
        share_active = np.where(dropped_more_likely, small, 1.0) / (1.0 + small)
        share_dropped = np.where(dropped_more_likely, 1.0, small) / (1.0 + small)

        d_r = d_r_of_x - share_active * log_alpha_T - share_dropped * log_alpha_tx
        d_alpha = r / alpha - r_x * (
            share_active * inverse_alpha_T + share_dropped * inverse_alpha_tx
        )
        d_a = d_a_of_x + share_dropped / a
        d_b = d_b_of_x - share_dropped * inverse_b_x
        return common + log_bracket, np.vstack([d_r, d_alpha, d_a, d_b])

    def _terms_of_frequency(self, params: FloatArray) -> tuple[FloatArray, ...]:
        """The 6 terms of x alone (see the caller), each one value per distinct x."""
        r, alpha, a, b = params
        x = self.frequency.values
        repeat = x > 0
        b_x_minus_1 = np.where(repeat, b + x - 1.0, 1.0)
        digamma_ab = digamma(a + b)
        digamma_abx = digamma(a + b + x)
        with np.errstate(divide="ignore"):
            log_dropped_weight = np.where(repeat, np.log(a) - np.log(b_x_minus_1), -np.inf)
        return (
            gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b),
            digamma(r + x) - digamma(r) + np.log(alpha),
            digamma_ab - digamma_abx,
            digamma_ab + digamma(b + x) - digamma(b) - digamma_abx,
            log_dropped_weight,
            1.0 / b_x_minus_1,
        )


def _log_and_inverse(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    return np.log(values), 1.0 / values
