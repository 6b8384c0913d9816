{#- Incremental on DuckDB: a run re-aggregates only the customer-days whose orders or lines
    were staged again since it last ran, or whose lines' product changed category (or was added
    or removed) since it last read the catalogue (macros/incremental_aggregates.sql). -#}
{% set staging_models = ['stg_shop__orders', 'stg_shop__order_items'] %}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_customers_to_reaggregate(" ~ staging_models ~ ","
        ~ " product_categories_unread(), customers_of_recategorized_products()) }}",
    post_hook=[
        "{{ record_reaggregated() }}",
        "{{ record_product_categories() }}",
    ]
) }}
{{ keep_customers_of_recategorized_products() }}
with

orders as (

    select staged_orders.* from {{ ref('stg_shop__orders') }} as staged_orders
    where {{ customers_to_reaggregate(
        'staged_orders.customer_id',
        'staged_orders.ordered_on',
        staging_models,
        product_categories_unread(),
        customers_of_recategorized_products()
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
