"""Metrics of a purchase-propensity score, and the naive baselines it has to beat."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

DEFAULT_THRESHOLD = 0.5
"""Probability at or above which a customer counts as a predicted buyer (the seed's default)."""

TOP_SHARE = 0.1
"""The top decile: the share of customers a campaign would target."""

METRIC_NAMES = (
    "roc_auc",
    "pr_auc",
    "lift_top_decile",
    "capture_top_decile",
    "brier",
    "accuracy",
    "precision",
    "recall",
    "f1",
)


def rank_order(score: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Indices ordering rows by score descending, ties broken by `tiebreak` ascending.

    Parameters
    ----------
    score : numpy.ndarray
        Higher means more likely to buy.
    tiebreak : numpy.ndarray
        A unique key per row (customer_id), so the order is deterministic.

    Returns
    -------
    numpy.ndarray
        Row indices, best first.
    """
    return np.lexsort((tiebreak, -np.asarray(score, dtype=np.float64)))


def top_decile_metrics(
    y_true: np.ndarray, score: np.ndarray, tiebreak: np.ndarray, top_share: float = TOP_SHARE
) -> dict[str, float]:
    """Lift and capture rate of the top `top_share` of customers by score.

    Parameters
    ----------
    y_true : numpy.ndarray
        1 for customers who bought in the horizon.
    score : numpy.ndarray
        Any score where higher means more likely to buy.
    tiebreak : numpy.ndarray
        Unique key per row, breaking score ties deterministically.
    top_share : float
        Share of customers targeted.

    Returns
    -------
    dict
        `lift_top_decile` (buyer rate in the top group / overall buyer rate) and
        `capture_top_decile` (share of all buyers found in the top group).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    n_top = max(1, int(np.ceil(top_share * len(y_true))))
    top = rank_order(score, tiebreak)[:n_top]
    overall = y_true.mean()
    return {
        "lift_top_decile": float(y_true[top].mean() / overall),
        "capture_top_decile": float(y_true[top].sum() / y_true.sum()),
    }


def ranking_metrics(y_true: np.ndarray, score: np.ndarray, tiebreak: np.ndarray) -> dict:
    """ROC-AUC, PR-AUC and top-decile lift and capture of any score."""
    return {
        "roc_auc": float(roc_auc_score(y_true, score)),
        "pr_auc": float(average_precision_score(y_true, score)),
        **top_decile_metrics(y_true, score, tiebreak),
    }


def revenue_metrics(
    realised: np.ndarray,
    predicted: np.ndarray,
    tiebreak: np.ndarray,
    in_currency: bool = True,
    top_share: float = TOP_SHARE,
) -> dict[str, float]:
    """How well a score ranks (and, in currency, predicts) revenue in the horizon.

    Parameters
    ----------
    realised : numpy.ndarray
        Each customer's revenue in the horizon (0 for non-buyers).
    predicted : numpy.ndarray
        A revenue prediction, or any score where higher means more revenue.
    tiebreak : numpy.ndarray
        Unique key per row, breaking score ties deterministically.
    in_currency : bool
        Whether `predicted` is revenue: only then are `total_ratio` and `mae` computed.

    Returns
    -------
    dict
        `revenue_capture_top_decile` (share of all revenue from the top `top_share` by score),
        `revenue_gini` (area between the score's cumulative-revenue curve and the diagonal,
        over the same area for the perfect ranking: 1 perfect, 0 random), and in currency
        `total_ratio` (predicted sum / realised sum: calibration of totals) and `mae`.
    """
    realised = np.nan_to_num(np.asarray(realised, dtype=np.float64))
    order = rank_order(predicted, tiebreak)
    n_top = max(1, int(np.ceil(top_share * len(realised))))
    total = realised.sum()
    captured = np.cumsum(realised[order]) / total
    perfect = np.cumsum(np.sort(realised)[::-1]) / total
    out = {
        "revenue_capture_top_decile": float(captured[n_top - 1]),
        "revenue_gini": float((captured.mean() - 0.5) / (perfect.mean() - 0.5)),
    }
    if in_currency:
        predicted = np.asarray(predicted, dtype=np.float64)
        out["total_ratio"] = float(predicted.sum() / total)
        out["mae"] = float(np.abs(predicted - realised).mean())
    return out


def revenue_gains(
    realised: np.ndarray, score: np.ndarray, tiebreak: np.ndarray, n_bins: int = 10
) -> list[float]:
    """Cumulative share of the realised revenue from the top 1/n_bins, 2/n_bins, ... by score."""
    realised = np.nan_to_num(np.asarray(realised, dtype=np.float64))
    groups = np.array_split(realised[rank_order(score, tiebreak)], n_bins)
    return (np.cumsum([group.sum() for group in groups]) / realised.sum()).tolist()


def threshold_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of yes/no predictions (the seed's metrics)."""
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
    }


def classification_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    tiebreak: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, float]:
    """Every reported metric of a probability.

    Parameters
    ----------
    y_true : numpy.ndarray
        1 for customers who bought in the horizon.
    proba : numpy.ndarray
        Predicted purchase probabilities.
    tiebreak : numpy.ndarray
        Unique key per row for deterministic top-decile ties.
    threshold : float
        Probability at or above which a customer is a predicted buyer.

    Returns
    -------
    dict
        The keys of `METRIC_NAMES`.
    """
    return {
        **ranking_metrics(y_true, proba, tiebreak),
        "brier": float(brier_score_loss(y_true, proba)),
        **threshold_metrics(y_true, np.asarray(proba) >= threshold),
    }


def baseline_scores(raw: pd.DataFrame) -> dict[str, np.ndarray]:
    """The naive scores a marketer would use without a model.

    Parameters
    ----------
    raw : pandas.DataFrame
        Raw feature columns `days_since_last_order`, `days_since_last_order_was_missing`,
        `n_orders_365d` and `n_orders_90d`.

    Returns
    -------
    dict of str to numpy.ndarray
        Higher means more likely to buy. `recency`: minus the days since the last order
        (customers who never ordered rank last, not at the imputed mean); `frequency`: orders
        in the last 365 days; `bought_last_horizon`: 1 if they ordered in the last 90 days.
    """
    never_ordered = raw["days_since_last_order_was_missing"].to_numpy(dtype=bool)
    days = raw["days_since_last_order"].to_numpy(dtype=np.float64)
    longest = days[~never_ordered].max(initial=0.0)
    return {
        "recency": -np.where(never_ordered, longest + 1.0, days),
        "frequency": raw["n_orders_365d"].to_numpy(dtype=np.float64),
        "bought_last_horizon": (raw["n_orders_90d"].to_numpy(dtype=np.float64) > 0).astype(float),
    }


def baseline_metrics(
    y_true: np.ndarray, raw: pd.DataFrame, tiebreak: np.ndarray
) -> dict[str, dict[str, float]]:
    """Ranking metrics of every naive baseline; threshold metrics for the yes/no one.

    Brier and threshold metrics of the score baselines are left out: they are not
    probabilities and have no natural threshold.
    """
    scores = baseline_scores(raw)
    metrics = {name: ranking_metrics(y_true, score, tiebreak) for name, score in scores.items()}
    metrics["bought_last_horizon"].update(
        threshold_metrics(y_true, scores["bought_last_horizon"] > 0)
    )
    return metrics


def metrics_table(model: dict[str, float], baselines: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per scorer (model first), one column per metric; NaN where not applicable."""
    rows = {"model": model, **{f"baseline: {name}": m for name, m in baselines.items()}}
    return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(METRIC_NAMES))


def margin_over_baselines(
    model: dict[str, float], baselines: dict[str, dict[str, float]], metric: str = "roc_auc"
) -> dict[str, float]:
    """How much the model beats each baseline on `metric` (positive: the model is better)."""
    return {name: model[metric] - m[metric] for name, m in baselines.items()}


def validation_curves(
    y_true: np.ndarray, proba: np.ndarray, tiebreak: np.ndarray, n_bins: int = 10
) -> dict[str, dict[str, list[float]]]:
    """Compact curves of a validation score, small enough for `metadata.json`.

    Returns
    -------
    dict
        `roc` (fpr, tpr on a 101-point fpr grid), `deciles` (decile, lift, share_of_buyers:
        cumulative gain), `calibration` (mean_predicted, fraction_positive per quantile bin).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    fpr, tpr, _ = roc_curve(y_true, proba)
    grid = np.linspace(0.0, 1.0, 101)
    groups = np.array_split(y_true[rank_order(proba, tiebreak)], n_bins)
    rates = np.array([group.mean() for group in groups])
    gains = np.cumsum([group.sum() for group in groups]) / y_true.sum()
    fraction_positive, mean_predicted = calibration_curve(
        y_true, proba, n_bins=n_bins, strategy="quantile"
    )
    return {
        "roc": {"fpr": grid.tolist(), "tpr": np.interp(grid, fpr, tpr).tolist()},
        "deciles": {
            "decile": list(range(1, n_bins + 1)),
            "lift": (rates / y_true.mean()).tolist(),
            "share_of_buyers": gains.tolist(),
        },
        "calibration": {
            "mean_predicted": mean_predicted.tolist(),
            "fraction_positive": fraction_positive.tolist(),
        },
    }


def markdown_table(table: pd.DataFrame, digits: int = 3, index: bool = True) -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table (NaN shows as an em dash).

    Parameters
    ----------
    table : pandas.DataFrame
        Rows to show.
    digits : int
        Decimals of float cells.
    index : bool
        Whether the index becomes the first column.
    """
    shown = table.reset_index() if index else table

    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return "—" if np.isnan(value) else f"{value:,.{digits}f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(False)]
    return "\n".join([header, rule, *rows])
