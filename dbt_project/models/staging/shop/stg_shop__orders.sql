with

validated as (

    select * from {{ ref('base_shop__orders') }}
    where rejection_reason is null

),

-- Exact re-deliveries repeat an order: keep one per order_id, deterministically.
deduplicated as (

    select
        *,
        count(*) over (partition by order_id) as n_loaded_copies
    from validated
    qualify
        row_number() over (
            partition by order_id
            order by ordered_at, customer_id, status, order_total, discount_total, channel
        ) = 1

),

final as (

    select
        -- ids
        order_id,
        customer_id,

        -- strings
        status,
        channel,

        -- numerics
        order_total,
        discount_total,

        -- booleans
        status <> 'cancelled' as is_counted_purchase,

        -- timestamps
        ordered_at,
        cast(ordered_at as date) as ordered_on,

        -- lineage
        n_loaded_copies

    from deduplicated

)

select * from final
