with

customer_scores as (

    select * from {{ ref('customer_scores') }}

),

segment_profiles as (

    select * from {{ ref('segment_profiles') }}

),

rfm_scores as (

    select * from {{ ref('rfm_scores') }}

),

customers as (

    select * from {{ ref('customers') }}

),

campaign_audiences as (

    select * from {{ ref('campaign_audiences') }}

),

customer_features as (

    select * from {{ ref('customer_features') }}

),

scored_customers as (

    select
        customer_scores.customer_id,
        customer_scores.segment_id,
        customer_scores.segment_name,
        customer_scores.model_id,
        customer_scores.as_of,
        customer_scores.purchase_probability,
        coalesce(
            customer_scores.predicted_revenue,
            customer_scores.purchase_probability * customer_features.avg_order_value
        ) as expected_value,
        customer_scores.predicted_clv,
        rfm_scores.revenue,
        rfm_scores.n_orders,
        rfm_scores.days_since_last_order,
        rfm_scores.rfm_group,
        coalesce(customers.is_marketing_opt_in, false) as is_marketing_opt_in,
        campaign_audiences.customer_id is not null as is_in_audience
    from customer_scores
    left join rfm_scores
        on customer_scores.customer_id = rfm_scores.customer_id
    left join customer_features
        on customer_scores.customer_id = customer_features.customer_id
    left join customers
        on customer_scores.customer_id = customers.customer_id
    left join campaign_audiences
        on customer_scores.customer_id = campaign_audiences.customer_id

),

aggregated_to_segments as (

    select
        segment_id,
        any_value(segment_name) as segment_name,
        any_value(model_id) as model_id,
        any_value(as_of) as as_of,
        count(*) as n_customers,
        count(*) filter (where is_marketing_opt_in) as n_opted_in,
        count(*) filter (where is_in_audience) as n_in_audiences,
        {{ exact_mean('purchase_probability') }} as mean_purchase_probability,
        {{ exact_sum('purchase_probability') }} as expected_buyers,
        sum(expected_value) as expected_value,
        sum(predicted_clv) as predicted_clv,
        sum(revenue) as revenue,
        avg(n_orders) as mean_n_orders,
        avg(days_since_last_order) as mean_days_since_last_order,
        {{ lowest_mode('rfm_group') }} as most_common_rfm_group
    from scored_customers
    group by segment_id

),

shares as (

    select
        *,
        n_customers / sum(n_customers) over () as customer_share,
        revenue / nullif(sum(revenue) over (), 0) as revenue_share
    from aggregated_to_segments

),

final as (

    select
        -- ids
        cast(shares.segment_id as integer) as segment_id,
        shares.model_id,

        -- strings
        shares.segment_name,
        segment_profiles.description,
        shares.most_common_rfm_group,

        -- numerics
        cast(shares.n_customers as integer) as n_customers,
        cast(shares.n_opted_in as integer) as n_opted_in,
        cast(shares.n_in_audiences as integer) as n_in_audiences,
        cast(shares.customer_share as double) as customer_share,
        cast(shares.mean_purchase_probability as double) as mean_purchase_probability,
        cast(shares.expected_buyers as double) as expected_buyers,
        cast(shares.expected_value as decimal(18, 2)) as expected_value,
        cast(shares.predicted_clv as decimal(18, 2)) as predicted_clv,
        cast(shares.revenue as decimal(18, 2)) as revenue,
        cast(shares.revenue_share as double) as revenue_share,
        cast(shares.mean_n_orders as double) as mean_n_orders,
        cast(shares.mean_days_since_last_order as double) as mean_days_since_last_order,

        -- dates
        shares.as_of

    from shares
    left join segment_profiles
        on shares.segment_id = segment_profiles.segment_id

)

select * from final
