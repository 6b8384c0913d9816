"""Gamma-Gamma: recovery of simulated parameters, and agreement with independent computations."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from sklearn.exceptions import NotFittedError

from ml.value import GammaGammaModel, ValueModelError
from ml.value.gamma_gamma import _log_likelihood_and_gradient
from tests.ml.value.simulate import GammaGammaParams, simulate_spend

TRUE = GammaGammaParams(p=6.0, q=4.0, v=15.0)  # population mean spend p v / (q - 1) = 30
N_CUSTOMERS = 20_000
# Four standard deviations of each estimate's relative error, measured over 20 seeds of this
# design (20,000 repeat customers with 1-10 repeat purchases): p 4.1%, q 1.2%, v 4.8%, population
# mean 0.65%. p and v are strongly correlated; their ratio-like population mean is sharp.
RELATIVE_TOLERANCE = {"p": 0.17, "q": 0.05, "v": 0.2, "population_mean_spend": 0.03}


def _model_with(params: GammaGammaParams) -> GammaGammaModel:
    model = GammaGammaModel()
    model.p_, model.q_, model.v_ = params.p, params.q, params.v
    model.population_mean_spend_ = params.p * params.v / (params.q - 1)
    return model


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    rng = np.random.default_rng(20260102)
    return simulate_spend(TRUE, rng.integers(1, 11, N_CUSTOMERS), rng)


def test_fit_recovers_the_parameters_of_simulated_customers(customers: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(customers["frequency"], customers["mean_spend"])
    truth = {"p": TRUE.p, "q": TRUE.q, "v": TRUE.v, "population_mean_spend": 30.0}
    for name, true_value in truth.items():
        estimate = getattr(model, f"{name}_")
        assert abs(estimate / true_value - 1) < RELATIVE_TOLERANCE[name], (name, estimate)


def test_gradient_of_the_log_likelihood_matches_finite_differences(
    customers: pd.DataFrame,
) -> None:
    sample = customers.iloc[:500]
    args = (sample["frequency"].to_numpy(), sample["mean_spend"].to_numpy())
    params = np.array([5.0, 3.0, 20.0])
    _, gradient = _log_likelihood_and_gradient(params, *args)
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-6 * params[i]
        upper, _ = _log_likelihood_and_gradient(params + step, *args)
        lower, _ = _log_likelihood_and_gradient(params - step, *args)
        numeric = (upper.sum() - lower.sum()) / (2 * step[i])
        assert gradient[i].sum() == pytest.approx(numeric, rel=1e-5)


def test_customers_evaluated_together_get_what_each_gets_alone(customers: pd.DataFrame) -> None:
    # Shared frequencies are evaluated once per distinct value.
    sample = customers.iloc[:300]
    x, spend = sample["frequency"].to_numpy(), sample["mean_spend"].to_numpy()
    params = np.array([5.0, 3.0, 20.0])
    together, gradient = _log_likelihood_and_gradient(params, x, spend)
    alone = [_log_likelihood_and_gradient(params, x[[i]], spend[[i]]) for i in range(len(x))]
    assert len(np.unique(x)) < len(x)
    np.testing.assert_allclose(together, [value[0] for value, _ in alone], rtol=1e-12)
    np.testing.assert_allclose(gradient, np.hstack([g for _, g in alone]), rtol=1e-12)


def _integrate_over_customer_rates(x: float, mean_spend: float, weight) -> float:
    """Integral over nu ~ Gamma(q, v) of weight(nu) x density of the mean of x Gamma(p, nu)
    purchases, which is Gamma(p x, rate x nu)."""

    def integrand(nu: float) -> float:
        log_mean_density = (
            TRUE.p * x * math.log(x * nu)
            + (TRUE.p * x - 1) * math.log(mean_spend)
            - x * nu * mean_spend
            - math.lgamma(TRUE.p * x)
        )
        log_nu_density = (
            TRUE.q * math.log(TRUE.v) + (TRUE.q - 1) * math.log(nu) - TRUE.v * nu
        ) - math.lgamma(TRUE.q)
        return weight(nu) * math.exp(log_mean_density + log_nu_density)

    value, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)
    return value


HISTORIES = [(1, 12.0), (2, 35.0), (5, 28.0), (40, 31.5)]


@pytest.mark.parametrize(("x", "mean_spend"), HISTORIES)
def test_log_likelihood_equals_direct_integration_over_customer_rates(
    x: float, mean_spend: float
) -> None:
    direct = _integrate_over_customer_rates(x, mean_spend, lambda nu: 1.0)
    closed_form = _model_with(TRUE).log_likelihood([x], [mean_spend])[0]
    assert closed_form == pytest.approx(math.log(direct), abs=1e-8)


@pytest.mark.parametrize(("x", "mean_spend"), HISTORIES)
def test_expected_spend_equals_the_posterior_mean_of_the_customer_mean(
    x: float, mean_spend: float
) -> None:
    posterior_mean = _integrate_over_customer_rates(
        x, mean_spend, lambda nu: TRUE.p / nu
    ) / _integrate_over_customer_rates(x, mean_spend, lambda nu: 1.0)
    expected = _model_with(TRUE).conditional_expected_spend([x], [mean_spend])[0]
    assert expected == pytest.approx(posterior_mean, rel=1e-8)


def test_expected_spend_matches_the_simulated_true_means(customers: pd.DataFrame) -> None:
    expected = _model_with(TRUE).conditional_expected_spend(
        customers["frequency"], customers["mean_spend"]
    )
    gap = customers["true_mean_spend"] - expected
    for frequency in (1, 5, 10):
        group = gap[customers["frequency"] == frequency]
        assert abs(group.mean()) < 4 * group.std() / np.sqrt(len(group)), frequency


def test_customers_without_repeat_purchases_get_the_population_mean() -> None:
    expected = _model_with(TRUE).conditional_expected_spend([0, 0, 3], [np.nan, 99.0, 30.0])
    assert expected[:2] == pytest.approx([30.0, 30.0])
    assert expected[2] == pytest.approx(30.0)  # own mean equals the population's


def test_fit_ignores_rows_without_repeat_purchases_or_positive_spend(
    customers: pd.DataFrame,
) -> None:
    sample = customers.iloc[:2000]
    clean = GammaGammaModel().fit(sample["frequency"], sample["mean_spend"])
    padded = GammaGammaModel().fit(
        np.concatenate([sample["frequency"], [0, 0, 2]]),
        np.concatenate([sample["mean_spend"], [np.nan, 5.0, 0.0]]),
    )
    assert (padded.p_, padded.q_, padded.v_) == pytest.approx((clean.p_, clean.q_, clean.v_))
    assert padded.n_customers_ == 2000


def test_too_few_repeat_customers_raise_a_value_model_error(customers: pd.DataFrame) -> None:
    sample = customers.iloc[:29]
    with pytest.raises(ValueModelError, match=r"at least 30 customers.*the data has 29"):
        GammaGammaModel().fit(sample["frequency"], sample["mean_spend"])


def test_spend_too_heavy_tailed_for_a_finite_mean_raises_a_value_model_error() -> None:
    rng = np.random.default_rng(3)
    heavy = simulate_spend(GammaGammaParams(p=2.0, q=0.6, v=10.0), rng.integers(1, 6, 5000), rng)
    with pytest.raises(ValueModelError, match="population mean spend is infinite"):
        GammaGammaModel().fit(heavy["frequency"], heavy["mean_spend"])


def test_predictions_before_fit_raise_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        GammaGammaModel().conditional_expected_spend([1], [10.0])


def test_missing_spend_of_a_repeat_customer_is_refused() -> None:
    with pytest.raises(ValueError, match="mean_spend is missing"):
        _model_with(TRUE).conditional_expected_spend([2], [np.nan])


def test_fit_and_predictions_equal_lifetimes(
    customers: pd.DataFrame, lifetimes: ModuleType
) -> None:
    sample = customers.iloc[:5000]
    x, spend = sample["frequency"], sample["mean_spend"]
    reference = lifetimes.GammaGammaFitter().fit(x, spend)
    ours = GammaGammaModel().fit(x, spend)
    for name in ("p", "q", "v"):
        assert getattr(ours, f"{name}_") == pytest.approx(reference.params_[name], rel=1e-3)
    ours.p_, ours.q_, ours.v_ = (reference.params_[name] for name in ("p", "q", "v"))
    reference_log_likelihood = -reference._negative_log_likelihood(
        np.log(reference.params_[["p", "q", "v"]].to_numpy()),
        x.to_numpy(),
        spend.to_numpy(),
        np.ones(len(x)),
        0.0,
    )
    assert ours.log_likelihood(x, spend).mean() == pytest.approx(reference_log_likelihood)
    np.testing.assert_allclose(
        ours.conditional_expected_spend(x, spend),
        reference.conditional_expected_average_profit(x, spend),
        rtol=1e-10,
    )


def test_cdnow_sample_gives_the_published_estimates(lifetimes: ModuleType) -> None:
    """CDNOW's repeat buyers (946) as shipped with lifetimes; Fader, Hardie & Lee's Gamma-Gamma
    note reports p = 6.25, q = 3.74, v = 15.44."""
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    cdnow = load_cdnow_summary_data_with_monetary_value()
    model = GammaGammaModel().fit(cdnow["frequency"], cdnow["monetary_value"])
    assert model.n_customers_ == 946
    # We get v = 15.448, as lifetimes does; the note prints 15.44.
    assert (model.p_, model.q_, model.v_) == pytest.approx((6.25, 3.74, 15.44), abs=1e-2)
