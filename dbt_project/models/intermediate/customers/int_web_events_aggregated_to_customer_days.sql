{#- Incremental on DuckDB: a run re-aggregates only the customer-days whose events were staged
    again since it last ran (macros/incremental_aggregates.sql). -#}
{% set staging_models = ['stg_shop__web_events'] %}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_customers_to_reaggregate(" ~ staging_models ~ ") }}",
    post_hook="{{ record_reaggregated() }}"
) }}

with

-- The staged events are read where they are filtered, not through one shared CTE: DuckDB
-- materializes a CTE read twice (55M rows at M), and the filters' row-group skipping is lost.
web_events as (

    select staged_web_events.* from {{ ref('stg_shop__web_events') }} as staged_web_events
    where {{ customers_to_reaggregate(
        'staged_web_events.customer_id', 'staged_web_events.event_on', staging_models
    ) }}

),

-- A session counts on the day it started. On an incremental run, a session that began before
-- the customer's re-aggregated days and went on into them keeps its count on its first day,
-- which is not re-aggregated: it is left out here (none on a full build). A customer's events
-- without a session id count as one session, as they group.
sessions_begun_before as (

    select distinct
        staged_web_events.customer_id,
        staged_web_events.session_id
    from {{ ref('stg_shop__web_events') }} as staged_web_events
    where
        (
            staged_web_events.session_id in (select web_events.session_id from web_events)
            or (
                staged_web_events.session_id is null
                and staged_web_events.customer_id in (
                    select web_events.customer_id from web_events
                    where web_events.session_id is null
                )
            )
        )
        and {{ days_before_reaggregated(
            'staged_web_events.customer_id', 'staged_web_events.event_on', staging_models
        ) }}

),

-- A session counts on the day it started, so a session across midnight counts once.
sessions as (

    select
        web_events.customer_id,
        web_events.session_id,
        min(web_events.event_on) as started_on
    from web_events
    left join sessions_begun_before
        on web_events.customer_id = sessions_begun_before.customer_id
        and web_events.session_id is not distinct from sessions_begun_before.session_id
    where
        web_events.customer_id is not null
        and sessions_begun_before.customer_id is null
    group by web_events.customer_id, web_events.session_id

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
