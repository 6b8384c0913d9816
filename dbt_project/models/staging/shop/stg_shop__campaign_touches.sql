with

validated as (

    select * from {{ ref('base_shop__campaign_touches') }}
    where rejection_reason is null

),

deduplicated as (

    select
        *,
        count(*) over (partition by touch_id) as n_loaded_copies
    from validated
    qualify
        row_number() over (
            partition by touch_id
            order by
                sent_at, customer_id, campaign_id, channel, opened_at, clicked_at, campaign_key
        ) = 1

),

final as (

    select
        -- ids
        touch_id,
        campaign_id,
        customer_id,
        campaign_key,

        -- strings
        channel,

        -- booleans
        is_control,
        opened_at is not null as is_opened,
        clicked_at is not null as is_clicked,

        -- timestamps
        sent_at,
        opened_at,
        clicked_at,
        cast(sent_at as date) as sent_on,

        -- lineage
        n_loaded_copies

    from deduplicated

)

select * from final
