"""Segment names and descriptions: archetypes fitted to profiles, and the report section."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.modelling.evaluate import markdown_table


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
