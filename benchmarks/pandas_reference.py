"""The pandas reference: segmart's features computed the way a notebook seed would.

Read the raw Parquet files into DataFrames, clean them with boolean masks, ``map`` and
``drop_duplicates``, then loop over the snapshot dates and ``groupby`` the cleaned tables for each
one, ``fillna`` with the training mean, scale, and ``get_dummies`` over the levels learned from the
training rows. It is the
straightforward way, not a tuned one: string ids stay strings, every table is held in memory
whole, each snapshot re-filters and re-groups the event tables.

It produces the same rows and values as the warehouse: one row per customer per snapshot (the
``as_of`` snapshot plus the training snapshots, the set ``int_snapshot_dates`` holds), with the raw
features (``<feature>__raw``, as in ``intermediate.int_customer_snapshots_featurized``), the
preprocessed columns under the marts' names (``ml.customer_features``, ``ml.training_examples``)
and, for training rows, the label. ``benchmarks.run`` checks that equality before it compares any
time.

Cleaning mirrors the staging rules that can change a feature (see benchmarks/README.md for the
list and the simplifications). Run it as ``python -m benchmarks.pandas_reference --raw-dir DIR
--out FILE.parquet``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ml.config import dbt_var_defaults

# The training snapshots dbt builds by default (its one home: dbt_project.yml).
N_SNAPSHOTS: int = dbt_var_defaults()["n_snapshots"]
VOCABULARY_CSV = (
    Path(__file__).resolve().parent.parent / "dbt_project" / "seeds" / "controlled_vocabulary.csv"
)

# The feature catalog of dbt_project/macros/feature_catalog.sql: (name, log1p, imputable).
FEATURES: tuple[tuple[str, bool, bool], ...] = (
    ("days_since_last_order", False, True),
    ("n_orders", True, False),
    ("n_orders_30d", True, False),
    ("n_orders_90d", True, False),
    ("n_orders_365d", True, False),
    ("revenue", True, True),
    ("revenue_90d", True, True),
    ("avg_order_value", True, True),
    ("tenure_days", False, False),
    ("avg_days_between_orders", False, True),
    ("n_orders_prev_90d", True, False),
    ("order_rate_trend_90d", True, True),
    ("recency_to_gap_ratio", True, True),
    ("avg_items_per_order", True, True),
    ("n_distinct_categories", False, False),
    ("top_category_share", False, True),
    ("discount_share", False, True),
    ("cancel_rate", False, True),
    ("return_rate", False, True),
    ("n_sessions_90d", True, False),
    ("n_product_views_90d", True, False),
    ("n_add_to_cart_90d", True, False),
    ("cart_to_order_rate_90d", False, True),
    ("days_since_last_visit", False, True),
    ("n_touches_90d", True, False),
    ("open_rate_90d", False, True),
    ("click_rate_90d", False, True),
    ("age_years", False, True),
    ("income", True, True),
)
FEATURE_NAMES = tuple(name for name, _, _ in FEATURES)

# macros/feature_catalog.sql onehot_categoricals() and onehot_slots(); the levels are learned
# from the training rows (dbt_project.yml onehot_min_share, onehot_max_levels).
CATEGORICALS = ("gender", "region", "acquisition_channel")
ONEHOT_SLOTS = 8
ONEHOT_MIN_SHARE = 0.01
ONEHOT_MAX_LEVELS = 8

# dbt_project.yml vars the features depend on.
MAX_MONEY = 100_000
MAX_QUANTITY = 1_000
MIN_VALID_DATE = pd.Timestamp("1990-01-01")  # older timestamps are sentinels, not activity


@dataclass(frozen=True)
class Shop:
    """The cleaned shop: what the staging models hold, restricted to what features need."""

    customers: pd.DataFrame
    customer_versions: pd.DataFrame
    orders: pd.DataFrame
    items: pd.DataFrame
    events: pd.DataFrame
    sessions: pd.DataFrame
    touches: pd.DataFrame
    latest_activity_on: pd.Timestamp


def load_vocabulary(path: Path = VOCABULARY_CSV) -> dict[str, dict[str, str]]:
    """The controlled vocabulary seed as {field: {spelling: value}}."""
    vocabulary = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {
        field: dict(zip(rows["spelling"], rows["value"], strict=True))
        for field, rows in vocabulary.groupby("field")
    }


def _read(raw_dir: Path, table: str, columns: list[str]) -> pd.DataFrame:
    return pd.read_parquet(raw_dir / f"{table}.parquet", columns=columns)


def _spelling(values: pd.Series) -> pd.Series:
    """staging's clean_lower: trimmed, lower-cased, empty as missing."""
    cleaned = values.astype("str").str.strip().str.lower()
    return cleaned.where(cleaned != "")


