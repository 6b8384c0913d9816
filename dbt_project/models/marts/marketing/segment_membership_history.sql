with

customer_segment_history as (

    select * from {{ ref('customer_segment_history') }}

),

aggregated_to_segments as (

    select
        as_of,
        model_id,
        segment_id,
        min(segment_name) as segment_name,
        max(scored_at) as scored_at,
        count(*) as n_customers,
        sum(predicted_revenue) as predicted_revenue
    from customer_segment_history
    group by as_of, model_id, segment_id

),

shares as (

    select
        *,
        n_customers * 1.0 / sum(n_customers) over (partition by as_of) as customer_share
    from aggregated_to_segments

),

final as (

    select
        -- ids
        cast(segment_id as integer) as segment_id,
        model_id,

        -- strings
        segment_name,

        -- numerics
        cast(n_customers as integer) as n_customers,
        cast(customer_share as double) as customer_share,
        cast(predicted_revenue as decimal(18, 2)) as predicted_revenue,

        -- dates and timestamps
        as_of,
        scored_at
    from shares

)

select * from final
