"""Plausible stand-ins for the ML step's write-back tables (schema `predictions`).

They let the marketing marts, the exports and the report be built and tested without training a
model: same table names and columns as `ml.serving.scoring` writes, values derived from the
features so that they behave like real scores (recent, frequent buyers score high). Also
runnable on a dev warehouse: ``python -m tests.marketing.fake_predictions path/to/segmart.duckdb``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

FAKE_MODEL_ID = "fake-20251001-000000"

_SCORES = f"""
create or replace table predictions.customer_scores as
with scored as (
    select
        customer_id,
        as_of,
        1 / (1 + exp(-(
            -2.2
            + 1.1 * ln(1 + n_orders_90d)
            + 0.5 * ln(1 + n_orders_365d)
            - 0.006 * least(days_since_last_order, 400)
            + 0.002 * least(n_sessions_90d, 200)
            + 0.3 * (hash(customer_id) % 1000 / 1000.0 - 0.5)
        ))) as purchase_probability,
        case
            when n_orders = 0 then 4
            when revenue >= 1500 and days_since_last_order <= 120 then 0
            when discount_share >= 0.15 then 1
            when days_since_last_order > 240 then 3
            else 2
        end as segment_id,
        n_orders > 0 as has_purchased,
        avg_order_value,
    from ml.customer_features
),
valued as (
    select
        *,
        case when has_purchased then 1.5 * purchase_probability end as expected_orders,
        case when has_purchased then 1.5 * purchase_probability * avg_order_value end
            as predicted_revenue,
    from scored
)
select
    customer_id,
    as_of,
    '{FAKE_MODEL_ID}' as model_id,
    purchase_probability,
    cast(ntile(10) over (order by purchase_probability desc, customer_id) as integer)
        as propensity_decile,
    cast(segment_id as integer) as segment_id,
    ['Loyal high spenders', 'Bargain hunters', 'Occasional buyers', 'Dormant',
     'Browsers without orders'][segment_id + 1] as segment_name,
    'n_orders_90d' as reason_1,
    'days_since_last_order' as reason_2,
    'n_sessions_90d' as reason_3,
    expected_orders,
    case when has_purchased then least(1.0, 0.3 + purchase_probability) end
        as probability_alive,
    predicted_revenue,
    case when predicted_revenue is not null then cast(ntile(10) over (
        partition by predicted_revenue is null order by predicted_revenue desc, customer_id
    ) as integer) end as predicted_revenue_decile,
    3.5 * predicted_revenue as predicted_clv,
from valued
"""

_PROFILES = f"""
create or replace table predictions.segment_profiles as
select
    scores.segment_id,
    any_value(scores.segment_name) as segment_name,
    'A stand-in segment for development' as description,
    count(*) as n_customers,
    count(*) / sum(count(*)) over () as share,
    avg(scores.purchase_probability) as mean_purchase_probability,
    sum(features.revenue) / sum(sum(features.revenue)) over () as revenue_share,
    avg(features.days_since_last_order) as mean_days_since_last_order,
    avg(features.n_orders) as mean_n_orders,
    avg(features.revenue) as mean_revenue,
    avg(features.avg_order_value) as mean_avg_order_value,
    avg(features.discount_share) as mean_discount_share,
    avg(features.n_sessions_90d) as mean_n_sessions_90d,
    avg(features.tenure_days) as mean_tenure_days,
    '{FAKE_MODEL_ID}' as model_id,
    any_value(scores.as_of) as as_of,
from predictions.customer_scores as scores
inner join ml.customer_features as features
    on scores.customer_id = features.customer_id
group by scores.segment_id
"""

_DRIFT = f"""
create or replace table predictions.feature_drift as
select
    feature,
    psi,
    psi > 0.2 as is_drifted,
    '{FAKE_MODEL_ID}' as model_id,
    (select max(as_of) from ml.customer_features) as as_of,
from (values
    ('days_since_last_order', 0.04), ('n_orders', 0.02), ('n_orders_90d', 0.08),
    ('revenue', 0.03), ('revenue_90d', 0.11), ('n_sessions_90d', 0.27), ('income', 0.01)
) as drift (feature, psi)
"""

_RUNS = f"""
create or replace table predictions.model_runs as
select
    '{FAKE_MODEL_ID}' as model_id,
    timestamp '2025-10-01 00:00:00' as trained_at,
    'fake' as algorithm,
    (select max(as_of) from ml.customer_features) as as_of,
    0.78 as roc_auc,
    0.55 as pr_auc,
    2.6 as lift_top_decile,
    0.26 as capture_top_decile,
    0.17 as brier
"""


def write_fake_predictions(con: duckdb.DuckDBPyConnection) -> None:
    """Create the four `predictions` tables from `ml.customer_features` on an open connection."""
    con.execute("create schema if not exists predictions")
    for statement in (_SCORES, _PROFILES, _DRIFT, _RUNS):
        con.execute(statement)


def main(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        write_fake_predictions(con)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