def _vocabulary_value(values: pd.Series, spellings: dict[str, str]) -> pd.Series:
    """staging's vocabulary_value: the controlled value, else the cleaned spelling."""
    spelling = _spelling(values)
    return spelling.map(spellings).fillna(spelling)


def _cents(values: pd.Series) -> pd.Series:
    """decimal(18, 2) as staging casts money."""
    return values.astype("float64").round(2)


def _day(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.floor("D")


def clean_shop(raw_dir: Path, loaded_at: datetime | None = None) -> Shop:
    """Apply the staging rules that affect features: validity, orphans, dedup, vocabulary."""
    vocabulary = load_vocabulary()
    loaded_at = pd.Timestamp(loaded_at or datetime.now())

    customers = _read(
        raw_dir,
        "customers",
        [
            "customer_id",
            "created_at",
            "updated_at",
            "birth_date",
            "gender",
            "region",
            "income",
            "marketing_opt_in",
            "acquisition_channel",
        ],
    )
    customers = customers[
        customers.customer_id.notna()
        & customers.created_at.notna()
        & (customers.created_at <= loaded_at)
        & (customers.created_at >= MIN_VALID_DATE)
    ].copy()
    # A re-load with a new updated_at is a new version of the profile, in force from then on.
    customers["valid_from"] = customers.updated_at.fillna(customers.created_at)
    customers = customers.sort_values(["customer_id", "valid_from"]).drop_duplicates(
        ["customer_id", "valid_from"]
    )
    customers["gender"] = _vocabulary_value(customers.gender, vocabulary["gender"])
    customers["region"] = _vocabulary_value(customers.region, vocabulary["region"])
    customers["acquisition_channel"] = _vocabulary_value(
        customers.acquisition_channel, vocabulary["acquisition_channel"]
    )
    income = customers.income.astype("float64")
    customers["income"] = income.where((income >= 0) & (income <= 100 * MAX_MONEY))
    birth_date = pd.to_datetime(customers.birth_date)
    customers["birth_date"] = birth_date.where(
        (birth_date <= customers.created_at.dt.floor("D"))
        & (birth_date >= pd.Timestamp("1900-01-01"))
    )
    customers["is_marketing_opt_in"] = customers.marketing_opt_in.fillna(False).astype(bool)
    customer_versions = customers.drop(columns=["created_at", "updated_at", "marketing_opt_in"])
    # Population and tenure go by the latest version.
    customers = customers.drop_duplicates("customer_id", keep="last")[
        ["customer_id", "created_at"]
    ]

    orders = _read(
        raw_dir,
        "orders",
        ["order_id", "customer_id", "ordered_at", "status", "order_total", "discount_total"],
    )
    orders["status"] = _spelling(orders.status).map(vocabulary["order_status"])
    orders["order_total"] = _cents(orders.order_total)
    orders["discount_total"] = _cents(orders.discount_total).fillna(0.0)
    orders = orders.merge(
        customers[["customer_id", "created_at"]], on="customer_id", how="inner"
    )  # orphans out
    orders = orders[
        orders.order_id.notna()
        & orders.ordered_at.notna()
        & (orders.ordered_at <= loaded_at)
        & (orders.ordered_at >= MIN_VALID_DATE)
        & orders.status.notna()
        & (orders.order_total >= 0)
        & (orders.order_total <= MAX_MONEY)
        & (orders.discount_total >= 0)
        & (orders.ordered_at >= orders.created_at)
    ]
    orders = orders.sort_values(["order_id", "ordered_at"]).drop_duplicates("order_id")
    orders = orders.drop(columns=["created_at"])
    orders["ordered_on"] = orders.ordered_at.dt.floor("D")

    items = _read(raw_dir, "order_items", ["order_id", "product_id", "quantity", "unit_price"])
    items["unit_price"] = _cents(items.unit_price)
    items = items[
        items.order_id.notna()
        & items.product_id.notna()
        & (items.quantity > 0)
        & (items.quantity <= MAX_QUANTITY)
        & (items.unit_price >= 0)
        & (items.unit_price <= MAX_MONEY)
        & items.order_id.isin(orders.order_id)
    ].drop_duplicates()

    products = _read(raw_dir, "products", ["product_id", "category", "list_price"])
    list_price = _cents(products.list_price)
    products = products[
        products.product_id.notna()
        & (list_price.isna() | ((list_price >= 0) & (list_price <= MAX_MONEY)))
    ].drop_duplicates("product_id")
    products["category"] = _spelling(products.category).fillna("unknown")

    units = items.groupby("order_id", as_index=False).agg(n_units=("quantity", "sum"))
    orders = orders.merge(units, on="order_id", how="left")
    orders["has_items"] = orders.n_units.notna()
    orders["n_units"] = orders.n_units.fillna(0)

    items = items.merge(orders[["order_id", "customer_id", "ordered_on"]], on="order_id")
    items = items.merge(products[["product_id", "category"]], on="product_id", how="left")
    items["category"] = items.category.fillna("unknown")
    items = items[["customer_id", "ordered_on", "category", "quantity"]]

    events = _read(
        raw_dir, "web_events", ["event_id", "customer_id", "session_id", "event_type", "event_at"]
    )
    events["event_type"] = _spelling(events.event_type).map(vocabulary["event_type"])
    events = events[
        events.event_id.notna()
        & events.event_type.notna()
        & events.event_at.notna()
        & (events.event_at <= loaded_at)
        & (events.event_at >= MIN_VALID_DATE)
        & (events.customer_id.isna() | events.customer_id.isin(customers.customer_id))
    ]
    events = events.sort_values(["event_id", "event_at"]).drop_duplicates("event_id")
    events["event_on"] = events.event_at.dt.floor("D")
    latest_activity_on = max(orders.ordered_on.max(), events.event_on.max())
    events = events[events.customer_id.notna()][
        ["customer_id", "session_id", "event_type", "event_on"]
    ]
    # A session counts on the day it started.
    sessions = events.groupby(["customer_id", "session_id"], as_index=False, dropna=False).agg(
        started_on=("event_on", "min")
    )

    touches = _read(
        raw_dir,
        "campaign_touches",
        ["touch_id", "customer_id", "channel", "sent_at", "opened_at", "clicked_at", "is_control"],
    )
    touches["channel"] = _spelling(touches.channel).map(vocabulary["touch_channel"])
    touches = touches[
        touches.touch_id.notna()
        & touches.sent_at.notna()
        & (touches.sent_at <= loaded_at)
        & (touches.sent_at >= MIN_VALID_DATE)
        & touches.channel.notna()
        & touches.customer_id.isin(customers.customer_id)
    ]
    touches = touches.sort_values(["touch_id", "sent_at"]).drop_duplicates("touch_id")
    # Control touches were never delivered; opens and clicks count on their own day.
    touches = touches[~touches.is_control.fillna(False).astype(bool)]
    touches = pd.DataFrame(
        {
            "customer_id": touches.customer_id,
            "sent_on": _day(touches.sent_at),
            "opened_on": _day(touches.opened_at),
            "clicked_on": _day(touches.clicked_at),
        }
    )

    return Shop(
        customers=customers,
        customer_versions=customer_versions,
        orders=orders,
        items=items,
        events=events,
        sessions=sessions,
        touches=touches,
        latest_activity_on=latest_activity_on,
    )


def snapshot_dates(
    latest_activity_on: pd.Timestamp,
    as_of: date | None = None,
    horizon_days: int = 90,
    n_snapshots: int = N_SNAPSHOTS,
    step_days: int = 30,
) -> list[tuple[pd.Timestamp, bool]]:
    """The as_of snapshot and the training snapshots whose label windows end by as_of."""
    as_of_on = pd.Timestamp(as_of) if as_of else latest_activity_on + pd.Timedelta(days=1)
    training = [
        (as_of_on - pd.Timedelta(days=horizon_days + step_days * step), True)
        for step in range(n_snapshots)
    ]
    return [(as_of_on, False), *training]


def _full_years(start: pd.Series, end: pd.Timestamp) -> pd.Series:
    """DuckDB's datesub('year', start, end): whole months // 12, month ends counting as whole."""
    months = (end.year - start.dt.year) * 12 + (end.month - start.dt.month)
    short_of_a_month = (start.dt.day > end.day) & (not end.is_month_end)
    return np.floor((months - short_of_a_month) / 12)


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator capped at 1, missing where the denominator is 0 or missing."""
    return (numerator / denominator.where(denominator > 0)).clip(upper=1.0)


def features_at(shop: Shop, snapshot_on: pd.Timestamp) -> pd.DataFrame:
    """Raw features of every customer created before snapshot_on, from activity before it."""
    days = pd.Timedelta(days=1)
    population = shop.customers[shop.customers.created_at < snapshot_on]
    # The profile in force before the snapshot: the latest version written before it, if any.
    versions = shop.customer_versions[shop.customer_versions.valid_from < snapshot_on]
    profiles = versions.drop_duplicates("customer_id", keep="last").set_index("customer_id")

    orders = shop.orders[shop.orders.ordered_on < snapshot_on]
    age = (snapshot_on - orders.ordered_on).dt.days
    settled = age > 30  # a status is only trusted once the order is older than 30 days
    order_history = (
        orders.assign(
            in_30d=age <= 30,
            in_90d=age <= 90,
            in_365d=age <= 365,
            in_prev_90d=(age > 90) & (age <= 180),
            revenue_90d=orders.order_total.where(age <= 90, 0.0),
            settled=settled,
            settled_cancelled=settled & (orders.status == "cancelled"),
            settled_returned=settled & (orders.status == "returned"),
        )
        .groupby("customer_id")
        .agg(
            n_orders=("order_id", "size"),
            n_orders_30d=("in_30d", "sum"),
            n_orders_90d=("in_90d", "sum"),
            n_orders_365d=("in_365d", "sum"),
            n_orders_prev_90d=("in_prev_90d", "sum"),
            revenue=("order_total", "sum"),
            revenue_90d=("revenue_90d", "sum"),
            discount_value=("discount_total", "sum"),
            n_units=("n_units", "sum"),
            n_orders_with_items=("has_items", "sum"),
            n_settled_orders=("settled", "sum"),
            n_settled_cancelled=("settled_cancelled", "sum"),
            n_settled_returned=("settled_returned", "sum"),
            first_ordered_on=("ordered_on", "min"),
            last_ordered_on=("ordered_on", "max"),
        )
    )

    items = shop.items[shop.items.ordered_on < snapshot_on]
    units_by_category = items.groupby(["customer_id", "category"])["quantity"].sum()
    category_history = units_by_category.groupby(level="customer_id").agg(["size", "max", "sum"])

    events = shop.events[shop.events.event_on < snapshot_on]
    recent_events = events[events.event_on >= snapshot_on - 90 * days]
    sessions = shop.sessions[
        (shop.sessions.started_on < snapshot_on)
        & (shop.sessions.started_on >= snapshot_on - 90 * days)
    ]
    visit_history = pd.DataFrame(
        {
            "last_visited_on": events.groupby("customer_id").event_on.max(),
            "n_sessions_90d": sessions.groupby("customer_id").size(),
            "n_product_views_90d": (recent_events.event_type == "product_view")
            .groupby(recent_events.customer_id)
            .sum(),
            "n_add_to_cart_90d": (recent_events.event_type == "add_to_cart")
            .groupby(recent_events.customer_id)
            .sum(),
        }
    )

    window_start = snapshot_on - 90 * days
    touches = shop.touches

    def in_window(column: str) -> pd.Series:
        day = touches[column]
        return (day >= window_start) & (day < snapshot_on)

    touch_history = (
        pd.DataFrame(
            {
                "n_touches_90d": in_window("sent_on"),
                "n_opened_90d": in_window("opened_on"),
                "n_clicked_90d": in_window("clicked_on"),
            }
        )
        .groupby(touches.customer_id)
        .sum()
    )

    frame = (
        population.set_index("customer_id")
        .join(profiles.drop(columns="valid_from"))
        .join(order_history)
        .join(category_history)
        .join(visit_history)
        .join(touch_history)
    )
    n_orders = frame.n_orders.fillna(0)
    n_orders_90d = frame.n_orders_90d.fillna(0)
    n_add_to_cart_90d = frame.n_add_to_cart_90d.fillna(0)
    n_touches_90d = frame.n_touches_90d.fillna(0)
    tenure_days = (snapshot_on - frame.created_at.dt.floor("D")).dt.days
    days_ordering = (frame.last_ordered_on - frame.first_ordered_on).dt.days
    features = pd.DataFrame(
        {
            "snapshot_on": snapshot_on,
            "days_since_last_order": (snapshot_on - frame.last_ordered_on).dt.days,
            "n_orders": n_orders,
            "n_orders_30d": frame.n_orders_30d.fillna(0),
            "n_orders_90d": n_orders_90d,
            "n_orders_365d": frame.n_orders_365d.fillna(0),
            "revenue": frame.revenue.fillna(0.0),
            "revenue_90d": frame.revenue_90d.fillna(0.0),
            "avg_order_value": frame.revenue / frame.n_orders,
            "tenure_days": tenure_days,
            "avg_days_between_orders": (days_ordering / (frame.n_orders - 1)).where(
                frame.n_orders >= 2
            ),
            "n_orders_prev_90d": frame.n_orders_prev_90d.fillna(0),
            "order_rate_trend_90d": (n_orders_90d / np.minimum(tenure_days, 90))
            / (frame.n_orders / tenure_days),
            "recency_to_gap_ratio": (
                (snapshot_on - frame.last_ordered_on).dt.days
                * (frame.n_orders - 1)
                / days_ordering.where(days_ordering > 0)
            ).where(frame.n_orders >= 2),
            "avg_items_per_order": frame.n_units
            / frame.n_orders_with_items.where(frame.n_orders_with_items != 0),
            "n_distinct_categories": frame["size"].fillna(0),
            "top_category_share": frame["max"] / frame["sum"].where(frame["sum"] != 0),
            "discount_share": frame.discount_value
            / (frame.revenue + frame.discount_value).where(
                frame.revenue + frame.discount_value != 0
            ),
            "cancel_rate": frame.n_settled_cancelled
            / frame.n_settled_orders.where(frame.n_settled_orders != 0),
            "return_rate": frame.n_settled_returned
            / frame.n_settled_orders.where(frame.n_settled_orders != 0),
            "n_sessions_90d": frame.n_sessions_90d.fillna(0),
            "n_product_views_90d": frame.n_product_views_90d.fillna(0),
            "n_add_to_cart_90d": n_add_to_cart_90d,
            "cart_to_order_rate_90d": _rate(n_orders_90d, n_add_to_cart_90d),
            "days_since_last_visit": (snapshot_on - frame.last_visited_on).dt.days,
            "n_touches_90d": n_touches_90d,
            "open_rate_90d": _rate(frame.n_opened_90d.fillna(0), n_touches_90d),
            "click_rate_90d": _rate(frame.n_clicked_90d.fillna(0), n_touches_90d),
            "age_years": _full_years(frame.birth_date, snapshot_on),
            "income": frame.income,
        },
        index=frame.index,
    )
    features[list(FEATURE_NAMES)] = features[list(FEATURE_NAMES)].astype("float64")
    features["gender"] = frame.gender.fillna("unknown")
    features["region"] = frame.region.fillna("unknown")
    features["acquisition_channel"] = frame.acquisition_channel.fillna("unknown")
    features["is_marketing_opt_in"] = frame.is_marketing_opt_in.fillna(False).astype(bool)
    return features.reset_index()


def labels_at(shop: Shop, snapshot_on: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """Non-cancelled orders in [snapshot_on, snapshot_on + horizon_days)."""
    orders = shop.orders[
        (shop.orders.ordered_on >= snapshot_on)
        & (shop.orders.ordered_on < snapshot_on + pd.Timedelta(days=horizon_days))
        & (shop.orders.status != "cancelled")
    ]
    return orders.groupby("customer_id").agg(
        n_purchases=("order_id", "size"), revenue_in_horizon=("order_total", "sum")
    )


def preprocess(features: pd.DataFrame) -> pd.DataFrame:
    """Impute with the training mean, log1p, z-score, one-hot: fitted on the training rows."""
    training = features[features.is_training]
    columns: dict[str, pd.Series] = {}
    for name, log1p, imputable in FEATURES:
        impute = training[name].mean()
        imputed = features[name].fillna(0.0 if np.isnan(impute) else impute)
        transformed = np.log1p(imputed) if log1p else imputed
        fitted = transformed[features.is_training]
        center, scale = fitted.mean(), fitted.std(ddof=0)
        if np.isnan(scale) or scale == 0:
            scale = 1.0
        columns[name] = imputed
        columns[f"{name}__scaled"] = (transformed - center) / scale
        if imputable:
            columns[f"{name}_was_missing"] = features[name].isna()
    preprocessed = pd.DataFrame(columns, index=features.index)
    dummies = []
    for categorical in CATEGORICALS:
        # Levels with at least the minimum share of training rows, the most frequent first
        # (ties: the later level in code-point order), at most ONEHOT_MAX_LEVELS; the rest other.
        counts = training[categorical].value_counts()
        counts = counts[counts >= len(training) * ONEHOT_MIN_SHARE]
        ranked = sorted(sorted(counts.index, reverse=True), key=lambda level: -counts[level])
        levels = ranked[:ONEHOT_MAX_LEVELS]
        slots = [f"level_{slot}" for slot in range(1, ONEHOT_SLOTS + 1)]
        slot_of = dict(zip(levels, slots, strict=False))
        values = features[categorical].map(slot_of).fillna("other")
        dummies.append(
            pd.get_dummies(
                pd.Categorical(values, categories=[*slots, "other"]),
                prefix=categorical,
                prefix_sep="__",
                dtype="int32",
            ).set_index(features.index)
        )
    raw = features.rename(
        columns={
            column: f"{column}__raw"
            for column in [*FEATURE_NAMES, *CATEGORICALS, "is_marketing_opt_in"]
        }
    )
    opt_in = features.is_marketing_opt_in.astype("int32").rename("is_marketing_opt_in")
    return pd.concat([raw, preprocessed, *dummies, opt_in], axis=1)


def compute(
    raw_dir: Path,
    as_of: date | None = None,
    horizon_days: int = 90,
    n_snapshots: int = N_SNAPSHOTS,
    step_days: int = 30,
    loaded_at: datetime | None = None,
) -> pd.DataFrame:
    """One row per customer per snapshot: raw features, preprocessed features, labels."""
    shop = clean_shop(raw_dir, loaded_at)
    frames = []
    for snapshot_on, is_training in snapshot_dates(
        shop.latest_activity_on, as_of, horizon_days, n_snapshots, step_days
    ):
        features = features_at(shop, snapshot_on)
        features.insert(2, "is_training", is_training)
        features.insert(3, "label_ends_on", snapshot_on + pd.Timedelta(days=horizon_days))
        if is_training:
            labels = labels_at(shop, snapshot_on, horizon_days)
            joined = features.join(labels, on="customer_id")
            features["purchased_in_horizon"] = joined.n_purchases.fillna(0) > 0
            features["revenue_in_horizon"] = joined.revenue_in_horizon.fillna(0.0)
        else:
            features["purchased_in_horizon"] = pd.NA
            features["revenue_in_horizon"] = np.nan
        frames.append(features)
    features = pd.concat(frames, ignore_index=True)
    features["purchased_in_horizon"] = features.purchased_in_horizon.astype("boolean")
    return preprocess(features)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="Parquet file to write.")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--n-snapshots", type=int, default=N_SNAPSHOTS)
    parser.add_argument("--snapshot-step-days", type=int, default=30)
    args = parser.parse_args(argv)
    result = compute(
        args.raw_dir, args.as_of, args.horizon_days, args.n_snapshots, args.snapshot_step_days
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
