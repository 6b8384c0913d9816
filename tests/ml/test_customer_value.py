import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.value import collapse_identical_rows, customer_value
from ml.value.customer_value import (
    VALUE_INPUTS_TABLE,
    baseline_metrics,
    baseline_scores,
    fit_value_models,
    predict_value,
    predictions_at,
    read_customer_inputs,
    revenue_totals,
)
from tests.ml.synthetic import synthetic_value_inputs, synthetic_warehouse
from tests.ml.value.simulate import (
    BetaGeoParams,
    GammaGammaParams,
    simulate_purchases,
    simulate_spend,
)


@pytest.fixture(scope="module")
def inputs() -> pd.DataFrame:
    table = synthetic_value_inputs(n_customers=1_500).to_pandas()
    return table[table["snapshot_on"] == table["snapshot_on"].max()].reset_index(drop=True)


def _fit(inputs: pd.DataFrame, **options):
    bought = inputs[inputs["has_purchased"]]
    repeat = bought[bought["frequency"] > 0]
    return fit_value_models(
        collapse_identical_rows(bought, ["frequency", "recency_days", "t_days"]),
        collapse_identical_rows(repeat, ["frequency", "mean_repeat_spend"]),
        snapshot_on="2025-10-01",
        horizon_days=90,
        **options,
    )


def test_revenue_summed_over_periods_is_expected_orders_times_expected_spend(inputs):
    # predicted_revenue sums 30-day periods (customer_lifetime_value); undiscounted, the sum
    # must telescope to the horizon's expected purchases times the expected spend.
    models = _fit(inputs)
    assert models.reason is None
    predicted = predict_value(models, inputs)
    bought = inputs["has_purchased"].to_numpy()
    assert predicted.loc[bought].notna().all().all()
    x = inputs.loc[bought, "frequency"]
    spend = models.spend.conditional_expected_spend(x, inputs.loc[bought, "mean_repeat_spend"])
    np.testing.assert_allclose(
        predicted.loc[bought, "predicted_revenue"],
        predicted.loc[bought, "expected_orders"] * spend,
    )
    # 365 days hold more purchases than 90, never fewer.
    assert (
        predicted.loc[bought, "predicted_clv"] >= predicted.loc[bought, "predicted_revenue"]
    ).all()
    assert (
        (predicted["probability_alive"].dropna() > 0)
        & (predicted["probability_alive"].dropna() <= 1)
    ).all()


def test_customers_without_a_purchase_get_no_value_and_rank_last_as_a_baseline(inputs):
    predicted = predict_value(_fit(inputs), inputs)
    never = ~inputs["has_purchased"].to_numpy()
    assert never.any()
    assert predicted.loc[never].isna().all().all()
    for score in baseline_scores(predicted).values():
        assert score[never].max() < score[~never].min()


def test_a_spend_model_that_cannot_be_fitted_keeps_the_purchase_columns(inputs):
    bought = inputs[inputs["has_purchased"]]
    models = fit_value_models(
        collapse_identical_rows(bought, ["frequency", "recency_days", "t_days"]),
        pd.DataFrame({"frequency": [1], "mean_repeat_spend": [10.0], "n_customers": [5]}),
        snapshot_on="2025-10-01",
        horizon_days=90,
    )
    assert models.purchases is not None and models.spend is None
    assert models.reason.startswith("Gamma-Gamma needs at least 30 customers")
    predicted = predict_value(models, inputs)
    assert predicted["expected_orders"].notna().any()
    assert predicted["predicted_revenue"].isna().all() and predicted["predicted_clv"].isna().all()


def test_no_purchaser_at_all_is_a_reason_not_an_error():
    empty = pd.DataFrame(columns=["frequency", "recency_days", "t_days", "n_customers"])
    models = fit_value_models(empty, empty, snapshot_on="2025-10-01", horizon_days=90)
    assert (
        models.purchases is None and models.reason == "no customer purchased before the snapshot"
    )


def test_calibration_of_totals_counts_customers_without_a_prediction_as_zero():
    predicted = pd.DataFrame({"predicted_revenue": [10.0, 30.0, np.nan]})
    totals = revenue_totals(predicted, np.array([0.0, 50.0, 30.0]))
    assert totals == {
        "predicted_revenue": 40.0,
        "realised_revenue": 80.0,
        "ratio": 0.5,
        "realised_revenue_without_history": 30.0,
    }


