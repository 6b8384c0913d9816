"""Model-quality curves of the report: score and outcome arrays in, tables out."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

N_BINS = 10


def roc_points(y_true: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """False and true positive rates of the ROC curve (sklearn's, without redundant points)."""
    fpr, tpr, _ = roc_curve(y_true, score, drop_intermediate=True)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def decile_table(y_true: np.ndarray, score: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Buyers per score decile (1 = highest scores), with lift and cumulative gain.

    Rows are ordered by score descending with ties kept in input order (a stable sort), then cut
    into `n_bins` groups of equal size as numpy.array_split does.
    """
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    y_sorted = np.asarray(y_true, dtype=np.float64)[order]
    groups = np.array_split(y_sorted, n_bins)
    n = np.array([len(group) for group in groups], dtype=np.float64)
    n_positive = np.array([group.sum() for group in groups])
    overall_rate = y_sorted.mean() if len(y_sorted) else math.nan
    table = pd.DataFrame({"decile": np.arange(1, n_bins + 1), "n": n, "n_positive": n_positive})
    table["rate"] = table["n_positive"] / table["n"].where(table["n"] > 0)
    table["lift"] = table["rate"] / overall_rate if overall_rate else math.nan
    table["share_targeted"] = table["n"].cumsum() / n.sum()
    total_positive = n_positive.sum()
    table["share_of_buyers"] = (
        table["n_positive"].cumsum() / total_positive if total_positive else math.nan
    )
    return table


def calibration_table(y_true: np.ndarray, score: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Mean predicted probability against the observed rate in score-quantile bins."""
    frame = pd.DataFrame({"y": np.asarray(y_true, float), "p": np.asarray(score, float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), n_bins, labels=False)
    return (
        frame.groupby("bin")
        .agg(mean_predicted=("p", "mean"), fraction_positive=("y", "mean"), n=("y", "size"))
        .reset_index(drop=True)
    )
