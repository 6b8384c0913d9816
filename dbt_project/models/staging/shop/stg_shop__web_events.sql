with

validated as (

    select * from {{ ref('base_shop__web_events') }}
    where rejection_reason is null

),

deduplicated as (

    select
        *,
        count(*) over (partition by event_id) as n_loaded_copies
    from validated
    qualify
        row_number() over (
            partition by event_id
            order by event_at, customer_id, session_id, event_type, product_id
        ) = 1

),

final as (

    select
        -- ids
        event_id,
        customer_id,
        session_id,
        product_id,

        -- strings
        event_type,

        -- timestamps
        event_at,
        cast(event_at as date) as event_on,

        -- lineage
        n_loaded_copies

    from deduplicated

)

select * from final
