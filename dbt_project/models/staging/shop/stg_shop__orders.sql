{#- Incremental on DuckDB: a run rebuilds only the orders its new raw rows touch
    (macros/incremental_staging.sql). -#}
{% set read_tables = ['orders', 'customers'] %}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_keys_to_restage('order_id', " ~ read_tables
        ~ ", customers_of_restaged_keys('order_id', 'ordered_on'), ref('base_shop__orders'),"
        ~ " 'cast(ordered_at as date)') }}",
    post_hook="{{ record_loaded_files(" ~ read_tables ~ ") }}"
) }}

with

validated as (

    select * from {{ ref('base_shop__orders') }}
    where
        rejection_reason is null
        and {{ rows_to_restage('order_id', read_tables, order_ids_in_increment) }}

),

-- Exact re-deliveries repeat an order: keep one per order_id, deterministically.
deduplicated as (

    select
        *,
        count(*) over (partition by order_id) as n_loaded_copies
    from validated
    qualify
        row_number() over (
            partition by order_id
            order by ordered_at, customer_id, status, order_total, discount_total, channel
        ) = 1

),

final as (

    select
        -- ids
        order_id,
        customer_id,

        -- strings
        status,
        channel,

        -- numerics
        order_total,
        discount_total,

        -- booleans
        status <> 'cancelled' as is_counted_purchase,

        -- timestamps
        ordered_at,
        cast(ordered_at as date) as ordered_on,

        -- lineage
        n_loaded_copies

    from deduplicated

)

select * from final
