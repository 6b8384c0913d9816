{#- Incremental on DuckDB, like int_order_items_aggregated_to_customer_day_categories (and on
    the same inputs): a run re-aggregates only the customer-days whose orders or lines were
    staged again, or whose lines' product changed category, since it last ran
    (macros/incremental_aggregates.sql). customer_recommendations then counts baskets from this
    table instead of every order line of the shop's history, every week. -#}
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

-- Cancelled orders say nothing about what goes together.
orders as (

    select staged_orders.* from {{ ref('stg_shop__orders') }} as staged_orders
    where staged_orders.is_counted_purchase
        and {{ customers_to_reaggregate(
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

-- Lines of products missing from the catalogue or of category 'unknown' say nothing either.
-- A list sorted per order: the whole query by hand at M took 18-20 s with string_agg(... order
-- by), 12-16 s so.
baskets as (

    select
        order_items.order_id,
        {{ sorted_distinct_string_agg('products.category', basket_separator()) }} as basket
    from order_items
    inner join products
        on order_items.product_id = products.product_id
    where products.category <> 'unknown'
    group by order_items.order_id

),

aggregated_to_customer_day_baskets as (

    select
        orders.customer_id,
        orders.ordered_on as activity_on,
        baskets.basket,
        count(*) as n_orders
    from baskets
    inner join orders
        on baskets.order_id = orders.order_id
    group by orders.customer_id, orders.ordered_on, baskets.basket

)

select * from aggregated_to_customer_day_baskets
