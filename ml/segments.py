"""Customer segments: clustering, value-ordered ids kept across retrains, profiles and names."""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_is_fitted

from ml.evaluate import markdown_table
from ml.features import MISSING_SUFFIX, SCALED_SUFFIX
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


MAX_MATCH_DISTANCE = 0.35
"""Largest centroid distance (root mean square over the shared scaled columns, so in standard
deviations per feature) at which a retrained segment still counts as a reference segment.

On the generated shop (4,000 customers, 5 segments) the closest two centroids of one model are
0.71 apart and a retrain 30 days later finds each segment again within 0.10-0.11: half the
closest pair is the limit, so a match is nearer its reference than any other segment is."""


@dataclass(frozen=True)
class SegmentMatch:
    """How a retrained segmentation's ids follow a reference model's.

    Attributes
    ----------
    reference_model_id : str
        The model whose ids were kept.
    segment_of_segment : dict of int to int
        The retrained model's first-time id (ordered by value) -> its stable id.
    distances : dict of int to float
        Stable id of a kept segment -> distance between its centroid and the reference's.
    new_ids : tuple of int
        Stable ids given to segments the reference did not have (above its largest id).
    vanished_ids : tuple of int
        Reference ids no retrained segment matched.
    n_shared_columns : int
        Scaled columns both models use: the only ones distances are measured on.
    """

    reference_model_id: str
    segment_of_segment: dict[int, int]
    distances: dict[int, float]
    new_ids: tuple[int, ...]
    vanished_ids: tuple[int, ...]
    n_shared_columns: int

    @property
    def kept_ids(self) -> tuple[int, ...]:
        """Reference ids the retrained model kept."""
        return tuple(sorted(self.distances))

    def relabel(self, segmenter: Segmenter) -> Segmenter:
        """A copy of `segmenter` that predicts the stable ids."""
        relabelled = copy.copy(segmenter)
        lookup = self.segment_of_segment
        relabelled.segment_of_cluster_ = np.array(
            [lookup[int(segment)] for segment in segmenter.segment_of_cluster_], dtype=np.int64
        )
        return relabelled

    def to_json(self) -> dict:
        """The match as model metadata records it."""
        return {
            "reference_model_id": self.reference_model_id,
            "kept": {str(k): round(v, 4) for k, v in self.distances.items()},
            "new": list(self.new_ids),
            "vanished": list(self.vanished_ids),
            "n_shared_columns": self.n_shared_columns,
        }

    def to_markdown(self) -> str:
        """One paragraph for the train report."""
        kept = ", ".join(f"{k} (distance {d:.2f})" for k, d in sorted(self.distances.items()))
        return (
            f"Segment ids follow model {self.reference_model_id} (centroids matched on "
            f"{self.n_shared_columns} shared scaled columns): kept {kept or 'none'}; "
            f"new {', '.join(map(str, self.new_ids)) or 'none'}; "
            f"vanished {', '.join(map(str, self.vanished_ids)) or 'none'}."
        )


@dataclass(frozen=True)
class SegmentReference:
    """The segmentation a retrain keeps ids from: the promoted model's.

    Attributes
    ----------
    model_id : str
        Its registry id.
    segmenter : Segmenter
        Its fitted segments.
    names : dict of int to (str, str)
        Its segment names and blurbs, by id.
    centroids : pandas.DataFrame or None
        Its centroids in the retrained model's scaled space (`centroids_in_new_space`); None
        when both were preprocessed with the same fit.
    """

    model_id: str
    segmenter: Segmenter
    names: dict[int, tuple[str, str]]
    centroids: pd.DataFrame | None = None

    def match(
        self, segmenter: Segmenter, max_distance: float = MAX_MATCH_DISTANCE
    ) -> SegmentMatch:
        """`match_segments` of a retrained segmentation against this one."""
        return match_segments(
            segmenter, self.segmenter, self.model_id, max_distance, self.centroids
        )


