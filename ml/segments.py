"""Customer segments: clustering, value-ordered ids, profiles and human-readable names."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from ml.evaluate import markdown_table
from ml.features import MISSING_SUFFIX
from ml.sampling import sample_rows

PROFILE_FEATURES = (
    "days_since_last_order",
    "n_orders",
    "n_orders_365d",
    "revenue",
    "avg_order_value",
    "tenure_days",
    "discount_share",
    "n_sessions_90d",
    "n_product_views_90d",
    "days_since_last_visit",
)
"""Raw features whose segment means make up a profile (and drive the names)."""


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
        columns = list(self.feature_names_in_)
        return self.segment_of_cluster_[self.kmeans_.predict(X[columns].to_numpy(np.float64))]


# Sums are taken as DECIMAL(38, 10): decimal sums are exact, so a profile does not depend on
# the order rows arrive in (a float sum's last bits do), and scoring need not sort the mart.
_EXACT = "decimal(38, 10)"


def _profile_sums_sql(relation: str, flags: Collection[str], features: Sequence[str]) -> str:
    parts = [
        "count(*)::double as n_customers",
        f"sum(purchase_probability::{_EXACT})::double as purchase_probability",
        f"count(*) filter (where days_since_last_order{MISSING_SUFFIX}::boolean)::double"
        " as never_ordered",
    ]
    for feature in features:
        flag = f"{feature}{MISSING_SUFFIX}"
        observed = f" filter (where not {flag}::boolean)" if flag in flags else ""
        parts += [
            f"coalesce(sum({feature}::{_EXACT}){observed}, 0)::double as {feature}",
            f"coalesce(sum(({feature} * {feature})::{_EXACT}){observed}, 0)::double"
            f" as {feature}__sq",
            f"count(*){observed}::double as {feature}__n",
        ]
    return (
        f"select segment_id, {', '.join(parts)} from {relation}"
        " group by segment_id order by segment_id"
    )


class SegmentSums:
    """Per-segment sums of the profile features, from which profiles and names are built.

    Means of a raw feature skip rows where it was imputed (`<feature>_was_missing`): the mean
    days since the last order of a segment is over the customers who ordered.

    Parameters
    ----------
    sums : pandas.DataFrame
        Indexed by segment id: `n_customers`, `purchase_probability`, `never_ordered`, and per
        feature its sum, sum of squares (`__sq`) and count of observed rows (`__n`).
    features : tuple of str
        The profile features.
    """

    def __init__(self, sums: pd.DataFrame, features: tuple[str, ...] = PROFILE_FEATURES) -> None:
        self.sums = sums
        self.features = features

    @classmethod
    def of_relation(
        cls,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        params: list | None = None,
        features: tuple[str, ...] = PROFILE_FEATURES,
    ) -> SegmentSums:
        """Sum a DuckDB relation with `segment_id`, `purchase_probability`, the raw profile
        features and their `_was_missing` flags (a table name, or a join: SQL, not user input).
        """
        columns = con.sql(f"select * from {relation} limit 0", params=params or None).columns
        sql = _profile_sums_sql(relation, set(columns), features)
        sums = con.sql(sql, params=params or None).to_df().set_index("segment_id")
        return cls(sums, features)

    @classmethod
    def of_frame(
        cls,
        segment_ids: np.ndarray,
        raw: pd.DataFrame,
        proba: np.ndarray,
        features: tuple[str, ...] = PROFILE_FEATURES,
    ) -> SegmentSums:
        """Sum in-memory rows: segment ids, raw features (with missing flags), probabilities."""
        flags = [f"{f}{MISSING_SUFFIX}" for f in features if f"{f}{MISSING_SUFFIX}" in raw]
        frame = raw[[*features, *flags]].assign(
            segment_id=np.asarray(segment_ids), purchase_probability=np.asarray(proba)
        )
        with duckdb.connect() as con:
            con.register("profile_rows", frame)
            return cls.of_relation(con, "profile_rows", features=features)

    def profiles(self) -> pd.DataFrame:
        """One row per segment id: size, share, revenue share, mean propensity, feature means."""
        sums = self.sums.sort_index()
        table = pd.DataFrame(index=sums.index.rename("segment_id"))
        table["n_customers"] = sums["n_customers"].astype(np.int64)
        table["share"] = sums["n_customers"] / sums["n_customers"].sum()
        table["revenue_share"] = sums["revenue"] / max(sums["revenue"].sum(), 1e-12)
        table["mean_purchase_probability"] = sums["purchase_probability"] / sums["n_customers"]
        table["never_ordered_share"] = sums["never_ordered"] / sums["n_customers"]
        for feature in self.features:
            table[f"mean_{feature}"] = sums[feature] / sums[f"{feature}__n"].replace(0, np.nan)
        return table

    def population_moments(self) -> pd.DataFrame:
        """Mean and standard deviation of each profile feature over all customers."""
        total = self.sums.sum()
        rows = {}
        for feature in self.features:
            n = max(total[f"{feature}__n"], 1.0)
            mean = total[feature] / n
            rows[feature] = (mean, np.sqrt(max(total[f"{feature}__sq"] / n - mean**2, 0.0)))
        rows["never_ordered_share"] = (total["never_ordered"] / total["n_customers"], 1.0)
        return pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "std"])


@dataclass(frozen=True)
class Archetype:
    """A named kind of segment and how well a profile (as z-scores) fits it."""

    name: str
    blurb: str
    fit: Callable[[pd.Series], float]


# z: a segment's mean of each profile feature in population standard deviations from the
# population mean; `min` expresses "and", so both traits must be present.
ARCHETYPES = (
    Archetype(
        "High-value loyal",
        "Frequent, recent buyers who bring in much of the revenue.",
        lambda z: min(z.revenue, z.n_orders_365d, -z.days_since_last_order),
    ),
    Archetype(
        "At-risk big spenders",
        "Spent a lot in the past but have not ordered for a while.",
        lambda z: min(z.revenue, z.days_since_last_order),
    ),
    Archetype(
        "Lapsed",
        "Used to buy; no recent orders and few visits.",
        lambda z: min(z.days_since_last_order, -z.n_sessions_90d),
    ),
    Archetype(
        "New one-time buyers",
        "Joined recently and have ordered about once.",
        lambda z: min(-z.tenure_days, -z.n_orders),
    ),
    Archetype(
        "Window shoppers",
        "Browse often but rarely buy.",
        lambda z: min(z.n_product_views_90d, -z.n_orders_365d),
    ),
    Archetype(
        "Bargain hunters",
        "Buy mostly when there is a discount.",
        lambda z: z.discount_share,
    ),
    Archetype(
        "Never purchased",
        "Signed up but have not completed an order yet.",
        lambda z: z.never_ordered_share,
    ),
    Archetype(
        "Big-basket occasionals",
        "Order rarely but spend a lot per order.",
        lambda z: min(z.avg_order_value, -z.n_orders_365d),
    ),
    Archetype(
        "Engaged regulars",
        "Visit and order regularly at moderate value.",
        lambda z: min(z.n_sessions_90d, z.n_orders_365d, -abs(z.avg_order_value)),
    ),
    Archetype(
        "Long-standing occasionals",
        "Customers for a long time who order now and then.",
        lambda z: min(z.tenure_days, -abs(z.n_orders_365d)),
    ),
    Archetype(
        "Average customers",
        "Close to the typical customer on every measure.",
        lambda z: -z.abs().mean(),
    ),
)


def profile_z_scores(profiles: pd.DataFrame, moments: pd.DataFrame) -> pd.DataFrame:
    """Each segment's profile means in population standard deviations from the mean."""
    z = pd.DataFrame(index=profiles.index)
    for feature, (mean, std) in moments.iterrows():
        column = feature if feature == "never_ordered_share" else f"mean_{feature}"
        spread = std if std > 0 else 1.0
        z[feature] = ((profiles[column] - mean) / spread).fillna(0.0)
    return z


