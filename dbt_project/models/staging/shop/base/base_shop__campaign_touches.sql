with

source as (

    select * from {{ source('shop', 'campaign_touches') }}

),

customers as (

    select * from {{ ref('base_shop__customer_ids') }}

),

renamed as (

    select
        -- ids
        {{ clean_text('source.touch_id') }} as touch_id,
        {{ clean_text('source.campaign_id') }} as campaign_id,
        {{ clean_text('source.customer_id') }} as customer_id,
        -- The segmart export (audience and as_of) the shop sent this touch for; optional.
        {{ clean_text('source.campaign_key') }} as campaign_key,

        -- strings
        channel_vocabulary.value as channel,

        -- booleans
        coalesce({{ parse_bool('source.is_control') }}, false) as is_control,

        -- timestamps
        try_cast(source.sent_at as timestamp) as sent_at,
        try_cast(source.opened_at as timestamp) as opened_at,
        try_cast(source.clicked_at as timestamp) as clicked_at,

        {{ raw_record('source', 'campaign_touches') }} as raw_record

    from source
    left join {{ ref('controlled_vocabulary') }} as channel_vocabulary
        on channel_vocabulary.field = 'touch_channel'
        and channel_vocabulary.spelling = {{ clean_lower('source.channel') }}

),

flagged as (

    select
        renamed.*,
        case
            when renamed.touch_id is null then 'missing_touch_id'
            when renamed.customer_id is null then 'missing_customer_id'
            when renamed.sent_at is null then 'invalid_sent_at'
            when renamed.sent_at > {{ loaded_at() }} then 'sent_in_future'
            when renamed.sent_at < {{ date_var('min_valid_date') }} then 'sent_before_min_date'
            when renamed.channel is null then 'invalid_channel'
            when customers.customer_id is null then 'orphan_customer_id'
        end as rejection_reason

    from renamed
    left join customers
        on renamed.customer_id = customers.customer_id

)

select * from flagged
