{#- Labels look only at [snapshot, snapshot + horizon): the first day of the window is label,
    never feature (features use activity strictly before the snapshot). -#}

with

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}
    where is_training

),

order_days as (

    select * from {{ ref('int_orders_aggregated_to_customer_days') }}

),

labelled as (

    select
        order_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(order_days.n_purchases) as n_purchases_in_horizon,
        sum(order_days.purchase_value) as revenue_in_horizon
    from order_days
    inner join snapshot_dates
        on order_days.activity_on >= snapshot_dates.snapshot_on
        and order_days.activity_on < snapshot_dates.label_ends_on
    group by order_days.customer_id, snapshot_dates.snapshot_on

)

select * from labelled
