"""The value models in the pipeline: fit BG/NBD and Gamma-Gamma at a snapshot, apply them.

The models themselves live in `ml/value/`; this module connects them to the warehouse mart
`ml.customer_value_inputs` (one row per customer and snapshot, history strictly before it).
Training fits them twice, never with a label: at the validation snapshot, on the customers'
histories before it (a sample of at most `MAX_FIT_CUSTOMERS`), to score the validation
customers as a baseline; and at as_of, for the artifact that scoring applies. A fit the data
cannot support leaves `ValueModels` without the model and with the reason, and the run goes on.

Customers without a purchase before the snapshot are outside BG/NBD (it describes customers
from their first purchase on): their value columns are null, and as a baseline the model ranks
them last, below every customer with a history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ml import warehouse
from ml.modelling.evaluate import ranking_metrics
from ml.modelling.sampling import sample_counts
from ml.value import (
    BetaGeoModel,
    GammaGammaModel,
    ValueModelError,
    customer_lifetime_value,
)

VALUE_INPUTS_TABLE = "ml.customer_value_inputs"
# A tiny L2 penalty on the log-parameters. Where drop-out barely varies between customers the
# likelihood is a flat ridge along a, b -> infinity (a 4,000-customer shop: a = 6e4, b = 3e6,
# where L-BFGS-B stopped ABNORMAL and predictions overflow); this pulls a and b back to
# moderate values (8 and 337 there) for a mean log-likelihood 1e-4 lower and the same ROC-AUC.
PENALIZER_COEF = 1e-5
CLV_DAYS = 365
"""Horizon of `predicted_clv` in days (undiscounted expected revenue)."""
# Customers BG/NBD and Gamma-Gamma are fitted on, at most: a deterministic sample of customers
# above it (`sample_customers`); every customer is still scored. Their parameters describe the
# population, so a large sample estimates them within sampling error. At 1M customers the
# distinct (frequency, recency, T) rows are not few (550,000 for 930,000 buyers at as_of), and
# training's 5 fits took 16.7 s of its 53.8 s. Measured there (as_of 2026-01-01), this sample
# against every customer: BG/NBD r +0.4%, alpha +0.3%, a -2.8%, b -3.2% (a / b +0.4%: a and b
# ride a ridge), Gamma-Gamma p +0.3%, q +0.2%, v -0.0%, population mean spend +0.03%; over 5
# sample seeds the standard deviations were 0.3%, 0.6%, 2.3%, 2.4% and 0.7%, 0.5%, 1.2%, 0.1%.
# The train report's validation and backtest metrics moved by at most 0.001.
MAX_FIT_CUSTOMERS = 200_000
FIT_SAMPLE_SEED = 42
VALUE_COLUMNS = (
    "expected_orders",
    "probability_alive",
    "predicted_revenue",
    "predicted_clv",
)
CLV_METHOD = (
    "predicted revenue in the horizon (purchase probability x spend model) x BG/NBD's expected"
    " purchases over {days} days / its expected purchases over the horizon (per customer; for"
    " customers without a purchase before as_of, those of a new customer), undiscounted revenue"
)
SCORED_VALUE_COLUMNS = ("expected_orders", "probability_alive", "clv_ratio")
"""What scoring takes from BG/NBD: `clv_ratio` turns horizon revenue into `predicted_clv`."""


@dataclass(frozen=True)
class ValueModels:
    """The fitted value models of one snapshot, or why they are missing.

    `purchases` is None when BG/NBD could not be fitted, `spend` when Gamma-Gamma could not
    (or BG/NBD failed first: revenue needs both); `reason` then says why, in one line.
    """

    snapshot_on: str
    horizon_days: int
    clv_days: int = CLV_DAYS
    purchases: BetaGeoModel | None = None
    spend: GammaGammaModel | None = None
    reason: str | None = None

    def parameters(self) -> dict:
        """The fitted parameters and what they rest on, for `metadata.json`."""
        out: dict = {
            "snapshot_on": self.snapshot_on,
            "horizon_days": self.horizon_days,
            "clv_days": self.clv_days,
            "clv_method": CLV_METHOD.format(days=self.clv_days),
            "max_fit_customers": MAX_FIT_CUSTOMERS,
            "bg_nbd_fitted": self.purchases is not None,
            "gamma_gamma_fitted": self.spend is not None,
            "reason": self.reason,
        }
        if self.purchases is not None:
            model = self.purchases
            out["bg_nbd"] = {
                "r": model.r_,
                "alpha_days": model.alpha_,
                "a": model.a_,
                "b": model.b_,
                "n_customers": model.n_customers_,
            }
        if self.spend is not None:
            out["gamma_gamma"] = {
                "p": self.spend.p_,
                "q": self.spend.q_,
                "v": self.spend.v_,
                "population_mean_spend": self.spend.population_mean_spend_,
                "n_customers": self.spend.n_customers_,
            }
        return out


def read_collapsed_inputs(
    con: duckdb.DuckDBPyConnection, snapshot_on: object
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fitting inputs of one snapshot, collapsed to distinct rows with `n_customers`.

    Returns the BG/NBD rows (customers with a purchase) and the Gamma-Gamma rows (customers
    with a repeat purchase); DuckDB does the grouping, so memory does not grow with customers.
    """
    purchases = warehouse.query(
        con,
        "select frequency, recency_days, t_days, count(*) as n_customers"
        f" from {VALUE_INPUTS_TABLE} where snapshot_on = ? and has_purchased"
        " group by all order by all",
        [snapshot_on],
    ).to_pandas()
    spend = warehouse.query(
        con,
        "select frequency, mean_repeat_spend, count(*) as n_customers"
        f" from {VALUE_INPUTS_TABLE} where snapshot_on = ? and frequency > 0"
        " group by all order by all",
        [snapshot_on],
    ).to_pandas()
    return purchases, spend


