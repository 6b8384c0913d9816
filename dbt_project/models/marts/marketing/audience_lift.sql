{#- Both groups are measured in the same window: from the first touch of the export for this
    many days. -#}
{%- set window_days = var('conversion_window_days') | int -%}
{#- A group smaller than this makes the normal approximation unreliable: no conclusion. -#}
{%- set min_group_size = var('audience_lift_min_group_size') | int -%}

with

exported_audience_members as (

    select * from {{ source('activation', 'exported_audience_members') }}

),

campaign_touches as (

    select * from {{ ref('stg_shop__campaign_touches') }}

),

orders as (

    select * from {{ ref('orders') }}

),

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}

),

as_of as (

    select max(as_of_on) as as_of_on from snapshot_dates

),

-- An export is measured once the shop's touches name its campaign_key: the shop ran it. Its
-- first send starts the window of treated and control members alike.
campaigns_run as (

    select
        campaign_touches.campaign_key,
        min(campaign_touches.sent_at) as first_sent_at,
        count(distinct campaign_touches.customer_id) as n_touched_customers
    from campaign_touches
    cross join as_of
    where
        campaign_touches.campaign_key is not null
        and not campaign_touches.is_control
        and campaign_touches.sent_at < cast(as_of.as_of_on as timestamp)
    group by campaign_touches.campaign_key

),

-- Groups come from the export's membership, not from the touches: a control member has no
-- touch, and a treated member the shop skipped still counts as treated (intention to treat).
measured_members as (

    select
        exported_audience_members.campaign_key,
        exported_audience_members.audience_id,
        exported_audience_members.channel,
        exported_audience_members.exported_on,
        exported_audience_members.customer_id,
        exported_audience_members.is_control,
        campaigns_run.first_sent_at,
        campaigns_run.n_touched_customers
    from exported_audience_members
    inner join campaigns_run
        on exported_audience_members.campaign_key = campaigns_run.campaign_key

),

-- Only orders before as_of count, so a window still open at as_of is cut short (and flagged).
member_outcomes as (

    select
        measured_members.campaign_key,
        measured_members.customer_id,
        measured_members.is_control,
        count(orders.order_id) > 0 as is_converted,
        cast(coalesce(sum(orders.order_total), 0) as double) as revenue
    from measured_members
    cross join as_of
    left join orders
        on measured_members.customer_id = orders.customer_id
        and orders.is_counted_purchase
        and measured_members.first_sent_at <= orders.ordered_at
        and orders.ordered_at
        < {{ days_after('measured_members.first_sent_at', window_days) }}
        and orders.ordered_at < cast(as_of.as_of_on as timestamp)
    group by
        measured_members.campaign_key,
        measured_members.customer_id,
        measured_members.is_control

),

aggregated_to_exports as (

    select
        measured_members.campaign_key,
        max(measured_members.audience_id) as audience_id,
        max(measured_members.channel) as channel,
        max(measured_members.exported_on) as exported_on,
        max(measured_members.first_sent_at) as first_sent_at,
        max(measured_members.n_touched_customers) as n_touched_customers,
        count(*) filter (where not member_outcomes.is_control) as n_treatment,
        count(*) filter (where member_outcomes.is_control) as n_control,
        count(*) filter (where not member_outcomes.is_control and member_outcomes.is_converted)
            as n_converted_treatment,
        count(*) filter (where member_outcomes.is_control and member_outcomes.is_converted)
            as n_converted_control,
        avg(member_outcomes.revenue) filter (where not member_outcomes.is_control)
            as revenue_per_treated_customer,
        avg(member_outcomes.revenue) filter (where member_outcomes.is_control)
            as revenue_per_control_customer,
        var_samp(member_outcomes.revenue) filter (where not member_outcomes.is_control)
            as revenue_variance_treatment,
        var_samp(member_outcomes.revenue) filter (where member_outcomes.is_control)
            as revenue_variance_control
    from measured_members
    inner join member_outcomes
        on measured_members.campaign_key = member_outcomes.campaign_key
        and measured_members.customer_id = member_outcomes.customer_id
        and measured_members.is_control = member_outcomes.is_control
    group by measured_members.campaign_key

),

rates as (

    select
        *,
        1.0 * n_converted_treatment / nullif(n_treatment, 0) as conversion_rate_treatment,
        1.0 * n_converted_control / nullif(n_control, 0) as conversion_rate_control
    from aggregated_to_exports

),

