{#- Lifecycle thresholds in days since the last order (see _marketing__models.yml). -#}
{%- set active_days = var('lifecycle_active_days') | int -%}
{%- set lapsed_days = var('lifecycle_lapsed_days') | int -%}

with

customer_features as (

    select * from {{ ref('customer_features') }}

),

-- customer_features imputes recency for customers without orders; n_orders is never imputed,
-- so it alone says who has bought before as_of.
buyers as (

    select
        customer_id,
        as_of,
        days_since_last_order,
        n_orders,
        n_orders_90d,
        revenue,
        tenure_days
    from customer_features
    where n_orders > 0

),

-- A quintile of the rank, not ntile(): equal values share a score whatever the row order, so two
-- customers with the same history never land in different cells. Integers, so that rfm_cell
-- reads '545' (floor() is a double on DuckDB).
scored as (

    select
        *,
        cast(1 + floor(
            5 * (rank() over (order by days_since_last_order desc) - 1) / count(*) over ()
        ) as integer) as recency_score,
        cast(
            1 + floor(5 * (rank() over (order by n_orders) - 1) / count(*) over ()) as integer
        ) as frequency_score,
        cast(
            1 + floor(5 * (rank() over (order by revenue) - 1) / count(*) over ()) as integer
        ) as monetary_score
    from buyers

),

-- The usual recency x frequency grid; every one of the 25 cells belongs to exactly one group.
grouped as (

    select
        *,
        case
            when recency_score = 5 and frequency_score >= 4 then 'Champions'
            when recency_score >= 3 and frequency_score >= 4 then 'Loyal'
            when recency_score >= 4 and frequency_score >= 2 then 'Potential loyalists'
            when recency_score = 5 then 'New'
            when recency_score = 4 then 'Promising'
            when recency_score = 3 and frequency_score = 3 then 'Need attention'
            when recency_score = 3 then 'About to sleep'
            when frequency_score = 5 then {{ string_literal("Can't lose them") }}
            when frequency_score >= 3 then 'At risk'
            when recency_score = 1 and frequency_score = 1 then 'Lost'
            else 'Hibernating'
        end as rfm_group
    from scored

),

with_prospects as (

    select
        customer_features.customer_id,
        customer_features.as_of,
        grouped.days_since_last_order,
        customer_features.n_orders,
        customer_features.n_orders_90d,
        customer_features.revenue,
        customer_features.tenure_days,
        grouped.recency_score,
        grouped.frequency_score,
        grouped.monetary_score,
        coalesce(grouped.rfm_group, 'No orders yet') as rfm_group
    from customer_features
    left join grouped
        on customer_features.customer_id = grouped.customer_id

),

staged as (

    select
        *,
        case
            when n_orders = 0 then 'prospect'
            when monetary_score = 5 and frequency_score >= 4
                and days_since_last_order <= {{ lapsed_days }} then 'vip'
            when n_orders_90d = n_orders then 'new'
            when days_since_last_order <= {{ active_days }} then 'active'
            when days_since_last_order <= {{ lapsed_days }} then 'lapsing'
            else 'lapsed'
        end as lifecycle_stage
    from with_prospects

),

final as (

    select
        -- ids
        customer_id,

        -- strings
        cast(recency_score as {{ dbt.type_string() }})
        || cast(frequency_score as {{ dbt.type_string() }})
        || cast(monetary_score as {{ dbt.type_string() }}) as rfm_cell,
        rfm_group,
        lifecycle_stage,

        -- numerics
        cast(recency_score as integer) as recency_score,
        cast(frequency_score as integer) as frequency_score,
        cast(monetary_score as integer) as monetary_score,
        cast(days_since_last_order as integer) as days_since_last_order,
        cast(n_orders as integer) as n_orders,
        cast(n_orders_90d as integer) as n_orders_90d,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(tenure_days as integer) as tenure_days,

        -- dates
        as_of

    from staged

)

select * from final
