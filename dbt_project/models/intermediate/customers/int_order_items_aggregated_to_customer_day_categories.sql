with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

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
