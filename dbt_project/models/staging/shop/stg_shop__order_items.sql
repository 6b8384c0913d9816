with

validated as (

    select * from {{ ref('base_shop__order_items') }}
    where rejection_reason is null

),

-- Order lines carry no key of their own: an exact repeat of a line is a re-delivery.
deduplicated as (

    select
        order_id,
        product_id,
        quantity,
        unit_price,
        count(*) as n_loaded_copies
    from validated
    group by order_id, product_id, quantity, unit_price

),

final as (

    select
        -- ids
        md5(concat_ws('|', order_id, product_id, quantity, unit_price)) as order_item_id,
        order_id,
        product_id,

        -- numerics
        quantity,
        unit_price,
        quantity * unit_price as line_total,

        -- lineage
        n_loaded_copies

    from deduplicated

)

select * from final
