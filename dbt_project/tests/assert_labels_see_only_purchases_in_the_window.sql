{#- The label of every training example, recomputed from stg_shop__orders: a counted purchase
    with snapshot_on <= ordered_at < label_ends_on (timestamps, not the daily aggregates). -#}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

training_examples as (

    select * from {{ ref('training_examples') }}

),

relabelled as (

    select
        training_examples.customer_id,
        training_examples.snapshot_on,
        training_examples.purchased_in_horizon,
        count(orders.order_id) > 0 as purchased_in_horizon_recomputed
    from training_examples
    left join orders
        on training_examples.customer_id = orders.customer_id
        and orders.is_counted_purchase
        and orders.ordered_at >= cast(training_examples.snapshot_on as timestamp)
        and orders.ordered_at < cast(training_examples.label_ends_on as timestamp)
    group by
        training_examples.customer_id,
        training_examples.snapshot_on,
        training_examples.purchased_in_horizon

),

mismatches as (

    select * from relabelled
    where purchased_in_horizon <> purchased_in_horizon_recomputed

)

select * from mismatches
