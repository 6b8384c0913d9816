with

customer_segment_history as (

    select * from {{ ref('customer_segment_history') }}

),

orders as (

    select * from {{ ref('orders') }}

),

timeline as (

    select distinct
        as_of,
        previous_as_of
    from customer_segment_history

),

consecutive_pairs as (

    select
        previous_as_of as from_as_of,
        as_of as to_as_of
    from timeline
    where previous_as_of is not null

),

from_side as (

    select
        consecutive_pairs.from_as_of,
        consecutive_pairs.to_as_of,
        customer_segment_history.customer_id,
        customer_segment_history.segment_id,
        customer_segment_history.segment_name
    from consecutive_pairs
    inner join customer_segment_history
        on consecutive_pairs.from_as_of = customer_segment_history.as_of

),

to_side as (

    select
        consecutive_pairs.from_as_of,
        consecutive_pairs.to_as_of,
        customer_segment_history.customer_id,
        customer_segment_history.segment_id,
        customer_segment_history.segment_name
    from consecutive_pairs
    inner join customer_segment_history
        on consecutive_pairs.to_as_of = customer_segment_history.as_of

),

-- A customer scored at only one of the two dates entered (signed up in between) or left
-- (no longer in the scored population): the other side's segment is null.
customer_moves as (

    select
        coalesce(from_side.from_as_of, to_side.from_as_of) as from_as_of,
        coalesce(from_side.to_as_of, to_side.to_as_of) as to_as_of,
        coalesce(from_side.customer_id, to_side.customer_id) as customer_id,
        from_side.segment_id as from_segment_id,
        from_side.segment_name as from_segment_name,
        to_side.segment_id as to_segment_id,
        to_side.segment_name as to_segment_name
    from from_side
    full outer join to_side
        on from_side.from_as_of = to_side.from_as_of
        and from_side.customer_id = to_side.customer_id

),

-- Realised, not predicted: what the customers spent between the two runs, counted purchases
-- on from_as_of up to the day before to_as_of.
customer_revenue_between_runs as (

    select
        customer_moves.from_as_of,
        customer_moves.customer_id,
        sum(orders.order_total) as realised_revenue
    from customer_moves
    inner join orders
        on customer_moves.customer_id = orders.customer_id
        and customer_moves.from_as_of <= orders.ordered_on
        and customer_moves.to_as_of > orders.ordered_on
    where orders.is_counted_purchase
    group by customer_moves.from_as_of, customer_moves.customer_id

),

aggregated_to_transitions as (

    select
        customer_moves.from_as_of,
        customer_moves.to_as_of,
        customer_moves.from_segment_id,
        customer_moves.to_segment_id,
        min(customer_moves.from_segment_name) as from_segment_name,
        min(customer_moves.to_segment_name) as to_segment_name,
        count(*) as n_customers,
        coalesce(sum(customer_revenue_between_runs.realised_revenue), 0) as realised_revenue
    from customer_moves
    left join customer_revenue_between_runs
        on customer_moves.from_as_of = customer_revenue_between_runs.from_as_of
        and customer_moves.customer_id = customer_revenue_between_runs.customer_id
    group by
        customer_moves.from_as_of,
        customer_moves.to_as_of,
        customer_moves.from_segment_id,
        customer_moves.to_segment_id

),

final as (

    select
        -- ids
        cast(from_segment_id as integer) as from_segment_id,
        cast(to_segment_id as integer) as to_segment_id,

        -- strings
        from_segment_name,
        to_segment_name,

        -- numerics
        cast(n_customers as integer) as n_customers,
        cast(realised_revenue as decimal(18, 2)) as realised_revenue,

        -- booleans
        from_segment_id is not null
        and to_segment_id is not null
        and from_segment_id = to_segment_id as is_unchanged,

        -- dates
        from_as_of,
        to_as_of
    from aggregated_to_transitions

)

select * from final