def read_customer_inputs(
    con: duckdb.DuckDBPyConnection, snapshot_on: object, customer_ids: np.ndarray
) -> pd.DataFrame:
    """The value inputs of the given customers at one snapshot, in the order of `customer_ids`.

    Customers without a row get null inputs (treated as never purchased).
    """
    con.register("_segmart_value_ids", pa.table({"customer_id": pa.array(customer_ids)}))
    try:
        rows = warehouse.query(
            con,
            "select ids.customer_id, inputs.frequency, inputs.recency_days, inputs.t_days,"
            " inputs.mean_repeat_spend"
            " from _segmart_value_ids as ids"
            f" left join {VALUE_INPUTS_TABLE} as inputs"
            " on ids.customer_id = inputs.customer_id and inputs.snapshot_on = ?",
            [snapshot_on],
        ).to_pandas()
    finally:
        con.unregister("_segmart_value_ids")
    return rows.set_index("customer_id").reindex(customer_ids).reset_index()


def fit_value_models(
    purchases: pd.DataFrame,
    spend: pd.DataFrame,
    *,
    snapshot_on: str,
    horizon_days: int,
    clv_days: int = CLV_DAYS,
) -> ValueModels:
    """Fit BG/NBD and Gamma-Gamma on collapsed rows (`read_collapsed_inputs`).

    Never raises for data the models cannot fit: the result then lacks the model and says why.
    """
    models = ValueModels(snapshot_on, horizon_days, clv_days)
    if purchases.empty:
        return _without(models, "no customer purchased before the snapshot")
    sampled = sample_customers(purchases, MAX_FIT_CUSTOMERS)
    spend = sample_customers(spend, MAX_FIT_CUSTOMERS)
    try:
        bg_nbd = BetaGeoModel(penalizer_coef=PENALIZER_COEF).fit(
            sampled["frequency"],
            sampled["recency_days"],
            sampled["t_days"],
            sample_weight=sampled["n_customers"],
        )
        _check_expected_purchases(bg_nbd, purchases, {horizon_days, clv_days})
    except ValueModelError as error:
        return _without(models, str(error))
    try:
        gamma_gamma = GammaGammaModel(penalizer_coef=PENALIZER_COEF).fit(
            spend["frequency"], spend["mean_repeat_spend"], sample_weight=spend["n_customers"]
        )
    except ValueModelError as error:
        return ValueModels(snapshot_on, horizon_days, clv_days, bg_nbd, None, str(error))
    return ValueModels(snapshot_on, horizon_days, clv_days, bg_nbd, gamma_gamma)


def _check_expected_purchases(
    bg_nbd: BetaGeoModel, purchases: pd.DataFrame, horizons: set[int]
) -> None:
    """Raise `ValueModelError` where expected purchases overflow for a customer at the snapshot.

    They can overflow where the fit did not (a and b in the millions: a drop-out probability
    the same for everyone), so every customer's history is checked, not only the sample's. The
    part that can overflow depends on frequency and T alone: one row per distinct pair is
    checked, with recency 0.
    """
    histories = purchases[["frequency", "t_days"]].drop_duplicates()
    no_recency = np.zeros(len(histories))
    for days in horizons:
        bg_nbd.conditional_expected_purchases(
            days, histories["frequency"], no_recency, histories["t_days"]
        )


def sample_customers(rows: pd.DataFrame, max_customers: int) -> pd.DataFrame:
    """Collapsed rows (`read_collapsed_inputs`) of a sample of at most `max_customers` customers.

    Deterministic (`FIT_SAMPLE_SEED`); rows none of whose customers were drawn are dropped.
    """
    counts = sample_counts(rows["n_customers"].to_numpy(), max_customers, FIT_SAMPLE_SEED)
    return rows.assign(n_customers=counts).loc[counts > 0].reset_index(drop=True)


