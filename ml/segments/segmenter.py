"""The segmenter: k-means segments whose ids are ordered by value, and how k is chosen."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_is_fitted

from ml.modelling.sampling import sample_rows


def choose_k(
    silhouette_by_k: dict[int, float], min_share_by_k: dict[int, float], min_share: float
) -> int:
    """The k with the best silhouette among those whose smallest segment is big enough.

    If every k leaves a segment below `min_share` (say, a far-away group of outliers that
    every clustering isolates), the k whose smallest segment is largest wins. Ties go to the
    smaller k.
    """
    big_enough = [k for k, share in min_share_by_k.items() if share >= min_share]
    if not big_enough:
        return max(min_share_by_k, key=lambda k: (min_share_by_k[k], -k))
    return max(big_enough, key=lambda k: (silhouette_by_k[k], -k))


class Segmenter(BaseEstimator):
    """K-means segments whose ids are ordered by value: segment 1 is the most valuable.

    Parameters
    ----------
    n_segments : int or None
        Number of segments; None picks k in `k_range` with the best silhouette among the
        k whose smallest segment holds at least `min_share` of customers.
    k_range : tuple of int
        Smallest and largest k tried when choosing automatically.
    min_share : float
        Smallest acceptable segment share: tiny segments are not worth a campaign.
    fit_sample_size, silhouette_sample_size : int
        Rows the clusterings are fitted on, and scored on (silhouette is quadratic).
    random_state : int
        Seeds the samples and k-means.

    Attributes
    ----------
    kmeans_ : sklearn.cluster.KMeans
        The chosen clustering.
    n_segments_ : int
        Its k.
    silhouette_by_k_ : dict of int to float
        Silhouette of every k tried.
    min_share_by_k_ : dict of int to float
        Smallest segment share of every k tried.
    segment_of_cluster_ : numpy.ndarray
        Segment id (1 = most valuable) of each k-means cluster.
    """

    def __init__(
        self,
        n_segments: int | None = None,
        k_range: tuple[int, int] = (3, 10),
        min_share: float = 0.03,
        fit_sample_size: int = 10_000,
        silhouette_sample_size: int = 3_000,
        random_state: int = 0,
    ) -> None:
        self.n_segments = n_segments
        self.k_range = k_range
        self.min_share = min_share
        self.fit_sample_size = fit_sample_size
        self.silhouette_sample_size = silhouette_sample_size
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, value: np.ndarray) -> Segmenter:
        """Cluster `X` (the `__scaled` columns) and order clusters by mean `value`.

        Parameters
        ----------
        X : pandas.DataFrame
            Scaled numeric features, one row per customer.
        value : numpy.ndarray
            Value per customer (revenue in the horizon); a higher cluster mean gets a lower id.
        """
        rows = sample_rows(len(X), self.fit_sample_size, self.random_state)
        sample = X.to_numpy(np.float64)[rows]
        scored = sample_rows(len(sample), self.silhouette_sample_size, self.random_state + 1)
        low, high = self.k_range
        ks = [self.n_segments] if self.n_segments else range(low, min(high, len(sample) - 1) + 1)
        fits = {k: self._kmeans(k).fit(sample) for k in ks}
        self.silhouette_by_k_, self.min_share_by_k_ = {}, {}
        for k, kmeans in fits.items():
            shares = np.bincount(kmeans.labels_, minlength=k) / len(sample)
            self.min_share_by_k_[k] = float(shares.min())
            self.silhouette_by_k_[k] = float(
                silhouette_score(sample[scored], kmeans.labels_[scored])
            )
        self.n_segments_ = self._choose_k()
        self.kmeans_ = fits[self.n_segments_]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.segment_of_cluster_ = self._order_by_value(X, np.asarray(value, np.float64))
        return self

    def _kmeans(self, k: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=3, random_state=self.random_state)

    def _choose_k(self) -> int:
        if self.n_segments:
            return self.n_segments
        return choose_k(self.silhouette_by_k_, self.min_share_by_k_, self.min_share)

    def _order_by_value(self, X: pd.DataFrame, value: np.ndarray) -> np.ndarray:
        clusters = self.kmeans_.predict(X.to_numpy(np.float64))
        k = self.n_segments_
        counts = np.bincount(clusters, minlength=k)
        mean_value = np.bincount(clusters, weights=value, minlength=k) / np.maximum(counts, 1)
        # Ties (and empty clusters) fall back to the cluster index, so ids are deterministic.
        order = np.lexsort((np.arange(k), -mean_value))
        segment_of_cluster = np.empty(k, dtype=np.int64)
        segment_of_cluster[order] = np.arange(1, k + 1)
        return segment_of_cluster

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment id (1..k) of each row."""
        check_is_fitted(self)
        columns = list(self.feature_names_in_)
        return self.segment_of_cluster_[self.kmeans_.predict(X[columns].to_numpy(np.float64))]

    def centroids(self) -> pd.DataFrame:
        """The k-means centres in the scaled space, indexed by segment id."""
        return pd.DataFrame(
            self.kmeans_.cluster_centers_,
            index=pd.Index(self.segment_of_cluster_, name="segment_id"),
            columns=list(self.feature_names_in_),
        ).sort_index()


# A model artifact names the type by this module path, and the registry's allow-list trusts
# "ml.segments.Segmenter": the public path stays the recorded one, so artifacts written before
# and after the package split load alike.
Segmenter.__module__ = "ml.segments"
