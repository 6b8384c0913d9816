with

source as (

    select * from {{ source('shop', 'orders') }}

),

customers as (

    select * from {{ ref('base_shop__customer_ids') }}

),

renamed as (

    select
        -- ids
        {{ clean_text('source.order_id') }} as order_id,
        {{ clean_text('source.customer_id') }} as customer_id,

        -- strings
        {{ clean_lower('source.status') }} as status_raw,
        -- An export without statuses lists completed orders; an unknown spelling stays null.
        case
            when {{ clean_lower('source.status') }} is null then 'completed'
            else status_vocabulary.value
        end as status,
        {{ vocabulary_value('channel_vocabulary', 'source.channel') }} as channel,

        -- numerics
        try_cast(source.order_total as decimal(18, 2)) as order_total,
        coalesce(try_cast(source.discount_total as decimal(18, 2)), 0) as discount_total,
        (
            {{ clean_text('source.discount_total') }} is not null
            and try_cast(source.discount_total as decimal(18, 2)) is null
        ) as is_discount_unparsable,

        -- timestamps
        {{ parse_timestamp('source.ordered_at') }} as ordered_at,

        {{ raw_record('source', 'orders') }} as raw_record,
        -- lineage: the landed file (incremental staging reads new files only)
        source.source_file

    from source
    left join {{ ref('controlled_vocabulary') }} as status_vocabulary
        on status_vocabulary.field = 'order_status'
        and status_vocabulary.spelling = {{ clean_lower('source.status') }}
    {{ join_vocabulary('channel_vocabulary', 'order_channel', 'source.channel') }}

),

flagged as (

    select
        renamed.*,
        case
            when renamed.order_id is null then 'missing_order_id'
            when renamed.customer_id is null then 'missing_customer_id'
            when renamed.ordered_at is null then 'invalid_ordered_at'
            when renamed.ordered_at > {{ loaded_at() }} then 'ordered_in_future'
            when renamed.ordered_at < {{ date_var('min_valid_date') }}
                then 'ordered_before_min_date'
            when renamed.status is null then 'invalid_status'
            when renamed.order_total < 0 then 'negative_order_total'
            when renamed.order_total > {{ var('max_money') }} then 'absurd_order_total'
            when renamed.is_discount_unparsable or renamed.discount_total < 0
                then 'invalid_discount_total'
            when customers.customer_id is null then 'orphan_customer_id'
            when renamed.ordered_at < customers.first_created_at then 'ordered_before_signup'
        end as rejection_reason

    from renamed
    left join customers
        on renamed.customer_id = customers.customer_id

)

select * from flagged
