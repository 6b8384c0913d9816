"""Synthetic feature marts shaped like dbt's, for fast unit tests of ml/ (no dbt run).

Each customer has a latent activity level; the raw features and the purchase label both
follow it, so a model has something to learn and the naive baselines do worse than a model.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from threadpoolctl import threadpool_limits

from ml import warehouse
from ml.config import Settings
from ml.modelling.examples import Examples

FEATURES = (
    "days_since_last_order",
    "n_orders",
    "n_orders_30d",
    "n_orders_90d",
    "n_orders_365d",
    "revenue",
    "revenue_90d",
    "avg_order_value",
    "tenure_days",
    "avg_days_between_orders",
    "avg_items_per_order",
    "n_distinct_categories",
    "top_category_share",
    "discount_share",
    "cancel_rate",
    "return_rate",
    "n_sessions_90d",
    "n_product_views_90d",
    "n_add_to_cart_90d",
    "cart_to_order_rate_90d",
    "days_since_last_visit",
    "n_touches_90d",
    "open_rate_90d",
    "click_rate_90d",
    "age_years",
    "income",
)
IMPUTABLE = {
    "days_since_last_order",
    "revenue",
    "revenue_90d",
    "avg_order_value",
    "avg_days_between_orders",
    "avg_items_per_order",
    "top_category_share",
    "discount_share",
    "cancel_rate",
    "return_rate",
    "cart_to_order_rate_90d",
    "days_since_last_visit",
    "open_rate_90d",
    "click_rate_90d",
    "age_years",
    "income",
}
LEVELS = {
    "gender": ("female", "male", "unknown"),
    "region": ("bavaria", "île-de-france", "lombardia", "catalonia", "north", "unknown"),
    "acquisition_channel": ("organic", "paid_search", "social", "referral", "email"),
}
"""Levels learned per categorical, most frequent first: slot i of the marts holds the i-th."""
N_SLOTS = 8  # macros/feature_catalog.sql onehot_slots()
AS_OF = date(2025, 10, 1)
HORIZON = 90
STATS_ID = "stats-abc123"


@pytest.fixture(autouse=True)
def single_threaded():
    """Run each test with one OpenMP/BLAS thread (import it into a test module to use it).

    Test workers share two cores; OpenMP threads spin while waiting for each other and slow
    oversubscribed cores down by 10x and more.
    """
    with threadpool_limits(limits=1):
        yield


def _raw_features(activity: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(activity)
    orders = rng.poisson(np.exp(1.2 + activity))
    never = orders == 0
    recency = np.where(never, np.nan, np.exp(4.0 - activity + rng.normal(0, 0.5, n)))
    values = {
        "days_since_last_order": recency,
        "n_orders": orders.astype(float),
        "n_orders_30d": rng.poisson(np.exp(activity - 1.5)).astype(float),
        "n_orders_90d": rng.poisson(np.exp(activity - 0.5)).astype(float),
        "n_orders_365d": rng.poisson(np.exp(activity + 0.8)).astype(float),
        "revenue": orders * rng.gamma(4.0, 25.0, n),
        "revenue_90d": rng.poisson(np.exp(activity - 0.5)) * rng.gamma(4.0, 25.0, n),
        "avg_order_value": np.where(never, np.nan, rng.gamma(4.0, 25.0, n)),
        "tenure_days": rng.integers(1, 600, n).astype(float),
        "avg_days_between_orders": np.where(orders < 2, np.nan, rng.gamma(2.0, 20.0, n)),
        "avg_items_per_order": np.where(never, np.nan, rng.gamma(2.0, 1.5, n)),
        "n_distinct_categories": np.minimum(orders, rng.integers(1, 8, n)).astype(float),
        "top_category_share": np.where(never, np.nan, rng.uniform(0.2, 1.0, n)),
        "discount_share": np.where(never, np.nan, rng.beta(1, 8, n)),
        "cancel_rate": np.where(never, np.nan, rng.beta(1, 15, n)),
        "return_rate": np.where(never, np.nan, rng.beta(1, 15, n)),
        "n_sessions_90d": rng.poisson(np.exp(activity)).astype(float),
        "n_product_views_90d": rng.poisson(np.exp(activity + 1)).astype(float),
        "n_add_to_cart_90d": rng.poisson(np.exp(activity)).astype(float),
        "cart_to_order_rate_90d": rng.uniform(0, 1, n),
        "days_since_last_visit": np.exp(3.5 - activity + rng.normal(0, 0.5, n)),
        "n_touches_90d": rng.poisson(1.0, n).astype(float),
        "open_rate_90d": rng.uniform(0, 1, n),
        "click_rate_90d": rng.uniform(0, 1, n),
        "age_years": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(40, 12, n)),
        "income": rng.lognormal(10.7, 0.4, n),
    }
    return values


def _preprocess(raw: dict[str, np.ndarray], stats: dict[str, tuple[float, float, float]]) -> dict:
    columns: dict[str, pa.Array] = {}
    for feature in FEATURES:
        values = raw[feature]
        impute, center, scale = stats[feature]
        imputed = np.where(np.isnan(values), impute, values)
        columns[feature] = pa.array(imputed, pa.float64())
        columns[f"{feature}__scaled"] = pa.array((imputed - center) / scale, pa.float64())
        if feature in IMPUTABLE:
            columns[f"{feature}_was_missing"] = pa.array(np.isnan(values))
    return columns


def _one_hot(n: int, rng: np.random.Generator) -> dict[str, pa.Array]:
    """Slot columns as dbt writes them: the learned levels, empty slots all 0, then other."""
    columns = {}
    for categorical, levels in LEVELS.items():
        chosen = rng.integers(0, len(levels) + 1, n)  # len(levels): a level not learned
        for slot in range(1, N_SLOTS + 1):
            hot = (chosen == slot - 1) & (slot <= len(levels))
            columns[f"{categorical}__level_{slot}"] = pa.array(hot.astype(np.int32))
        columns[f"{categorical}__other"] = pa.array((chosen == len(levels)).astype(np.int32))
    columns["is_marketing_opt_in"] = pa.array(rng.integers(0, 2, n).astype(np.int32))
    return columns


def _fit_stats(raw: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float]]:
    stats = {}
    for feature in FEATURES:
        values = raw[feature]
        impute = float(np.nanmean(values))
        imputed = np.where(np.isnan(values), impute, values)
        stats[feature] = (impute, float(imputed.mean()), float(imputed.std()) or 1.0)
    return stats


def synthetic_marts(
    n_customers: int = 800,
    n_snapshots: int = 3,
    seed: int = 0,
    buy_rate_shift: float = 0.0,
    stats_id: str = STATS_ID,
    one_cohort: bool = False,
) -> tuple[pa.Table, pa.Table]:
    """`ml.training_examples` and `ml.customer_features` for synthetic customers.

    Parameters
    ----------
    n_customers : int
        Customers per snapshot (the same customers in every snapshot).
    n_snapshots : int
        Training snapshots, 30 days apart; the latest ends its label window at `AS_OF`.
    seed : int
        Random seed.
    buy_rate_shift : float
        Added to the purchase log-odds: very negative or positive values make one class rare.
    stats_id : str
        The feature_stats_id stamped on both marts.
    one_cohort : bool
        Every customer signed up in the same three weeks, 400 to 420 days before `AS_OF`: the
        tenures of the scoring snapshot are then all above those of any training snapshot.

    Returns
    -------
    (pyarrow.Table, pyarrow.Table)
        Training examples and as_of customer features, with the dbt marts' column names,
        order and types.
    """
    rng = np.random.default_rng(seed)
    customer_ids = np.array([f"C{i:07d}" for i in range(n_customers)])
    level = rng.normal(0, 1, n_customers)
    snapshots = [
        AS_OF - timedelta(days=HORIZON + 30 * step) for step in reversed(range(n_snapshots))
    ]
    raws = [_raw_features(level + rng.normal(0, 0.3, n_customers), rng) for _ in snapshots]
    signed_up_days_before_as_of = rng.integers(400, 421, n_customers) if one_cohort else None
    if one_cohort:
        for raw, snapshot in zip(raws, snapshots, strict=True):
            days_before = (AS_OF - snapshot).days
            raw["tenure_days"] = (signed_up_days_before_as_of - days_before).astype(float)
    stacked = {f: np.concatenate([raw[f] for raw in raws]) for f in FEATURES}
    stats = _fit_stats(stacked)
    activity = np.tile(level, n_snapshots) + rng.normal(0, 0.6, n_customers * n_snapshots)
    bought = rng.uniform(size=len(activity)) < 1 / (1 + np.exp(-(2 * activity + buy_rate_shift)))
    n_rows = n_customers * n_snapshots
    revenue = bought * rng.gamma(2.0, 60.0, n_rows) * np.exp(0.5 * np.tile(level, n_snapshots))
    snapshot_on = np.repeat(np.array(snapshots, dtype="datetime64[D]"), n_customers)
    training = pa.table(
        {
            "customer_id": pa.array(np.tile(customer_ids, n_snapshots)),
            "snapshot_on": pa.array(snapshot_on, pa.date32()),
            "label_ends_on": pa.array(snapshot_on + HORIZON, pa.date32()),
            "purchased_in_horizon": pa.array(bought),
            "revenue_in_horizon": pa.array(revenue),
            "feature_stats_fitted_as_of": pa.array([AS_OF] * n_rows, pa.date32()),
            "feature_stats_id": pa.array([stats_id] * n_rows),
            **_preprocess(stacked, stats),
            **_one_hot(n_rows, rng),
        }
    )
    current = _raw_features(level + rng.normal(0, 0.3, n_customers), rng)
    if one_cohort:
        current["tenure_days"] = signed_up_days_before_as_of.astype(float)
    features = pa.table(
        {
            "customer_id": pa.array(customer_ids),
            "as_of": pa.array([AS_OF] * n_customers, pa.date32()),
            "feature_stats_fitted_as_of": pa.array([AS_OF] * n_customers, pa.date32()),
            "feature_stats_id": pa.array([stats_id] * n_customers),
            **_preprocess(current, stats),
            **_one_hot(n_customers, rng),
        }
    )
    return training, features


def synthetic_value_inputs(
    n_customers: int = 800, n_snapshots: int = 3, seed: int = 0, repeat_rate: float = 1.0
) -> pa.Table:
    """`ml.customer_value_inputs` for the customers of `synthetic_marts` (same arguments).

    Purchase days follow each customer's activity level (the one behind their labels) as a
    Poisson process from a first purchase up to 600 days before `AS_OF`; after each repeat
    purchase a customer drops out with a chance of their own (Beta(2, 10)); one customer in
    eight never buys. `repeat_rate` scales the rate (0 leaves no repeat buyer). Rows for every
    training snapshot and for `AS_OF`.
    """
    level = np.random.default_rng(seed).normal(0, 1, n_customers)  # as in synthetic_marts
    rng = np.random.default_rng(seed + 1)
    snapshots = [AS_OF - timedelta(days=HORIZON + 30 * k) for k in reversed(range(n_snapshots))]
    snapshots.append(AS_OF)
    histories = []
    for customer_level in level:
        if rng.uniform() < 1 / 8:
            histories.append((np.array([], dtype=np.int64), np.array([])))
            continue
        first = -int(rng.integers(200, 600))
        rate = 0.01 * repeat_rate * np.exp(1.5 * customer_level)
        gaps = rng.exponential(1 / rate, 60) if repeat_rate > 0 else []
        days = first + np.cumsum(np.concatenate([[0.0], gaps]))
        n_kept = 1 + min(int(rng.geometric(rng.beta(2.0, 10.0))), len(days) - 1)
        days = np.unique(np.floor(np.asarray(days[:n_kept])).astype(np.int64))
        # Gamma-Gamma's spend: Gamma(3, rate nu) per purchase, nu ~ Gamma(4, rate 60).
        histories.append((days, rng.gamma(3.0, 1 / rng.gamma(4.0, 1 / 60.0), len(days))))
    rows = []
    for snapshot in snapshots:
        cutoff = (snapshot - AS_OF).days
        for index, (days, values) in enumerate(histories):
            before = days < cutoff
            row = {
                "customer_id": f"C{index:07d}",
                "snapshot_on": snapshot,
                "is_training": snapshot != AS_OF,
                "frequency": None,
                "recency_days": None,
                "t_days": None,
                "mean_repeat_spend": None,
                "has_purchased": bool(before.any()),
                "first_purchased_on": None,
                "last_purchased_on": None,
            }
            if before.any():
                seen, spent = days[before], values[before]
                row.update(
                    frequency=len(seen) - 1,
                    recency_days=int(seen[-1] - seen[0]),
                    t_days=int(cutoff - seen[0]),
                    mean_repeat_spend=float(spent[1:].mean()) if len(seen) > 1 else None,
                    first_purchased_on=AS_OF + timedelta(days=int(seen[0])),
                    last_purchased_on=AS_OF + timedelta(days=int(seen[-1])),
                )
            rows.append(row)
    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("snapshot_on", pa.date32()),
            ("is_training", pa.bool_()),
            ("frequency", pa.int32()),
            ("recency_days", pa.int32()),
            ("t_days", pa.int32()),
            ("mean_repeat_spend", pa.float64()),
            ("has_purchased", pa.bool_()),
            ("first_purchased_on", pa.date32()),
            ("last_purchased_on", pa.date32()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def feature_stats_levels(fitted_as_of: date = AS_OF) -> pa.Table:
    """The `onehot_level` rows of `ml.feature_stats` behind the synthetic one-hot slots."""
    rows = [
        {"fitted_as_of": fitted_as_of, "feature": c, "kind": "onehot_level", "level": level,
         "slot": slot}
        for c, levels in LEVELS.items()
        for slot, level in enumerate(levels, start=1)
    ] + [
        {"fitted_as_of": fitted_as_of, "feature": c, "kind": "onehot_level", "level": None,
         "slot": None}
        for c in LEVELS
    ]  # fmt: skip
    schema = pa.schema(
        [
            ("fitted_as_of", pa.date32()),
            ("feature", pa.string()),
            ("kind", pa.string()),
            ("level", pa.string()),
            ("slot", pa.int32()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def write_warehouse(path: Path, tables: dict[str, pa.Table]) -> Path:
    """Create (or replace) the given schema.table tables in a DuckDB file; return its path."""
    with warehouse.connect(path) as con:
        warehouse.replace_tables(con, tables)
    return path


def synthetic_warehouse(path: Path, repeat_rate: float = 1.0, **options: object) -> Path:
    """A warehouse holding synthetic `ml.training_examples`, `ml.customer_features` and
    `ml.customer_value_inputs` (`repeat_rate` scales the repeat purchases of the latter)."""
    training, features = synthetic_marts(**options)
    shape = {k: options[k] for k in ("n_customers", "n_snapshots", "seed") if k in options}
    return write_warehouse(
        path,
        {
            "ml.training_examples": training,
            "ml.customer_features": features,
            "ml.feature_stats": feature_stats_levels(),
            "ml.customer_value_inputs": synthetic_value_inputs(**shape, repeat_rate=repeat_rate),
        },
    )


def settings_for(directory: Path) -> Settings:
    """Settings pointing at a warehouse and models directory inside `directory`."""
    return Settings(
        warehouse=directory / "warehouse.duckdb",
        models_dir=directory / "models",
        reports_dir=directory / "reports",
        as_of=None,
        horizon_days=HORIZON,
    )


def table_names(path: Path) -> set[str]:
    """schema.table of every table in a warehouse file."""
    with warehouse.connect(path, read_only=True) as con:
        rows = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
        ).fetchall()
    return {row[0] for row in rows}


def examples_from(training: pa.Table) -> Examples:
    """Examples from a synthetic training table, with the customer folds `train` reads."""
    # The lowest bit of the md5, as DuckDB's md5_number(customer_id) & 1 in training.py.
    folds = [hashlib.md5(c.encode()).digest()[0] & 1 for c in training["customer_id"].to_pylist()]
    return Examples.from_arrow(training.append_column("customer_fold", pa.array(folds, pa.int8())))