def name_segments(profiles: pd.DataFrame, moments: pd.DataFrame) -> dict[int, tuple[str, str]]:
    """Give every segment the best-fitting archetype name, each name used once.

    Pairs are assigned greedily, best fit first (ties: lower segment id, then archetype
    order), so the naming is deterministic. Segments beyond the archetypes get a numbered
    generic name.

    Parameters
    ----------
    profiles : pandas.DataFrame
        `SegmentSums.profiles()`.
    moments : pandas.DataFrame
        `SegmentSums.population_moments()`.

    Returns
    -------
    dict of int to (str, str)
        Segment id -> (name, one-line blurb).
    """
    z = profile_z_scores(profiles, moments)
    fits = sorted(
        (-archetype.fit(z.loc[segment]), int(segment), position)
        for segment in z.index
        for position, archetype in enumerate(ARCHETYPES)
    )
    names: dict[int, tuple[str, str]] = {}
    used: set[int] = set()
    for _, segment, position in fits:
        if segment not in names and position not in used:
            names[segment] = (ARCHETYPES[position].name, ARCHETYPES[position].blurb)
            used.add(position)
    for segment in z.index:
        names.setdefault(int(segment), (f"Mixed group {segment}", "A mix of customer types."))
    return dict(sorted(names.items()))


def describe_segments(profiles: pd.DataFrame, names: dict[int, tuple[str, str]]) -> pd.DataFrame:
    """Profiles with `segment_name` and a one-line `description` built from the numbers."""
    described = profiles.copy()
    described.insert(0, "segment_name", [names[int(s)][0] for s in profiles.index])
    described.insert(
        1,
        "description",
        [
            _describe(names[int(segment)][1], row)
            for segment, row in profiles.iterrows()  # one line per segment, not per customer
        ],
    )
    return described


SEGMENT_REPORT_COLUMNS = [
    "segment_name",
    "n_customers",
    "share",
    "revenue_share",
    "mean_purchase_probability",
    "mean_days_since_last_order",
    "mean_n_orders",
    "mean_revenue",
    "mean_n_sessions_90d",
]


def segments_markdown(described: pd.DataFrame) -> str:
    """The train and score reports' segment section: a table by segment id, one line each."""
    table = markdown_table(described[SEGMENT_REPORT_COLUMNS], digits=2)
    lines = [f"- **{row.segment_name}**: {row.description}" for row in described.itertuples()]
    return table + "\n\n" + "\n".join(lines)


def _describe(blurb: str, row: pd.Series) -> str:
    recency = row["mean_days_since_last_order"]
    last_order = "no orders yet" if np.isnan(recency) else f"last order {recency:.0f} days ago"
    return (
        f"{blurb} {int(row['n_customers']):,} customers ({row['share']:.0%}); on average "
        f"{last_order}, {row['mean_n_orders']:.1f} orders, revenue {row['mean_revenue']:,.0f} "
        f"({row['revenue_share']:.0%} of all revenue); "
        f"mean purchase probability {row['mean_purchase_probability']:.0%}."
    )
