with

rfm_scores as (

    select * from {{ ref('rfm_scores') }}

),

customer_scores as (

    select * from {{ ref('customer_scores') }}

),

aggregated_to_stages as (

    select
        rfm_scores.lifecycle_stage,
        any_value(rfm_scores.as_of) as as_of,
        count(*) as n_customers,
        avg(rfm_scores.days_since_last_order) as mean_days_since_last_order,
        avg(rfm_scores.n_orders) as mean_n_orders,
        sum(rfm_scores.revenue) as revenue,
        {{ exact_mean('customer_scores.purchase_probability') }} as mean_purchase_probability
    from rfm_scores
    left join customer_scores
        on rfm_scores.customer_id = customer_scores.customer_id
    group by rfm_scores.lifecycle_stage

),

final as (

    select
        -- strings
        lifecycle_stage,

        -- numerics
        cast(case lifecycle_stage
            when 'prospect' then 1
            when 'new' then 2
            when 'active' then 3
            when 'vip' then 4
            when 'lapsing' then 5
            when 'lapsed' then 6
        end as integer) as display_order,
        cast(n_customers as integer) as n_customers,
        cast(n_customers / sum(n_customers) over () as double) as customer_share,
        cast(mean_days_since_last_order as double) as mean_days_since_last_order,
        cast(mean_n_orders as double) as mean_n_orders,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(revenue / nullif(sum(revenue) over (), 0) as double) as revenue_share,
        cast(mean_purchase_probability as double) as mean_purchase_probability,

        -- dates
        as_of

    from aggregated_to_stages

)

select * from final