-- Differences of means with unpooled normal-approximation (Wald) standard errors: for the
-- conversion rates p(1 - p) / n per group, for revenue per customer the sample variance / n.
lifts as (

    select
        *,
        conversion_rate_treatment - conversion_rate_control as conversion_lift,
        sqrt(
            conversion_rate_treatment * (1 - conversion_rate_treatment) / nullif(n_treatment, 0)
            + conversion_rate_control * (1 - conversion_rate_control) / nullif(n_control, 0)
        ) as conversion_lift_standard_error,
        revenue_per_treated_customer - revenue_per_control_customer as revenue_lift,
        sqrt(
            revenue_variance_treatment / nullif(n_treatment, 0)
            + revenue_variance_control / nullif(n_control, 0)
        ) as revenue_lift_standard_error,
        n_treatment < {{ min_group_size }} or n_control < {{ min_group_size }}
            as is_too_small_to_conclude
    from rates

),

intervals as (

    select
        *,
        conversion_lift - 1.959964 * conversion_lift_standard_error as conversion_lift_ci_low,
        conversion_lift + 1.959964 * conversion_lift_standard_error as conversion_lift_ci_high,
        revenue_lift - 1.959964 * revenue_lift_standard_error as revenue_lift_ci_low,
        revenue_lift + 1.959964 * revenue_lift_standard_error as revenue_lift_ci_high
    from lifts

),

judged as (

    select
        *,
        coalesce(
            not is_too_small_to_conclude
            and (conversion_lift_ci_low > 0 or conversion_lift_ci_high < 0),
            false
        ) as is_conversion_lift_significant,
        coalesce(
            not is_too_small_to_conclude
            and (revenue_lift_ci_low > 0 or revenue_lift_ci_high < 0),
            false
        ) as is_revenue_lift_significant
    from intervals

),

final as (

    select
        -- ids
        judged.campaign_key,
        judged.audience_id,

        -- strings
        judged.channel,
        case
            when judged.is_too_small_to_conclude
                then 'too small to conclude: a group has fewer than {{ min_group_size }} customers'
            when judged.is_conversion_lift_significant and judged.conversion_lift > 0
                then 'the campaign raised conversion (95% interval above zero)'
            when judged.is_conversion_lift_significant
                then 'the campaign lowered conversion (95% interval below zero)'
            else 'no significant difference in conversion (95% interval contains zero)'
        end as conclusion,

        -- numerics
        cast(judged.n_treatment as integer) as n_treatment,
        cast(judged.n_control as integer) as n_control,
        cast(judged.n_touched_customers as integer) as n_touched_customers,
        cast(judged.n_converted_treatment as integer) as n_converted_treatment,
        cast(judged.n_converted_control as integer) as n_converted_control,
        cast(judged.conversion_rate_treatment as double) as conversion_rate_treatment,
        cast(judged.conversion_rate_control as double) as conversion_rate_control,
        cast(judged.conversion_lift as double) as conversion_lift,
        cast(judged.conversion_lift_standard_error as double) as conversion_lift_standard_error,
        cast(judged.conversion_lift_ci_low as double) as conversion_lift_ci_low,
        cast(judged.conversion_lift_ci_high as double) as conversion_lift_ci_high,
        cast(judged.revenue_per_treated_customer as decimal(18, 2))
            as revenue_per_treated_customer,
        cast(judged.revenue_per_control_customer as decimal(18, 2))
            as revenue_per_control_customer,
        cast(judged.revenue_lift as double) as revenue_lift,
        cast(judged.revenue_lift_ci_low as double) as revenue_lift_ci_low,
        cast(judged.revenue_lift_ci_high as double) as revenue_lift_ci_high,
        cast({{ window_days }} as integer) as conversion_window_days,
        cast({{ min_group_size }} as integer) as min_group_size,

        -- booleans
        judged.is_too_small_to_conclude,
        judged.is_conversion_lift_significant,
        judged.is_revenue_lift_significant,
        {{ days_after('judged.first_sent_at', window_days) }}
        <= cast(as_of.as_of_on as timestamp) as is_window_complete,

        -- dates and timestamps
        judged.exported_on,
        judged.first_sent_at,
        as_of.as_of_on as as_of

    from judged
    cross join as_of

)

select * from final
