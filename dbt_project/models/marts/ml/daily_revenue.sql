{#- The shop's revenue per day, strictly before as_of: the seasonal index of
    ml/value/seasonality.py divides each day's repeat revenue by the customers who had bought
    before that day, so a growing customer base does not read as a season. -#}

with

order_days as (

    select * from {{ ref('int_orders_aggregated_to_customer_days') }}

),

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}

),

-- Counted purchases only, as in the labels (revenue_in_horizon): the order's current status.
purchase_days as (

    select
        customer_id,
        activity_on as purchased_on,
        n_purchases,
        purchase_value,
        row_number() over (partition by customer_id order by activity_on) = 1 as is_first_purchase
    from order_days
    where n_purchases > 0

),

as_of as (

    select max(as_of_on) as as_of_on from snapshot_dates

),

purchase_days_before_as_of as (

    select
        purchase_days.purchased_on,
        purchase_days.n_purchases,
        purchase_days.purchase_value,
        purchase_days.is_first_purchase,
        as_of.as_of_on
    from purchase_days
    cross join as_of
    where purchase_days.purchased_on < as_of.as_of_on

),

aggregated_to_days as (

    select
        purchased_on as revenue_on,
        as_of_on,
        sum(n_purchases) as n_purchases,
        sum(case when is_first_purchase then 1 else 0 end) as n_first_purchases,
        sum(purchase_value) as revenue,
        sum(case when is_first_purchase then 0 else purchase_value end) as repeat_revenue
    from purchase_days_before_as_of
    group by purchased_on, as_of_on

),

with_buyers_before as (

    select
        -- dates
        revenue_on,
        as_of_on,

        -- numerics
        cast(n_purchases as integer) as n_purchases,
        cast(n_first_purchases as integer) as n_first_purchases,
        cast(
            coalesce(
                sum(n_first_purchases) over (
                    order by revenue_on rows between unbounded preceding and 1 preceding
                ),
                0
            )
            as integer
        ) as n_buyers_before,
        cast(revenue as double) as revenue,
        cast(repeat_revenue as double) as repeat_revenue

    from aggregated_to_days

)

select * from with_buyers_before