def test_as_a_baseline_bg_nbd_ranks_future_buyers_of_its_own_process_first():
    rng = np.random.default_rng(3)
    truth = BetaGeoParams(r=0.8, alpha=40.0, a=0.9, b=4.0)
    simulated = simulate_purchases(truth, rng.uniform(30, 500, 4_000).round(), 90.0, rng)
    simulated[["recency", "T"]] = simulated[["recency", "T"]].round()
    simulated["recency"] = np.where(simulated["frequency"] > 0, simulated["recency"], 0.0)
    inputs = simulated.rename(columns={"recency": "recency_days", "T": "t_days"}).assign(
        mean_repeat_spend=np.where(simulated["frequency"] > 0, 50.0, np.nan)
    )
    models = fit_value_models(
        collapse_identical_rows(inputs, ["frequency", "recency_days", "t_days"]),
        pd.DataFrame(columns=["frequency", "mean_repeat_spend", "n_customers"]),
        snapshot_on="2025-10-01",
        horizon_days=90,
    )
    bought = (inputs["future_purchases"] > 0).to_numpy().astype(int)
    ids = np.arange(len(inputs)).astype(str)
    metrics = baseline_metrics(bought, predict_value(models, inputs), ids)
    assert metrics["bg_nbd"]["roc_auc"] > 0.75
    assert metrics["bg_nbd"]["lift_top_decile"] > 2.0


def _simulated_shop(n_customers: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = BetaGeoParams(r=0.8, alpha=40.0, a=0.9, b=4.0)
    simulated = simulate_purchases(truth, rng.uniform(30, 500, n_customers).round(), 90.0, rng)
    simulated["recency"] = np.where(simulated["frequency"] > 0, simulated["recency"].round(), 0.0)
    simulated["T"] = simulated["T"].round()
    spend = simulate_spend(
        GammaGammaParams(p=6.0, q=4.0, v=15.0),
        np.maximum(simulated["frequency"].to_numpy(), 1),
        rng,
    )
    return simulated.rename(columns={"recency": "recency_days", "T": "t_days"}).assign(
        mean_repeat_spend=spend["mean_spend"].where(simulated["frequency"] > 0)
    )


def _fit_shop(shop: pd.DataFrame, snapshot_on: str = "2025-10-01"):
    repeat = shop[shop["frequency"] > 0]
    return fit_value_models(
        collapse_identical_rows(shop, ["frequency", "recency_days", "t_days"]),
        collapse_identical_rows(repeat, ["frequency", "mean_repeat_spend"]),
        snapshot_on=snapshot_on,
        horizon_days=90,
    )


def test_above_the_cap_the_models_are_fitted_on_a_sample_and_score_every_customer(monkeypatch):
    shop = _simulated_shop(12_000, seed=11)
    everyone = _fit_shop(shop)
    monkeypatch.setattr(customer_value, "MAX_FIT_CUSTOMERS", 6_000)
    sampled = _fit_shop(shop)
    assert sampled.purchases.n_customers_ == 6_000
    assert sampled.spend.n_customers_ == 6_000
    assert everyone.purchases.n_customers_ == 12_000
    # A population-level estimate: the sample's is the full fit's within sampling error.
    assert sampled.purchases.r_ == pytest.approx(everyone.purchases.r_, rel=0.1)
    assert sampled.purchases.alpha_ == pytest.approx(everyone.purchases.alpha_, rel=0.1)
    assert sampled.purchases.a_ / sampled.purchases.b_ == pytest.approx(
        everyone.purchases.a_ / everyone.purchases.b_, rel=0.25
    )
    assert _fit_shop(shop).purchases.r_ == sampled.purchases.r_  # deterministic
    predicted = predict_value(sampled, shop)
    assert predicted[["expected_orders", "predicted_revenue"]].notna().all().all()


def test_the_backtest_reuses_a_fit_made_at_its_snapshot_and_fits_any_other(tmp_path):
    path = synthetic_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(path), read_only=True) as con:
        day = con.execute(f"select max(snapshot_on) from {VALUE_INPUTS_TABLE}").fetchone()[0]
        ids = np.array(
            [
                row[0]
                for row in con.execute(
                    f"select customer_id from {VALUE_INPUTS_TABLE} where snapshot_on = ?"
                    " order by customer_id limit 200",
                    [day],
                ).fetchall()
            ]
        )
        refit = predictions_at(con, day, ids, 90)
        # A fit of other data stamped with this snapshot: its predictions come back, no refit.
        other = _fit_shop(_simulated_shop(3_000, seed=12), str(day))
        reused = predictions_at(con, day, ids, 90, fitted=[other])
        expected = predict_value(other, read_customer_inputs(con, day, ids))
        pd.testing.assert_frame_equal(reused, expected)
        assert not np.allclose(reused["expected_orders"], refit["expected_orders"])
        # Another horizon is another fit.
        pd.testing.assert_frame_equal(
            predictions_at(con, day, ids, 60, fitted=[other]), predictions_at(con, day, ids, 60)
        )
