{#- Incremental on DuckDB: a build rewrites the orders whose row or lines staging rewrote in
    the same build (macros/incremental_marts.sql). Its contract is what BI reads: a changed
    schema fails the build until --full-refresh. -#}
{% set staging_models = ['stg_shop__orders', 'stg_shop__order_items'] %}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_keys_to_rewrite(" ~ staging_models ~ ", 'order_id') }}"
) }}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}
    where {{ keys_to_rewrite('order_id', staging_models) }}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}
    where {{ keys_to_rewrite('order_id', staging_models) }}

),

items_per_order as (

    select
        order_id,
        count(*) as n_lines,
        sum(quantity) as n_units
    from order_items
    group by order_id

),

final as (

    select
        -- ids
        orders.order_id,
        orders.customer_id,

        -- strings
        orders.status,
        orders.channel,

        -- numerics
        orders.order_total,
        orders.discount_total,
        coalesce(items_per_order.n_lines, 0) as n_lines,
        cast(coalesce(items_per_order.n_units, 0) as bigint) as n_units,

        -- booleans
        orders.is_counted_purchase,

        -- dates and timestamps
        orders.ordered_at,
        orders.ordered_on

    from orders
    left join items_per_order
        on orders.order_id = items_per_order.order_id

)

select * from final
