with

source as (

    select * from {{ source('shop', 'order_items') }}

),

-- The orders that pass validation: stg_shop__orders holds each exactly once, already built
-- (deriving them again here typed and grouped every raw order a second time).
valid_orders as (

    select order_id from {{ ref('stg_shop__orders') }}

),

renamed as (

    select
        -- ids
        {{ clean_text('source.order_id') }} as order_id,
        {{ clean_text('source.product_id') }} as product_id,

        -- numerics
        try_cast(source.quantity as integer) as quantity,
        try_cast(source.unit_price as decimal(18, 2)) as unit_price,

        {{ raw_record('source', 'order_items') }} as raw_record,
        -- lineage: the landed file (incremental staging reads new files only)
        source.source_file

    from source

),

flagged as (

    select
        renamed.*,
        case
            when renamed.order_id is null then 'missing_order_id'
            when renamed.product_id is null then 'missing_product_id'
            when renamed.quantity is null then 'invalid_quantity'
            when renamed.quantity <= 0 then 'non_positive_quantity'
            when renamed.quantity > {{ var('max_quantity') }} then 'absurd_quantity'
            when renamed.unit_price is null then 'invalid_unit_price'
            when renamed.unit_price < 0 then 'negative_unit_price'
            when renamed.unit_price > {{ var('max_money') }} then 'absurd_unit_price'
            when valid_orders.order_id is null then 'orphan_order_id'
        end as rejection_reason

    from renamed
    left join valid_orders
        on renamed.order_id = valid_orders.order_id

)

select * from flagged
