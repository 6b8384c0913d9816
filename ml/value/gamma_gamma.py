"""The Gamma-Gamma model of spend per purchase."""

from __future__ import annotations

from typing import Self

import numpy as np
from scipy.special import digamma, gammaln
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

PARAMETER_NAMES = ("p", "q", "v")


class GammaGammaModel(LikelihoodModel):
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV") by maximum likelihood.

    Each purchase's value is Gamma(p, nu) with a customer-level rate nu ~ Gamma(q, v), so a
    customer's mean spend over x purchases is the evidence for their own mean p / nu; the model
    shrinks it towards the population mean ``p * v / (q - 1)`` the fewer purchases it rests on.
    It assumes spend is independent of the purchase process (check: the correlation of frequency
    and mean spend across customers should be weak).

    Fitted on customers with at least one repeat purchase and a positive mean repeat spend (the
    first purchase is left out, as in the paper): ``frequency`` is the number of repeat purchases
    and ``mean_spend`` their mean value (``ml.customer_value_inputs``: frequency,
    mean_repeat_spend). Other rows are ignored by `fit`.

    Parameters
    ----------
    penalizer_coef
        L2 penalty on the log-parameters added to the mean negative log-likelihood; 0 (the
        default) is plain maximum likelihood.
    min_repeat_customers
        Fewer usable customers (sum of weights of rows with a repeat purchase and positive mean
        spend) than this raises `ValueModelError`.
    max_iter, tol
        L-BFGS-B's iteration limit and tolerance.

    Attributes
    ----------
    p_, q_, v_ : float
        The fitted parameters (v in the currency's unit).
    population_mean_spend_ : float
        ``p * v / (q - 1)``: the expected spend per purchase of a customer with no repeat
        purchase yet.
    log_likelihood_ : float
        Weighted mean log-likelihood per fitted customer.
    n_customers_ : float
        Sum of the weights of the rows fitted on.
    n_iter_ : int
        Iterations of the maximiser.
    """

    def fit(
        self,
        frequency: ArrayLike,
        mean_spend: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> Self:
        """Fit p, q and v by maximum likelihood on the repeat customers.

        Parameters
        ----------
        frequency
            Repeat purchases per customer.
        mean_spend
            Mean value of those repeat purchases; may be missing (NaN) where frequency is 0.
        sample_weight
            Optional non-negative weight per row, e.g. counts of identical rows.

        Returns
        -------
        self

        Raises
        ------
        ValueModelError
            Fewer than ``min_repeat_customers`` usable customers, a likelihood that does not
            converge or has no finite maximum, or a fit whose population mean spend is
            infinite (q <= 1).
        """
        x, spend = _checked_inputs(frequency, mean_spend)
        weights = sample_weights(sample_weight, len(x))
        usable = (x > 0) & (spend > 0) & (weights > 0)
        n_usable = float(weights[usable].sum())
        if n_usable < self.min_repeat_customers:
            raise ValueModelError(
                f"Gamma-Gamma needs at least {self.min_repeat_customers} customers with a repeat "
                f"purchase of positive value, the data has {n_usable:g}"
            )
        x, spend, weights = x[usable], spend[usable], weights[usable]
        # Method-of-moments-like start: shape 1 per purchase, q = 2 makes the mean p v / (q - 1)
        # equal the observed mean spend.
        start = np.log([1.0, 2.0, float(np.average(spend, weights=weights))])

        p, q, v = (
            float(value)
            for value in self._maximise(
                _Spends(x, spend).log_likelihood_and_gradient,
                weights,
                start,
                PARAMETER_NAMES,
                "Gamma-Gamma",
            )
        )
        if q <= 1.0:
            raise ValueModelError(
                f"Gamma-Gamma fit has q = {q:.3g} <= 1: the population mean spend is infinite"
            )
        self.p_, self.q_, self.v_ = p, q, v
        self.population_mean_spend_ = p * v / (q - 1.0)
        self.n_customers_ = n_usable
        return self

    def log_likelihood(self, frequency: ArrayLike, mean_spend: ArrayLike) -> FloatArray:
        """Log-density of each customer's mean spend given their repeat purchases (x > 0)."""
        check_is_fitted(self)
        x, spend = _checked_inputs(frequency, mean_spend)
        if np.any(x == 0) or np.any(spend <= 0):
            raise ValueError("the likelihood needs frequency > 0 and mean_spend > 0 on every row")
        log_likelihood, _ = _log_likelihood_and_gradient(
            np.array([self.p_, self.q_, self.v_]), x, spend
        )
        return log_likelihood

    def conditional_expected_spend(
        self, frequency: ArrayLike, mean_spend: ArrayLike
    ) -> FloatArray:
        """Expected value of each customer's future purchases, given their history.

        ``(p * (v + x * m)) / (p * x + q - 1)``: a weighted average of the population mean
        ``p v / (q - 1)`` and the customer's own mean spend m, whose weight grows with the
        number of repeat purchases x. Customers with x = 0 get the population mean whatever
        their ``mean_spend`` (which may be NaN there).
        """
        check_is_fitted(self)
        x, spend = _checked_inputs(frequency, mean_spend)
        spend = np.where(x > 0, spend, 0.0)
        return self.p_ * (self.v_ + x * spend) / (self.p_ * x + self.q_ - 1.0)


def _checked_inputs(frequency: ArrayLike, mean_spend: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = as_float_array(frequency, "frequency")
    check_frequency(x)
    spend = np.asarray(mean_spend, dtype=np.float64)
    check_same_length(frequency=x, mean_spend=spend)
    if spend.ndim != 1:
        raise ValueError(f"mean_spend must be one-dimensional, got shape {spend.shape}")
    if not np.all(np.isfinite(spend[x > 0])):
        raise ValueError("mean_spend is missing or infinite for a customer with repeat purchases")
    if np.any(spend[x > 0] < 0):
        raise ValueError("mean_spend must be non-negative")
    return x, spend


def _log_likelihood_and_gradient(
    params: FloatArray, x: FloatArray, spend: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per-customer log-density of the mean spend m over x purchases, and its gradient (3 x n).

    f(m | p, q, v; x) = Gamma(p x + q) / (Gamma(p x) Gamma(q)) * v^q m^(p x - 1) x^(p x)
                        / (v + x m)^(p x + q)
    """
    return _Spends(x, spend).log_likelihood_and_gradient(params)


class _Spends:
    """Customers' (x, m), prepared once for the maximiser's many likelihood evaluations.

    The gamma functions depend on x alone and are evaluated per distinct x
    (`DistinctValues`); the logarithms of the data do not depend on the parameters and are
    taken once.
    """

    def __init__(self, x: FloatArray, spend: FloatArray) -> None:
        self.x = x
        self.frequency = DistinctValues(x)
        self.total_spend = x * spend
        self.log_spend = np.log(spend)
        self.log_total_spend = self.log_spend + np.log(x)

    def log_likelihood_and_gradient(self, params: FloatArray) -> tuple[FloatArray, FloatArray]:
        """See `_log_likelihood_and_gradient`."""
        p, q, v = params
        px_levels = p * self.frequency.values
        digamma_pxq = digamma(px_levels + q)
        log_gamma_ratio, d_p_of_x, d_q_of_x = self.frequency.per_row(
            gammaln(px_levels + q) - gammaln(px_levels) - gammaln(q),
            digamma_pxq - digamma(px_levels),
            digamma_pxq - digamma(q),
        )
        px = p * self.x
        v_xm = v + self.total_spend
        log_v_xm = np.log(v_xm)
        log_v = np.log(v)
        log_likelihood = (
            log_gamma_ratio
            + q * log_v
            + px * self.log_total_spend
            - self.log_spend
            - (px + q) * log_v_xm
        )
        d_p = self.x * (d_p_of_x + self.log_total_spend - log_v_xm)
        d_q = d_q_of_x + log_v - log_v_xm
        d_v = q / v - (px + q) / v_xm
        return log_likelihood, np.vstack([d_p, d_q, d_v])
