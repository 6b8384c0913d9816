{#- Incremental and never fully refreshed: the history of past runs cannot be rebuilt. Each
    (as_of, model_id) slice is replaced whole, as `segmart score` replaces it (on Spark by
    overwriting its partition: macros/cross_engine.sql). -#}
{{
    config(
        materialized='incremental',
        unique_key=['as_of', 'model_id'],
        incremental_strategy=slice_overwrite_strategy(),
        partition_by=slice_partitions(['as_of', 'model_id']),
        full_refresh=false,
        on_schema_change='append_new_columns'
    )
}}

with

scores as (

    select * from {{ ref('customer_scores') }}

),

history_slice as (

    select
        customer_id,
        as_of,
        model_id,
        cast({{ dbt.current_timestamp() }} as timestamp) as scored_at,
        purchase_probability,
        predicted_revenue,
        segment_id,
        segment_name
    from scores

)

select * from history_slice
