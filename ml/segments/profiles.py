"""Segment profiles: per-segment sums of the raw profile features, exact and order-free."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import duckdb
import numpy as np
import pandas as pd

from ml.modelling.features import MISSING_SUFFIX

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