def _without(models: ValueModels, reason: str) -> ValueModels:
    return ValueModels(models.snapshot_on, models.horizon_days, models.clv_days, reason=reason)


def predict_value(models: ValueModels, inputs: pd.DataFrame) -> pd.DataFrame:
    """The value columns of each customer (rows of `ml.customer_value_inputs`).

    Returns one row per input row with `VALUE_COLUMNS` (float64, NaN where a model is
    missing or the customer has no purchase before the snapshot).
    """
    n = len(inputs)
    out = pd.DataFrame({column: np.full(n, np.nan) for column in VALUE_COLUMNS})
    bought = inputs["frequency"].notna().to_numpy()
    if models.purchases is None or not bought.any():
        return out
    rows = inputs.loc[bought]
    x = rows["frequency"].to_numpy(np.float64)
    t_x = rows["recency_days"].to_numpy(np.float64)
    T = rows["t_days"].to_numpy(np.float64)
    purchases = models.purchases
    out.loc[bought, "expected_orders"] = purchases.conditional_expected_purchases(
        models.horizon_days, x, t_x, T
    )
    out.loc[bought, "probability_alive"] = purchases.conditional_probability_alive(x, t_x, T)
    if models.spend is not None:
        mean_spend = rows["mean_repeat_spend"].to_numpy(np.float64)
        # One method for both horizons: undiscounted expected revenue in (T, T + days].
        for column, days in (
            ("predicted_revenue", models.horizon_days),
            ("predicted_clv", models.clv_days),
        ):
            out.loc[bought, column] = customer_lifetime_value(
                purchases, models.spend, x, t_x, T, mean_spend, horizon_days=days
            )
    return out


def scored_value(models: ValueModels, inputs: pd.DataFrame) -> pd.DataFrame:
    """`SCORED_VALUE_COLUMNS` of each customer (rows of `ml.customer_value_inputs`).

    `clv_ratio` is E[purchases in clv_days] / E[purchases in the horizon]: conditional on the
    customer's history, or for customers without a purchase, unconditional (a new customer's).
    All NaN when BG/NBD is missing.
    """
    n = len(inputs)
    out = pd.DataFrame({column: np.full(n, np.nan) for column in SCORED_VALUE_COLUMNS})
    if models.purchases is None:
        return out
    purchases, horizon, clv = models.purchases, models.horizon_days, models.clv_days
    new_customer = purchases.expected_purchases([clv, horizon])
    out["clv_ratio"] = float(new_customer[0] / new_customer[1])
    bought = inputs["frequency"].notna().to_numpy()
    if bought.any():
        rows = inputs.loc[bought]
        x, t_x, T = (rows[c].to_numpy(np.float64) for c in ("frequency", "recency_days", "t_days"))
        # No Gamma-Gamma here: spend comes from the spend model (ml/value/revenue.py).
        in_horizon = purchases.conditional_expected_purchases(horizon, x, t_x, T)
        out.loc[bought, "expected_orders"] = in_horizon
        out.loc[bought, "probability_alive"] = purchases.conditional_probability_alive(x, t_x, T)
        longer = purchases.conditional_expected_purchases(clv, x, t_x, T)
        out.loc[bought, "clv_ratio"] = longer / in_horizon
    return out


def baseline_scores(predicted: pd.DataFrame) -> dict[str, np.ndarray]:
    """BG/NBD's purchase rankings: expected purchases and probability alive.

    Customers without a purchase before the snapshot rank last (-1, below any prediction).
    """
    return {
        "bg_nbd": predicted["expected_orders"].fillna(-1.0).to_numpy(),
        "bg_nbd_probability_alive": predicted["probability_alive"].fillna(-1.0).to_numpy(),
    }


def baseline_metrics(
    y_true: np.ndarray, predicted: pd.DataFrame, tiebreak: np.ndarray
) -> dict[str, dict[str, float]]:
    """Ranking metrics (ROC-AUC, PR-AUC, top-decile lift and capture) of each BG/NBD score."""
    return {
        name: ranking_metrics(y_true, score, tiebreak)
        for name, score in baseline_scores(predicted).items()
    }


def revenue_totals(predicted: pd.DataFrame, realised: np.ndarray) -> dict[str, float]:
    """Calibration of totals: predicted revenue summed over customers against realised.

    Customers without a prediction (no purchase before the snapshot) count 0 predicted, so the
    ratio also shows the revenue the model leaves out.
    """
    predicted_total = float(np.nansum(predicted["predicted_revenue"].to_numpy()))
    realised_total = float(np.sum(realised))
    covered = predicted["predicted_revenue"].notna().to_numpy()
    return {
        "predicted_revenue": predicted_total,
        "realised_revenue": realised_total,
        "ratio": predicted_total / realised_total if realised_total > 0 else float("nan"),
        "realised_revenue_without_history": float(np.sum(realised[~covered])),
    }


