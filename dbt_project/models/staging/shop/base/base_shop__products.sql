with

source as (

    select * from {{ source('shop', 'products') }}

),

renamed as (

    select
        -- ids
        {{ clean_text('source.product_id') }} as product_id,

        -- strings
        {{ clean_lower('source.category') }} as category,
        {{ clean_text('source.brand') }} as brand,

        -- numerics
        try_cast(source.list_price as decimal(18, 2)) as list_price,
        (
            {{ clean_text('source.list_price') }} is not null
            and try_cast(source.list_price as decimal(18, 2)) is null
        ) as is_list_price_unparsable,

        {{ raw_record('source', 'products') }} as raw_record

    from source

),

flagged as (

    select
        *,
        case
            when product_id is null then 'missing_product_id'
            when is_list_price_unparsable then 'invalid_list_price'
            when list_price < 0 then 'negative_list_price'
            when list_price > {{ var('max_money') }} then 'absurd_list_price'
        end as rejection_reason

    from renamed

)

select * from flagged
