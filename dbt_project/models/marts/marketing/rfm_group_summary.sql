with

rfm_scores as (

    select * from {{ ref('rfm_scores') }}

),

customer_scores as (

    select * from {{ ref('customer_scores') }}

),

aggregated_to_groups as (

    select
        rfm_scores.rfm_group,
        any_value(rfm_scores.as_of) as as_of,
        count(*) as n_customers,
        avg(rfm_scores.recency_score) as mean_recency_score,
        avg(rfm_scores.frequency_score) as mean_frequency_score,
        avg(rfm_scores.monetary_score) as mean_monetary_score,
        avg(rfm_scores.days_since_last_order) as mean_days_since_last_order,
        avg(rfm_scores.n_orders) as mean_n_orders,
        sum(rfm_scores.revenue) as revenue,
        {{ exact_mean('customer_scores.purchase_probability') }} as mean_purchase_probability
    from rfm_scores
    left join customer_scores
        on rfm_scores.customer_id = customer_scores.customer_id
    group by rfm_scores.rfm_group

),

-- A fixed display order, best to worst, so dashboards need no sort logic of their own.
final as (

    select
        -- strings
        rfm_group,

        -- numerics
        cast(case rfm_group
            when 'Champions' then 1
            when 'Loyal' then 2
            when 'Potential loyalists' then 3
            when 'New' then 4
            when 'Promising' then 5
            when 'Need attention' then 6
            when 'About to sleep' then 7
            when {{ string_literal("Can't lose them") }} then 8
            when 'At risk' then 9
            when 'Hibernating' then 10
            when 'Lost' then 11
            else 12
        end as integer) as display_order,
        cast(n_customers as integer) as n_customers,
        cast(n_customers / sum(n_customers) over () as double) as customer_share,
        cast(mean_recency_score as double) as mean_recency_score,
        cast(mean_frequency_score as double) as mean_frequency_score,
        cast(mean_monetary_score as double) as mean_monetary_score,
        cast(mean_days_since_last_order as double) as mean_days_since_last_order,
        cast(mean_n_orders as double) as mean_n_orders,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(revenue / nullif(sum(revenue) over (), 0) as double) as revenue_share,
        cast(mean_purchase_probability as double) as mean_purchase_probability,

        -- dates
        as_of

    from aggregated_to_groups

)

select * from final
