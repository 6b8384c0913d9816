"""BG/NBD: recovery of simulated parameters, and agreement with independent computations."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from sklearn.exceptions import NotFittedError

from ml.value import BetaGeoModel, ValueModelError, collapse_identical_rows
from ml.value._fitting import maximise_log_likelihood
from ml.value.bgnbd import _log_likelihood_and_gradient
from tests.ml.value.simulate import BetaGeoParams, simulate_purchases

# Daily parameters of a plausible shop: a purchase every 100 days on average while active,
# a mean drop-out probability of 24% after each repeat purchase.
TRUE = BetaGeoParams(r=0.6, alpha=60.0, a=0.8, b=2.5)
N_CUSTOMERS = 50_000
# Four standard deviations of each estimate's relative error, measured over 20 seeds of this
# design (50,000 customers, T uniform over 30-730 days): r 1.1%, alpha 1.5%, a 2.6%, b 3.7%.
RELATIVE_TOLERANCE = {"r": 0.05, "alpha": 0.07, "a": 0.11, "b": 0.15}


def _model_with(params: BetaGeoParams) -> BetaGeoModel:
    model = BetaGeoModel()
    model.r_, model.alpha_, model.a_, model.b_ = params.r, params.alpha, params.a, params.b
    return model


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    rng = np.random.default_rng(20260101)
    T = np.floor(rng.uniform(30, 731, N_CUSTOMERS))
    return simulate_purchases(TRUE, T, future_days=90.0, rng=rng)


@pytest.fixture(scope="module")
def fitted(customers: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(customers["frequency"], customers["recency"], customers["T"])


def test_fit_recovers_the_parameters_of_simulated_customers(fitted: BetaGeoModel) -> None:
    estimates = {"r": fitted.r_, "alpha": fitted.alpha_, "a": fitted.a_, "b": fitted.b_}
    for name, estimate in estimates.items():
        truth = getattr(TRUE, name)
        assert abs(estimate / truth - 1) < RELATIVE_TOLERANCE[name], (name, estimate, truth)
    assert fitted.n_customers_ == N_CUSTOMERS


def test_gradient_of_the_log_likelihood_matches_finite_differences(
    customers: pd.DataFrame,
) -> None:
    sample = customers.iloc[:500]
    args = (sample["frequency"].to_numpy(), sample["recency"].to_numpy(), sample["T"].to_numpy())
    params = np.array([0.7, 50.0, 0.9, 2.0])
    _, gradient = _log_likelihood_and_gradient(params, *args)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-6 * params[i]
        upper, _ = _log_likelihood_and_gradient(params + step, *args)
        lower, _ = _log_likelihood_and_gradient(params - step, *args)
        numeric = (upper.sum() - lower.sum()) / (2 * step[i])
        assert gradient[i].sum() == pytest.approx(numeric, rel=1e-5)


def test_customers_evaluated_together_get_what_each_gets_alone(customers: pd.DataFrame) -> None:
    # Shared frequencies and days are evaluated once per distinct value; the last history's
    # dropped-out term outweighs the active one by exp(700), past what exp() represents.
    sample = customers.iloc[:300].assign(recency=lambda frame: np.floor(frame["recency"]))
    x = np.append(sample["frequency"].to_numpy(), 150.0)
    t_x = np.append(sample["recency"].to_numpy(), 10.0)
    T = np.append(sample["T"].to_numpy(), 700.0)
    params = np.array([0.7, 50.0, 0.9, 2.0])
    together, gradient = _log_likelihood_and_gradient(params, x, t_x, T)
    alone = [_log_likelihood_and_gradient(params, x[[i]], t_x[[i]], T[[i]]) for i in range(len(x))]
    np.testing.assert_allclose(together, [value[0] for value, _ in alone], rtol=1e-12)
    np.testing.assert_allclose(gradient, np.hstack([g for _, g in alone]), rtol=1e-12)
    assert np.all(np.isfinite(together)) and np.all(np.isfinite(gradient))


def _individual_terms(
    rate: float, dropout: float, x: float, t_x: float, T: float
) -> tuple[float, float]:
    """P(history | lambda, p) split into 'still active at T' and 'dropped after the last'."""
    active = (1 - dropout) ** x * rate**x * math.exp(-rate * T)
    dropped = (
        dropout * (1 - dropout) ** (x - 1) * rate**x * math.exp(-rate * t_x) if x > 0 else 0.0
    )
    return active, dropped


def _log_gamma_density(value: float, shape: float, rate: float) -> float:
    return (
        shape * math.log(rate) + (shape - 1) * math.log(value) - rate * value - math.lgamma(shape)
    )


def _log_beta_density(value: float, a: float, b: float) -> float:
    return (
        (a - 1) * math.log(value)
        + (b - 1) * math.log1p(-value)
        + math.lgamma(a + b)
        - math.lgamma(a)
        - math.lgamma(b)
    )


def _integrate_over_rate_and_dropout(params: BetaGeoParams, integrand) -> float:
    """Integral of integrand(lambda, p) against the Gamma(r, alpha) x Beta(a, b) mixing density,
    by nested adaptive quadrature."""

    def over_rate(dropout: float) -> float:
        value, _ = integrate.quad(
            lambda rate: (
                integrand(rate, dropout)
                * math.exp(_log_gamma_density(rate, params.r, params.alpha))
            ),
            0,
            np.inf,
            epsabs=0,
            epsrel=1e-10,
        )
        return value * math.exp(_log_beta_density(dropout, params.a, params.b))

    value, _ = integrate.quad(over_rate, 0, 1, epsabs=0, epsrel=1e-9)
    return value


HISTORIES = [(0, 0.0, 200.0), (1, 40.0, 200.0), (3, 150.0, 400.0), (7, 90.0, 365.0)]
MIXING = BetaGeoParams(r=1.4, alpha=40.0, a=1.6, b=3.0)


@pytest.mark.parametrize(("x", "t_x", "T"), HISTORIES)
def test_log_likelihood_equals_direct_integration_over_rate_and_dropout(
    x: float, t_x: float, T: float
) -> None:
    direct = _integrate_over_rate_and_dropout(
        MIXING, lambda rate, dropout: sum(_individual_terms(rate, dropout, x, t_x, T))
    )
    closed_form = _model_with(MIXING).log_likelihood([x], [t_x], [T])[0]
    assert closed_form == pytest.approx(np.log(direct), abs=1e-6)


@pytest.mark.parametrize(("x", "t_x", "T"), HISTORIES)
def test_probability_alive_equals_the_posterior_mass_of_active_customers(
    x: float, t_x: float, T: float
) -> None:
    active = _integrate_over_rate_and_dropout(
        MIXING, lambda rate, dropout: _individual_terms(rate, dropout, x, t_x, T)[0]
    )
    total = _integrate_over_rate_and_dropout(
        MIXING, lambda rate, dropout: sum(_individual_terms(rate, dropout, x, t_x, T))
    )
    alive = _model_with(MIXING).conditional_probability_alive([x], [t_x], [T])[0]
    assert alive == pytest.approx(active / total, rel=1e-6)


def _expected_purchases_by_integration(
    params: BetaGeoParams, t: float, x: float, t_x: float, T: float, alive: float
) -> float:
    """P(alive) x E[purchases in t | active]: given active at T, lambda ~ Gamma(r + x, alpha + T)
    and p ~ Beta(a, b + x) independently; an active customer makes (1 - exp(-lambda p t)) / p
    purchases in expectation, and integrating lambda out leaves one integral over p."""

    def integrand(dropout: float) -> float:
        log_survival = (params.r + x) * (
            math.log(params.alpha + T) - math.log(params.alpha + T + dropout * t)
        )
        log_density = _log_beta_density(dropout, params.a, params.b + x)
        return -math.expm1(log_survival) / dropout * math.exp(log_density)

    value, _ = integrate.quad(integrand, 0, 1, limit=500, epsabs=0, epsrel=1e-8)
    return alive * value


@pytest.mark.parametrize(
    ("x", "T"),
    [(x, T) for x in (0, 1, 5, 50, 200, 400) for T in (30.0, 365.0, 1000.0) if x < T],
)
def test_expected_purchases_stay_exact_for_large_frequencies_and_long_histories(
    x: int, T: float
) -> None:
    model = _model_with(TRUE)
    for t_x in {0.0} if x == 0 else {0.5 * T, 0.99 * T, float(x)}:
        alive = model.conditional_probability_alive([x], [t_x], [T])[0]
        for t in (1.0, 90.0, 365.0, 5000.0):
            expected = model.conditional_expected_purchases(t, [x], [t_x], [T])[0]
            reference = _expected_purchases_by_integration(TRUE, t, x, t_x, T, alive)
            assert np.isfinite(expected)
            assert expected == pytest.approx(reference, rel=1e-7, abs=1e-300)


def _bucket(frequency: pd.Series) -> pd.Series:
    return pd.cut(frequency, [-1, 0, 2, 5, 10_000], labels=["0", "1-2", "3-5", "6+"])


def test_expected_purchases_match_the_simulated_future_purchases(
    customers: pd.DataFrame,
) -> None:
    """Conditional expectations are unbiased per customer, so their sum over any group of
    histories matches the purchases the simulation realised (tolerance: 4 standard errors)."""
    predicted = _model_with(TRUE).conditional_expected_purchases(
        90.0, customers["frequency"], customers["recency"], customers["T"]
    )
    frame = customers.assign(predicted=predicted, bucket=_bucket(customers["frequency"]))
    for bucket, group in frame.groupby("bucket", observed=True):
        realised = group["future_purchases"]
        standard_error = realised.std() * np.sqrt(len(group))
        assert abs(group["predicted"].sum() - realised.sum()) < 4 * standard_error, bucket


def test_probability_alive_matches_the_simulated_share_of_active_customers(
    customers: pd.DataFrame,
) -> None:
    alive = _model_with(TRUE).conditional_probability_alive(
        customers["frequency"], customers["recency"], customers["T"]
    )
    frame = customers.assign(alive=alive, bucket=_bucket(customers["frequency"]))
    for bucket, group in frame.groupby("bucket", observed=True):
        standard_error = np.sqrt((group["alive"] * (1 - group["alive"])).sum()) / len(group)
        gap = abs(group["alive"].mean() - group["is_alive"].mean())
        assert gap < 4 * standard_error + 1e-9, bucket
    assert np.all(alive[customers["frequency"] == 0] == 1.0)


def test_expected_purchases_of_a_new_customer_match_simulated_newcomers() -> None:
    rng = np.random.default_rng(5)
    newcomers = simulate_purchases(TRUE, np.full(200_000, 180.0), future_days=0.0, rng=rng)
    expected = _model_with(TRUE).expected_purchases(180.0)[0]
    standard_error = newcomers["frequency"].std() / np.sqrt(len(newcomers))
    assert abs(expected - newcomers["frequency"].mean()) < 4 * standard_error


def test_fitting_collapsed_rows_with_counts_equals_fitting_every_customer(
    customers: pd.DataFrame,
) -> None:
    # Whole days, as the mart gives them: many customers share a history.
    whole_days = customers.assign(recency=np.floor(customers["recency"])).iloc[:20_000]
    collapsed = collapse_identical_rows(whole_days, ["frequency", "recency", "T"])
    assert len(collapsed) < len(whole_days)
    every = BetaGeoModel().fit(whole_days["frequency"], whole_days["recency"], whole_days["T"])
    weighted = BetaGeoModel().fit(
        collapsed["frequency"],
        collapsed["recency"],
        collapsed["T"],
        sample_weight=collapsed["n_customers"],
    )
    for name in ("r_", "alpha_", "a_", "b_", "log_likelihood_", "n_customers_"):
        assert getattr(weighted, name) == pytest.approx(getattr(every, name), rel=1e-5), name


def test_too_few_repeat_buyers_raise_a_value_model_error() -> None:
    frequency = np.array([0] * 500 + [1] * 10)
    recency = np.where(frequency > 0, 20.0, 0.0)
    with pytest.raises(ValueModelError, match="at least 30 customers with a repeat purchase"):
        BetaGeoModel().fit(frequency, recency, np.full(510, 100.0))


def test_a_shop_where_nobody_drops_out_is_fitted_as_one() -> None:
    """Every repeat buyer bought on their last observed day and all buy at one rate: the fit
    drives the drop-out probability to zero (a -> 0) and predicts that rate for everyone."""
    rng = np.random.default_rng(1)
    T = rng.integers(50, 400, 2000).astype(float)
    frequency = rng.poisson(T / 30.0).astype(float)
    recency = np.where(frequency > 0, T, 0.0)
    model = BetaGeoModel().fit(frequency, recency, T)
    assert model.a_ / (model.a_ + model.b_) < 1e-4
    alive = model.conditional_probability_alive(frequency, recency, T)
    assert np.all(alive > 0.999)
    expected = model.conditional_expected_purchases(90.0, frequency, recency, T)
    assert expected.mean() == pytest.approx(3.0, rel=0.05)


def test_a_likelihood_without_finite_maximum_raises_a_value_model_error() -> None:
    def rising_forever(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        return -float(log_params[0]), np.array([-1.0, 2 * log_params[1]])

    with pytest.raises(ValueModelError, match=r"no maximum at finite parameters \(r ran"):
        maximise_log_likelihood(
            rising_forever,
            np.zeros(2),
            ("r", "alpha"),
            model_name="BG/NBD",
            penalizer_coef=0.0,
            max_iter=100,
            tol=1e-10,
        )


def test_a_search_stopped_early_raises_a_value_model_error(customers: pd.DataFrame) -> None:
    with pytest.raises(ValueModelError, match="did not converge after 2 iterations"):
        BetaGeoModel(max_iter=2).fit(customers["frequency"], customers["recency"], customers["T"])


def test_predictions_before_fit_raise_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        BetaGeoModel().conditional_probability_alive([1], [10.0], [20.0])


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1], [30.0], [20.0], "recency must lie between 0 and T"),
        ([0], [5.0], [20.0], "recency must be 0"),
        ([1.5], [5.0], [20.0], "whole numbers"),
        ([1], [np.nan], [20.0], "missing or infinite"),
        ([1, 2], [5.0], [20.0], "differ in length"),
    ],
)
def test_malformed_inputs_are_refused(frequency, recency, T, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _model_with(TRUE).log_likelihood(frequency, recency, T)


def test_fit_and_predictions_equal_lifetimes(
    customers: pd.DataFrame, fitted: BetaGeoModel, lifetimes: ModuleType
) -> None:
    sample = customers.iloc[:5000]
    x, t_x, T = sample["frequency"], sample["recency"], sample["T"]
    reference = lifetimes.BetaGeoFitter().fit(x, t_x, T)
    ours = BetaGeoModel().fit(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(ours, f"{name}_") == pytest.approx(reference.params_[name], rel=1e-3)
    # Same parameters: same numbers.
    ours.r_, ours.alpha_, ours.a_, ours.b_ = (
        reference.params_[n] for n in ("r", "alpha", "a", "b")
    )
    reference_log_likelihood = -reference._negative_log_likelihood(
        np.log(reference.params_[["r", "alpha", "a", "b"]].to_numpy()),
        x.to_numpy(),
        t_x.to_numpy(),
        T.to_numpy(),
        np.ones(len(x)),
        0.0,
    )
    assert ours.log_likelihood(x, t_x, T).mean() == pytest.approx(
        reference_log_likelihood, rel=1e-9
    )
    np.testing.assert_allclose(
        ours.conditional_probability_alive(x, t_x, T),
        reference.conditional_probability_alive(x, t_x, T),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        ours.conditional_expected_purchases(90.0, x, t_x, T),
        reference.conditional_expected_number_of_purchases_up_to_time(90.0, x, t_x, T),
        rtol=1e-7,
    )


def test_cdnow_sample_gives_the_published_estimates(lifetimes: ModuleType) -> None:
    """The CDNOW sample (2,357 customers, weeks) as shipped with lifetimes; Fader, Hardie & Lee
    (2005) report r = 0.243, alpha = 4.414, a = 0.793, b = 2.426."""
    from lifetimes.datasets import load_cdnow_summary

    cdnow = load_cdnow_summary(index_col=[0])
    model = BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert (model.r_, model.alpha_, model.a_, model.b_) == pytest.approx(
        (0.243, 4.414, 0.793, 2.426), abs=6e-4
    )
    assert model.log_likelihood_ * len(cdnow) == pytest.approx(-9582.4, abs=0.1)
