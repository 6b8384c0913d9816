{#- Incremental on DuckDB: a run re-aggregates only the customers whose events were staged
    again since it last ran (macros/incremental_aggregates.sql). -#}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_customers_to_reaggregate(['stg_shop__web_events']) }}",
    post_hook="{{ record_reaggregated() }}"
) }}

with

web_events as (

    select * from {{ ref('stg_shop__web_events') }}
    where {{ customers_to_reaggregate('customer_id', ['stg_shop__web_events']) }}

),

-- A session counts on the day it started, so a session across midnight counts once.
sessions as (

    select
        customer_id,
        session_id,
        min(event_on) as started_on
    from web_events
    where customer_id is not null
    group by customer_id, session_id

),

sessions_per_day as (

    select
        customer_id,
        started_on as activity_on,
        count(*) as n_sessions
    from sessions
    group by customer_id, started_on

),

events_per_day as (

    select
        customer_id,
        event_on as activity_on,
        count(*) filter (where event_type = 'product_view') as n_product_views,
        count(*) filter (where event_type = 'add_to_cart') as n_add_to_cart,
        count(*) filter (where event_type = 'checkout') as n_checkouts
    from web_events
    where customer_id is not null
    group by customer_id, event_on

),

aggregated_to_customer_days as (

    select
        events_per_day.customer_id,
        events_per_day.activity_on,
        coalesce(sessions_per_day.n_sessions, 0) as n_sessions,
        events_per_day.n_product_views,
        events_per_day.n_add_to_cart,
        events_per_day.n_checkouts
    from events_per_day
    left join sessions_per_day
        on events_per_day.customer_id = sessions_per_day.customer_id
        and events_per_day.activity_on = sessions_per_day.activity_on

)

select * from aggregated_to_customer_days
