{#- Incremental on DuckDB: a run rebuilds the lines of the orders its new raw rows touch, the
    lines' own or their order's (macros/incremental_staging.sql). -#}
{% set read_tables = ['order_items', 'orders', 'customers'] %}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_keys_to_restage('order_id', " ~ read_tables
        ~ ", customers_of_restaged_orders()) }}",
    post_hook="{{ record_loaded_files(" ~ read_tables ~ ") }}"
) }}
-- depends_on: {{ ref('base_shop__orders') }}
-- depends_on: {{ ref('stg_shop__orders') }}

with

validated as (

    select * from {{ ref('base_shop__order_items') }}
    where
        rejection_reason is null
        and {{ rows_to_restage('order_id', read_tables, order_ids_of_lines_in_increment) }}

),

-- Order lines carry no key of their own: an exact repeat of a line is a re-delivery.
deduplicated as (

    select
        order_id,
        product_id,
        quantity,
        unit_price,
        count(*) as n_loaded_copies
    from validated
    group by order_id, product_id, quantity, unit_price

),

final as (

    select
        -- ids
        md5(concat_ws('|', order_id, product_id, quantity, unit_price)) as order_item_id,
        order_id,
        product_id,

        -- numerics
        quantity,
        unit_price,
        quantity * unit_price as line_total,

        -- lineage
        n_loaded_copies

    from deduplicated

)

select * from final
