{#- Incremental on DuckDB: a run re-aggregates only the customer-days whose orders or lines
    were staged again since it last ran (macros/incremental_aggregates.sql). -#}
{% set staging_models = ['stg_shop__orders', 'stg_shop__order_items'] %}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_customers_to_reaggregate(" ~ staging_models ~ ") }}",
    post_hook="{{ record_reaggregated() }}"
) }}

with

orders as (

    select staged_orders.* from {{ ref('stg_shop__orders') }} as staged_orders
    where {{ customers_to_reaggregate(
        'staged_orders.customer_id', 'staged_orders.ordered_on', staging_models
    ) }}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}
    {%- if is_incremental() %}
    where order_id in (select order_id from orders)
    {%- endif %}

),

units_per_order as (

    select
        order_id,
        sum(quantity) as n_units
    from order_items
    group by order_id

),

-- Features see placed orders whatever their status: the status is known only later (raw data
-- carries no status timestamp), so status-based counts are kept apart for labels and for
-- settled cancel/return rates.
aggregated_to_customer_days as (

    select
        orders.customer_id,
        orders.ordered_on as activity_on,
        count(*) as n_orders,
        sum(orders.order_total) as order_value,
        sum(orders.discount_total) as discount_value,
        coalesce(sum(units_per_order.n_units), 0) as n_units,
        count(units_per_order.order_id) as n_orders_with_items,
        count(*) filter (where orders.status = 'cancelled') as n_cancelled,
        count(*) filter (where orders.status = 'returned') as n_returned,
        count(*) filter (where orders.is_counted_purchase) as n_purchases,
        coalesce(sum(orders.order_total) filter (where orders.is_counted_purchase), 0)
            as purchase_value
    from orders
    left join units_per_order
        on orders.order_id = units_per_order.order_id
    group by orders.customer_id, orders.ordered_on

)

select * from aggregated_to_customer_days
