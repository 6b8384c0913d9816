with

validated as (

    select * from {{ ref('base_shop__products') }}
    where rejection_reason is null

),

deduplicated as (

    select
        *,
        count(*) over (partition by product_id) as n_loaded_copies
    from validated
    qualify
        row_number() over (
            partition by product_id
            order by raw_record
        ) = 1

),

final as (

    select
        product_id,
        coalesce(category, 'unknown') as category,
        brand,
        list_price,

        -- lineage
        n_loaded_copies
    from deduplicated

)

select * from final
