{#- Incremental on DuckDB: a run re-aggregates only the customer-days whose orders or lines
    were staged again since it last ran, and every customer when the products file changed: a
    product's category may have (macros/incremental_aggregates.sql). -#}
{% set staging_models = ['stg_shop__orders', 'stg_shop__order_items'] %}
{% set products_changed = raw_files_changed_since_read('products') %}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_customers_to_reaggregate(" ~ staging_models
        ~ ", raw_files_changed_since_read('products')) }}",
    post_hook=[
        "{{ record_reaggregated() }}",
        "{{ record_loaded_files(['products']) }}",
    ]
) }}

with

orders as (

    select staged_orders.* from {{ ref('stg_shop__orders') }} as staged_orders
    where {{ customers_to_reaggregate(
        'staged_orders.customer_id', 'staged_orders.ordered_on', staging_models, products_changed
    ) }}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}
    {%- if is_incremental() %}
    where order_id in (select order_id from orders)
    {%- endif %}

),

products as (

    select * from {{ ref('stg_shop__products') }}

),

aggregated_to_customer_day_categories as (

    select
        orders.customer_id,
        orders.ordered_on as activity_on,
        coalesce(products.category, 'unknown') as category,
        sum(order_items.quantity) as n_units,
        sum(order_items.line_total) as line_total
    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    left join products
        on order_items.product_id = products.product_id
    group by orders.customer_id, orders.ordered_on, coalesce(products.category, 'unknown')

)

select * from aggregated_to_customer_day_categories
