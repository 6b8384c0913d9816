with

source as (

    select * from {{ source('shop', 'web_events') }}

),

customers as (

    select * from {{ ref('base_shop__customer_ids') }}

),

renamed as (

    select
        -- ids
        {{ clean_text('source.event_id') }} as event_id,
        {{ clean_text('source.customer_id') }} as customer_id,
        {{ clean_text('source.session_id') }} as session_id,
        {{ clean_text('source.product_id') }} as product_id,

        -- strings
        event_type_vocabulary.value as event_type,

        -- timestamps
        try_cast(source.event_at as timestamp) as event_at,

        {{ raw_record('source', 'web_events') }} as raw_record,
        -- lineage: the landed file (incremental staging reads new files only)
        source.source_file

    from source
    left join {{ ref('controlled_vocabulary') }} as event_type_vocabulary
        on event_type_vocabulary.field = 'event_type'
        and event_type_vocabulary.spelling = {{ clean_lower('source.event_type') }}

),

flagged as (

    select
        renamed.*,
        case
            when renamed.event_id is null then 'missing_event_id'
            when renamed.event_type is null then 'invalid_event_type'
            when renamed.event_at is null then 'invalid_event_at'
            when renamed.event_at > {{ loaded_at() }} then 'event_in_future'
            when renamed.event_at < {{ date_var('min_valid_date') }} then 'event_before_min_date'
            -- Anonymous events are valid; a named customer must exist.
            when renamed.customer_id is not null and customers.customer_id is null
                then 'orphan_customer_id'
        end as rejection_reason

    from renamed
    left join customers
        on renamed.customer_id = customers.customer_id

)

select * from flagged
