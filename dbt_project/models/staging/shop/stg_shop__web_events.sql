{#- Incremental on DuckDB: a run rebuilds only the events its new raw rows touch
    (macros/incremental_staging.sql). -#}
{% set read_tables = ['web_events', 'customers'] %}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_keys_to_restage('event_id', " ~ read_tables
        ~ ", customers_of_restaged_keys('event_id', 'event_on'), ref('base_shop__web_events'),"
        ~ " 'cast(event_at as date)') }}",
    post_hook="{{ record_loaded_files(" ~ read_tables ~ ") }}"
) }}

with

validated as (

    select * from {{ ref('base_shop__web_events') }}
    where
        rejection_reason is null
        and {{ rows_to_restage('event_id', read_tables, event_ids_in_increment) }}

),

deduplicated as (

    select
        *,
        count(*) over (partition by event_id) as n_loaded_copies
    from validated
    qualify
        row_number() over (
            partition by event_id
            order by event_at, customer_id, session_id, event_type, product_id
        ) = 1

),

final as (

    select
        -- ids
        event_id,
        customer_id,
        session_id,
        product_id,

        -- strings
        event_type,

        -- timestamps
        event_at,
        cast(event_at as date) as event_on,

        -- lineage
        n_loaded_copies

    from deduplicated

)

select * from final
