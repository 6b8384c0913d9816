{#- The inputs of the BG/NBD and Gamma-Gamma models (ml/value/) per customer and snapshot. A
    purchase is a day with at least one non-cancelled order (order_days.n_purchases > 0), so
    several orders on one day are one purchase worth their sum: the models' unit of repeat
    buying. Only days strictly before the snapshot count. -#}

with

population as (

    select * from {{ ref('int_customer_snapshots_featurized') }}

),

order_days as (

    select * from {{ ref('int_orders_aggregated_to_customer_days') }}

),

-- Like the labels, this uses the order's current status: a cancellation recorded after the
-- snapshot removes the order here too (the raw contract has no status timestamp), whereas the
-- propensity features count every placed order.
purchase_days as (

    select
        customer_id,
        activity_on as purchased_on,
        purchase_value,
        -- A customer's first purchase day is the same for every snapshot that sees it.
        row_number() over (partition by customer_id order by activity_on) = 1 as is_first_purchase
    from order_days
    where n_purchases > 0

),

purchase_history as (

    select
        population.customer_id,
        population.snapshot_on,
        count(*) - 1 as frequency,
        min(purchase_days.purchased_on) as first_purchased_on,
        max(purchase_days.purchased_on) as last_purchased_on,
        sum(case when not purchase_days.is_first_purchase then purchase_days.purchase_value end)
            as repeat_purchase_value
    from population
    inner join purchase_days
        on population.customer_id = purchase_days.customer_id
        and population.snapshot_on > purchase_days.purchased_on
    group by population.customer_id, population.snapshot_on

),

value_inputs as (

    select
        -- ids
        population.customer_id,
        population.snapshot_on,
        population.is_training,

        -- numerics
        cast(purchase_history.frequency as integer) as frequency,
        cast(
            {{ days_between(
                'purchase_history.first_purchased_on', 'purchase_history.last_purchased_on'
            ) }}
            as integer
        ) as recency_days,
        cast(
            {{ days_between('purchase_history.first_purchased_on', 'population.snapshot_on') }}
            as integer
        ) as t_days,
        cast(purchase_history.repeat_purchase_value as double)
        / nullif(purchase_history.frequency, 0) as mean_repeat_spend,

        -- booleans
        purchase_history.customer_id is not null as has_purchased,

        -- dates
        purchase_history.first_purchased_on,
        purchase_history.last_purchased_on

    from population
    left join purchase_history
        on population.customer_id = purchase_history.customer_id
        and population.snapshot_on = purchase_history.snapshot_on

)

select * from value_inputs
