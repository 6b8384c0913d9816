with

audience_candidates as (

    select * from {{ ref('audience_candidates') }}

),

customer_recommendations as (

    select * from {{ ref('customer_recommendations') }}

),

selected as (

    select * from audience_candidates
    where is_selected

),

recommended_categories as (

    select
        customer_id,
        max(category) filter (where rank = 1) as recommended_category_1,
        max(category) filter (where rank = 2) as recommended_category_2,
        max(category) filter (where rank = 3) as recommended_category_3
    from customer_recommendations
    group by customer_id

),

final as (

    select
        -- ids
        selected.customer_id,
        selected.audience,
        selected.model_id,

        -- strings
        selected.channel,
        selected.offer,
        selected.segment_name,
        selected.rfm_group,
        selected.lifecycle_stage,
        recommended_categories.recommended_category_1,
        recommended_categories.recommended_category_2,
        recommended_categories.recommended_category_3,

        -- numerics
        selected.priority,
        selected.audience_rank,
        selected.propensity_decile,
        selected.purchase_probability,
        selected.predicted_order_value,
        selected.expected_value,

        -- booleans
        selected.is_control,

        -- dates
        selected.as_of

    from selected
    left join recommended_categories
        on selected.customer_id = recommended_categories.customer_id

)

select * from final