def match_segments(
    segmenter: Segmenter,
    reference: Segmenter,
    reference_model_id: str,
    max_distance: float = MAX_MATCH_DISTANCE,
    reference_centroids: pd.DataFrame | None = None,
) -> SegmentMatch:
    """Match a retrained segmentation's segments to a reference model's, one to one.

    Centroids are paired by an assignment that minimises the total distance
    (`scipy.optimize.linear_sum_assignment`) over the scaled columns both models use; a pair
    further apart than `max_distance` is no match. Matched segments take the reference's id;
    the others get fresh ids above the reference's largest, in the retrained model's value
    order, so an id never changes meaning.

    Parameters
    ----------
    segmenter : Segmenter
        The retrained model, with first-time (value-ordered) ids.
    reference : Segmenter
        The model whose ids to keep (the promoted one).
    reference_model_id : str
        Its registry id, for the report.
    max_distance : float
        Root mean square difference per shared scaled column above which a pair is no match.
    reference_centroids : pandas.DataFrame or None
        The reference's centroids expressed in the retrained model's scaled space (see
        `centroids_in_new_space`), indexed by segment id; None takes `reference.centroids()`
        as they are, for models whose preprocessing was fitted at the same as_of.

    Returns
    -------
    SegmentMatch
    """
    ours = segmenter.centroids()
    theirs = reference.centroids() if reference_centroids is None else reference_centroids
    shared = [column for column in ours.columns if column in theirs.columns]
    distances = np.full((len(ours), len(theirs)), np.inf)
    if shared:
        difference = ours[shared].to_numpy()[:, None, :] - theirs[shared].to_numpy()[None, :, :]
        distances = np.sqrt(np.mean(difference**2, axis=2))
    rows, cols = linear_sum_assignment(np.where(np.isfinite(distances), distances, 1e9))
    pairs = {
        int(ours.index[row]): (int(theirs.index[col]), float(distances[row, col]))
        for row, col in zip(rows, cols, strict=True)
        if distances[row, col] <= max_distance
    }
    next_id = int(max(theirs.index)) + 1
    segment_of_segment, kept = {}, {}
    for segment in ours.index:  # value order: fresh ids follow it
        if int(segment) in pairs:
            stable, distance = pairs[int(segment)]
            kept[stable] = distance
        else:
            stable, next_id = next_id, next_id + 1
        segment_of_segment[int(segment)] = stable
    return SegmentMatch(
        reference_model_id=reference_model_id,
        segment_of_segment=segment_of_segment,
        distances=dict(sorted(kept.items())),
        new_ids=tuple(sorted(set(segment_of_segment.values()) - set(kept))),
        vanished_ids=tuple(int(s) for s in theirs.index if int(s) not in kept),
        n_shared_columns=len(shared),
    )


def centroids_in_new_space(
    reference: Segmenter, reference_stats: pd.DataFrame, new_stats: pd.DataFrame
) -> pd.DataFrame:
    """The reference's centroids rescaled with the retrained model's preprocessing.

    A `__scaled` column is `(x - center) / scale` with each build's own fit, so a reference
    centroid c is the point `c * scale_ref + center_ref` before scaling, and
    `(c * scale_ref + center_ref - center_new) / scale_new` after the new scaling. Columns
    without both fits are left as they are.

    Parameters
    ----------
    reference : Segmenter
        The reference model.
    reference_stats, new_stats : pandas.DataFrame
        `center` and `scale` per feature (index: the feature, without `__scaled`), of the
        feature_stats fit each model was trained with.
    """
    centroids = reference.centroids()
    for column in centroids.columns:
        feature = column.removesuffix(SCALED_SUFFIX)
        if feature in reference_stats.index and feature in new_stats.index:
            old, new = reference_stats.loc[feature], new_stats.loc[feature]
            centroids[column] = (
                centroids[column] * old["scale"] + old["center"] - new["center"]
            ) / new["scale"]
    return centroids


def carry_names(
    names: dict[int, tuple[str, str]],
    reference_names: dict[int, tuple[str, str]],
    match: SegmentMatch,
) -> dict[int, tuple[str, str]]:
    """Kept segments keep the reference's names; a new segment keeps its own unless taken.

    Parameters
    ----------
    names : dict of int to (str, str)
        `name_segments` of the retrained model, by stable id.
    reference_names : dict of int to (str, str)
        The reference model's names, by id.
    match : SegmentMatch
        The match that gave the stable ids.
    """
    carried = {segment: reference_names[segment] for segment in match.kept_ids}
    taken = {name for name, _ in carried.values()}
    for segment in match.new_ids:
        name, blurb = names[segment]
        if name in taken:
            # The reference already uses this archetype for a kept segment: the id tells
            # the two apart, and segment names stay unique.
            name = f"{name} {segment}"
        carried[segment] = (name, blurb)
        taken.add(name)
    return dict(sorted(carried.items()))


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
