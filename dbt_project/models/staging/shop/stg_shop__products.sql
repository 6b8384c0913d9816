with

validated as (

    select * from {{ ref('base_shop__products') }}
    where rejection_reason is null

),

deduplicated as (

    select * from validated
    qualify row_number() over (partition by product_id order by raw_record) = 1

),

final as (

    select
        product_id,
        coalesce(category, 'unknown') as category,
        brand,
        list_price,
    from deduplicated

)

select * from final
