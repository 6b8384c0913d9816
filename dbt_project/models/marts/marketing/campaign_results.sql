{#- A contacted customer converts with a counted purchase within this many days of the send. -#}
{%- set window_days = var('conversion_window_days') | int -%}

with

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

-- The unit is a customer in a campaign: a repeated send to the same customer counts once, from
-- the first send. Sends on or after as_of are not measured yet.
customer_touches as (

    select
        campaign_id,
        customer_id,
        channel,
        is_control,
        sent_at
    from (
        select
            campaign_touches.*,
            row_number() over (
                partition by campaign_touches.campaign_id, campaign_touches.customer_id
                order by campaign_touches.sent_at asc, campaign_touches.touch_id asc
            ) as send_rank
        from campaign_touches
        cross join as_of
        where campaign_touches.sent_at < cast(as_of.as_of_on as timestamp)
    ) as ranked_touches
    where send_rank = 1

),

-- Only orders before as_of count, so a window still open at as_of is cut short (and flagged).
conversions as (

    select
        customer_touches.campaign_id,
        customer_touches.customer_id,
        count(orders.order_id) > 0 as is_converted,
        coalesce(sum(orders.order_total), 0) as revenue
    from customer_touches
    cross join as_of
    left join orders
        on customer_touches.customer_id = orders.customer_id
        and orders.is_counted_purchase
        and customer_touches.sent_at <= orders.ordered_at
        and orders.ordered_at < {{ days_after('customer_touches.sent_at', window_days) }}
        and orders.ordered_at < cast(as_of.as_of_on as timestamp)
    group by customer_touches.campaign_id, customer_touches.customer_id

),

aggregated_to_campaigns as (

    select
        customer_touches.campaign_id,
        {{ lowest_mode('customer_touches.channel') }} as channel,
        min(customer_touches.sent_at) as first_sent_at,
        max(customer_touches.sent_at) as last_sent_at,
        count(*) filter (where not customer_touches.is_control) as n_treatment,
        count(*) filter (where customer_touches.is_control) as n_control,
        count(*) filter (where not customer_touches.is_control and conversions.is_converted)
            as n_converted_treatment,
        count(*) filter (where customer_touches.is_control and conversions.is_converted)
            as n_converted_control,
        coalesce(sum(conversions.revenue) filter (where not customer_touches.is_control), 0)
            as revenue_treatment,
        coalesce(sum(conversions.revenue) filter (where customer_touches.is_control), 0)
            as revenue_control
    from customer_touches
    inner join conversions
        on customer_touches.campaign_id = conversions.campaign_id
        and customer_touches.customer_id = conversions.customer_id
    group by customer_touches.campaign_id

),

rates as (

    select
        *,
        n_converted_treatment / nullif(n_treatment, 0) as conversion_rate_treatment,
        n_converted_control / nullif(n_control, 0) as conversion_rate_control
    from aggregated_to_campaigns

),

-- 95% interval for the difference of two proportions by the normal approximation (Wald,
-- unpooled variances). It is poor for small groups or rates near 0 or 1: n_control and the
-- rates are published next to it so a reader can judge.
lifts as (

    select
        *,
        conversion_rate_treatment - conversion_rate_control as absolute_lift,
        (conversion_rate_treatment - conversion_rate_control)
        / nullif(conversion_rate_control, 0) as relative_lift,
        sqrt(
            conversion_rate_treatment * (1 - conversion_rate_treatment) / n_treatment
            + conversion_rate_control * (1 - conversion_rate_control) / n_control
        ) as lift_standard_error
    from rates

),

final as (

    select
        -- ids
        lifts.campaign_id,

        -- strings
        lifts.channel,

        -- numerics
        cast(lifts.n_treatment as integer) as n_treatment,
        cast(lifts.n_control as integer) as n_control,
        cast(lifts.n_converted_treatment as integer) as n_converted_treatment,
        cast(lifts.n_converted_control as integer) as n_converted_control,
        cast(lifts.conversion_rate_treatment as double) as conversion_rate_treatment,
        cast(lifts.conversion_rate_control as double) as conversion_rate_control,
        cast(lifts.absolute_lift as double) as absolute_lift,
        cast(lifts.relative_lift as double) as relative_lift,
        cast(lifts.lift_standard_error as double) as lift_standard_error,
        cast(lifts.absolute_lift - 1.959964 * lifts.lift_standard_error as double)
            as absolute_lift_ci_low,
        cast(lifts.absolute_lift + 1.959964 * lifts.lift_standard_error as double)
            as absolute_lift_ci_high,
        cast(lifts.revenue_treatment / nullif(lifts.n_treatment, 0) as decimal(18, 2))
            as revenue_per_treated_customer,
        cast(lifts.revenue_control / nullif(lifts.n_control, 0) as decimal(18, 2))
            as revenue_per_control_customer,
        cast({{ window_days }} as integer) as conversion_window_days,

        -- booleans
        coalesce(
            lifts.absolute_lift - 1.959964 * lifts.lift_standard_error > 0
            or lifts.absolute_lift + 1.959964 * lifts.lift_standard_error < 0,
            false
        ) as is_significant,
        {{ days_after('lifts.last_sent_at', window_days) }} <= cast(as_of.as_of_on as timestamp)
            as is_window_complete,

        -- dates and timestamps
        lifts.first_sent_at,
        lifts.last_sent_at,
        as_of.as_of_on as as_of

    from lifts
    cross join as_of

)

select * from final