@dataclass(frozen=True)
class ValueFit:
    """What training does with the value models: the validation baseline and the shipped fit.

    `validation` is fitted at the validation snapshot (history before it, no labels) and
    scores the validation customers: `baselines` (purchase ranking) and `revenue_totals`
    (calibration of totals), empty when it could not be fitted. `shipped` is fitted at as_of
    and goes into the model artifact for scoring.
    """

    validation: ValueModels
    shipped: ValueModels
    baselines: dict[str, dict[str, float]]
    revenue_totals: dict[str, float]

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per model that could not be fitted, naming the cause."""
        found = []
        for when, models in (("validation", self.validation), ("as_of", self.shipped)):
            if models.reason is not None:
                what = "Gamma-Gamma" if models.purchases is not None else "BG/NBD"
                found.append(
                    f"{what} not fitted at the {when} snapshot {models.snapshot_on}:"
                    f" {models.reason}"
                )
        return tuple(found)

    def to_json(self) -> dict:
        """For `metadata.json`: both fits' parameters and the calibration of totals."""
        return {
            "validation": self.validation.parameters(),
            "as_of": self.shipped.parameters(),
            "revenue_totals": self.revenue_totals,
        }


def fit_for_training(
    con: duckdb.DuckDBPyConnection,
    *,
    validation_snapshot: object,
    customer_ids: np.ndarray,
    label: np.ndarray,
    revenue: np.ndarray,
    as_of: object,
    horizon_days: int,
) -> ValueFit:
    """Fit at the validation snapshot and evaluate on its customers; fit again at as_of.

    Parameters
    ----------
    con
        A warehouse connection.
    validation_snapshot, customer_ids, label, revenue
        The validation snapshot and its customers, their purchase labels and realised revenue
        in the horizon.
    as_of
        The scoring snapshot, whose fit is shipped.
    horizon_days
        The label horizon, the window of expected orders and predicted revenue.
    """
    validation_day, as_of_day = str(validation_snapshot)[:10], str(as_of)[:10]
    if not warehouse.table_exists(con, VALUE_INPUTS_TABLE):
        reason = f"{VALUE_INPUTS_TABLE} is missing: rebuild with `segmart build`"
        return ValueFit(
            ValueModels(validation_day, horizon_days, reason=reason),
            ValueModels(as_of_day, horizon_days, reason=reason),
            {},
            {},
        )
    validation = fit_value_models(
        *read_collapsed_inputs(con, validation_snapshot),
        snapshot_on=validation_day,
        horizon_days=horizon_days,
    )
    baselines: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    if validation.purchases is not None:
        predicted = predict_value(
            validation, read_customer_inputs(con, validation_snapshot, customer_ids)
        )
        baselines = baseline_metrics(label, predicted, customer_ids)
        if validation.spend is not None:
            totals = revenue_totals(predicted, revenue)
    shipped = fit_value_models(
        *read_collapsed_inputs(con, as_of), snapshot_on=as_of_day, horizon_days=horizon_days
    )
    if shipped.purchases is None and shipped.reason == "no customer purchased before the snapshot":
        n_rows = con.execute(
            f"select count(*) from {VALUE_INPUTS_TABLE} where snapshot_on = ?", [as_of]
        ).fetchone()[0]
        if n_rows == 0:
            shipped = _without(
                shipped, f"{VALUE_INPUTS_TABLE} has no rows at as_of {as_of_day}: rebuild"
            )
    return ValueFit(validation, shipped, baselines, totals)


def predictions_at(
    con: duckdb.DuckDBPyConnection,
    snapshot_on: object,
    customer_ids: np.ndarray,
    horizon_days: int,
    fitted: Iterable[ValueModels] = (),
) -> pd.DataFrame | None:
    """BG/NBD + Gamma-Gamma fitted on the history before a snapshot, for its customers.

    None when the mart is missing or BG/NBD cannot be fitted there (the backtest then has no
    BG/NBD row for that window). `fitted` are fits already made on this warehouse (training's,
    at its validation snapshot, which is the backtest's latest origin): one of this snapshot
    and horizon is used rather than fitted again.
    """
    if not warehouse.table_exists(con, VALUE_INPUTS_TABLE):
        return None
    day = str(snapshot_on)[:10]
    same = [m for m in fitted if (m.snapshot_on, m.horizon_days) == (day, horizon_days)]
    if same:
        models = same[0]
    else:
        inputs = read_collapsed_inputs(con, snapshot_on)
        models = fit_value_models(*inputs, snapshot_on=day, horizon_days=horizon_days)
    if models.purchases is None:
        return None
    return predict_value(models, read_customer_inputs(con, snapshot_on, customer_ids))
