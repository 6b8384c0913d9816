{#- The champion's scores computed in SQL: the engine scores, no customer leaves it. Built on
    Spark, and on DuckDB with --vars '{scorer: sql}' (Python scores there by default: see
    var scorer). The scoring SQL is read from predictions.champion_scoring_sql when the model
    runs (macros/champion_scoring.sql). -#}
{{ config(enabled=(target.type == 'spark' or var('scorer') == 'sql')) }}

{%- set scoring = champion_scoring() %}

with

champion_features as (

    select * from {{ ref('champion_features') }}

),

scored as (

    {{ champion_scores_select(scoring, 'champion_features') }}

),

snapshot as (

    select max(as_of) as as_of from champion_features

),

scores as (

    select
        scored.customer_id,
        snapshot.as_of,
        scored.model_id,
        cast(scored.purchase_probability as double) as purchase_probability,
        cast(scored.propensity_decile as integer) as propensity_decile,
        cast(scored.segment_id as integer) as segment_id,
        scored.segment_name
    from scored
    cross join snapshot

)

select * from scores
