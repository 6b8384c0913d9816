"""Population stability (PSI) of the model inputs between training and scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

PSI_DRIFT_THRESHOLD = 0.25
"""Above this PSI a feature has shifted enough that the model's scores deserve suspicion."""

_EPSILON = 1e-4  # floor on bin shares: an empty bin would make PSI infinite


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = sum((actual - expected) * ln(actual / expected)) over bins.

    Parameters
    ----------
    expected, actual : numpy.ndarray
        Counts or shares per bin (normalised here); shares are floored at 1e-4.

    Returns
    -------
    float
        0 for identical distributions; by convention < 0.1 stable, > 0.25 drifted.
    """
    expected = np.clip(np.asarray(expected, float) / np.sum(expected), _EPSILON, None)
    actual = np.clip(np.asarray(actual, float) / max(np.sum(actual), 1), _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class DriftReference(BaseEstimator):
    """Training-time bins and shares of each feature, to compare scoring batches against.

    Bins are the training deciles of each feature, taken at observed values (fewer when values
    repeat, so a 0/1 flag gets two); a value falls in bin `searchsorted(edges, value,
    side="right")`, the first and last bins open-ended, so scoring values outside the training
    range still count.
    Counting works batch by batch, so scoring memory stays flat.

    Parameters
    ----------
    n_bins : int
        Quantile bins per feature.

    Attributes
    ----------
    edges_ : dict of str to numpy.ndarray
        Inner bin edges per feature.
    expected_ : dict of str to numpy.ndarray
        Training share of rows per bin (length `len(edges) + 1`).
    feature_names_in_ : numpy.ndarray
        The features, in order.
    """

    def __init__(self, n_bins: int = 10) -> None:
        self.n_bins = n_bins

    def fit(self, X: pd.DataFrame, y: object = None) -> DriftReference:
        """Learn the bins and training shares of every column of `X`."""
        quantiles = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.edges_, self.expected_ = {}, {}
        for column in X.columns:
            values = X[column].to_numpy(dtype=np.float64)
            edges = np.unique(np.nanquantile(values, quantiles, method="inverted_cdf"))
            self.edges_[column] = edges
            self.expected_[column] = self._bin_counts(values, edges) / len(values)
        return self

    @staticmethod
    def _bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
        bins = np.searchsorted(edges, values, side="right")
        return np.bincount(bins, minlength=len(edges) + 1).astype(np.float64)

    def count(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Rows per training bin of each feature in one batch; add batches up with `+`."""
        check_is_fitted(self)
        return {
            column: self._bin_counts(X[column].to_numpy(dtype=np.float64), edges)
            for column, edges in self.edges_.items()
        }

    def psi(self, counts: dict[str, np.ndarray]) -> pd.DataFrame:
        """PSI of every feature given the summed scoring counts.

        Returns
        -------
        pandas.DataFrame
            Columns `feature`, `psi`, `is_drifted` (psi > 0.25), most drifted first.
        """
        check_is_fitted(self)
        rows = [
            (column, population_stability_index(self.expected_[column], counts[column]))
            for column in self.edges_
        ]
        table = pd.DataFrame(rows, columns=["feature", "psi"])
        table["is_drifted"] = table["psi"] > PSI_DRIFT_THRESHOLD
        return table.sort_values(["psi", "feature"], ascending=[False, True], ignore_index=True)


def add_counts(
    total: dict[str, np.ndarray] | None, counts: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Sum two per-feature bin counts (`total` None means nothing counted yet)."""
    if total is None:
        return counts
    return {column: total[column] + counts[column] for column in total}


MAX_SHARE_OUTSIDE_TRAINING_RANGE = 0.5
"""An input whose scoring values lie outside its training range for more than this share of
rows does not overlap training: the model would be scored where it never saw data."""


def non_overlapping_inputs(training: pd.DataFrame, scoring: pd.DataFrame) -> pd.DataFrame:
    """Which inputs of the scoring snapshot the training snapshots cannot speak for.

    An input is left out when it drifted (PSI > 0.25, the bins of `DriftReference`) *and*
    the drift is structural: most scoring rows (more than `MAX_SHARE_OUTSIDE_TRAINING_RANGE`)
    fall outside the training range [min, max]. Tenure on a shop whose customers all signed up
    in the same few weeks is the case: every customer is older at the scoring snapshot than at
    any training snapshot. PSI alone would also catch inputs that merely shifted inside the
    training range (a seasonal rise in visits), which a tree still ranks sensibly.

    Parameters
    ----------
    training, scoring : pandas.DataFrame
        The same model input columns, of the training snapshots and of the scoring snapshot.

    Returns
    -------
    pandas.DataFrame
        Columns `feature`, `psi`, `share_outside_training_range`, `is_dropped`, in the order
        of the columns.
    """
    columns = list(training.columns)
    reference = DriftReference().fit(training)
    psi = reference.psi(reference.count(scoring)).set_index("feature")["psi"]
    train = training.to_numpy(np.float64)
    values = scoring[columns].to_numpy(np.float64)
    low, high = np.nanmin(train, axis=0), np.nanmax(train, axis=0)
    with np.errstate(invalid="ignore"):
        outside = ((values < low) | (values > high)).mean(axis=0) if len(values) else 0.0
    table = pd.DataFrame(
        {
            "feature": columns,
            "psi": psi.reindex(columns).to_numpy(),
            "share_outside_training_range": np.broadcast_to(outside, (len(columns),)),
        }
    )
    table["is_dropped"] = (table["psi"] > PSI_DRIFT_THRESHOLD) & (
        table["share_outside_training_range"] > MAX_SHARE_OUTSIDE_TRAINING_RANGE
    )
    return table
