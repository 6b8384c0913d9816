{#- Point in time: recount each customer's orders before every snapshot straight from
    stg_shop__orders (timestamps, not the daily aggregates) and compare with the features. An
    order on the snapshot date itself must not be counted. -#}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

featurized as (

    select * from {{ ref('int_customer_snapshots_featurized') }}

),

recounted as (

    select
        featurized.customer_id,
        featurized.snapshot_on,
        featurized.n_orders,
        featurized.days_since_last_order,
        count(orders.order_id) as n_orders_recounted,
        {{ days_between('cast(max(orders.ordered_at) as date)', 'featurized.snapshot_on') }}
            as days_since_last_order_recounted
    from featurized
    left join orders
        on featurized.customer_id = orders.customer_id
        and orders.ordered_at < cast(featurized.snapshot_on as timestamp)
    group by
        featurized.customer_id,
        featurized.snapshot_on,
        featurized.n_orders,
        featurized.days_since_last_order

),

mismatches as (

    select * from recounted
    where n_orders is distinct from n_orders_recounted
        or days_since_last_order is distinct from days_since_last_order_recounted

)

select * from mismatches
