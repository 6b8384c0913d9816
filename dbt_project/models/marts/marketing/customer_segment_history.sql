{#- Ephemeral, unlike the folder's tables: a private step of segment_membership_history and
    segment_transitions, not a mart of its own (one row per customer per run would double the
    published file for nothing BI reads directly). -#}
{{ config(materialized='ephemeral') }}

{#- Scoring (`segmart score`, or dbt's predictions models) writes the history; a warehouse
    scored before it existed has none. The marts on it are then empty instead of failing: a
    missing optional input degrades the output. The ref is resolved unconditionally so lineage
    shows it either way. -#}
{%- set history_source = ref('customer_score_history') -%}
{%- set history_relation = load_relation(history_source) -%}

with

score_history as (

    {% if history_relation is not none -%}
    select * from {{ history_source }}
    {%- else -%}
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as date) as as_of,
        cast(null as {{ dbt.type_string() }}) as model_id,
        cast(null as {{ dbt.type_timestamp() }}) as scored_at,
        cast(null as {{ dbt.type_float() }}) as purchase_probability,
        cast(null as {{ dbt.type_float() }}) as predicted_revenue,
        cast(null as {{ dbt.type_int() }}) as segment_id,
        cast(null as {{ dbt.type_string() }}) as segment_name
    where 1 = 0
    {%- endif %}

),

runs as (

    select
        as_of,
        model_id,
        max(scored_at) as scored_at
    from score_history
    group by as_of, model_id

),

-- An as_of scored by several models (a challenger next to the champion) counts once in the
-- timeline: the run that scored it last, as that is what customer_scores then held.
latest_run_per_as_of as (

    select
        as_of,
        model_id,
        scored_at
    from (
        select
            *,
            row_number() over (
                partition by as_of order by scored_at desc, model_id desc
            ) as run_rank
        from runs
    ) as ranked_runs
    where run_rank = 1

),

timeline as (

    select
        as_of,
        model_id,
        scored_at,
        lag(as_of) over (order by as_of) as previous_as_of
    from latest_run_per_as_of

),

final as (

    select
        score_history.customer_id,
        score_history.as_of,
        timeline.previous_as_of,
        score_history.model_id,
        timeline.scored_at,
        score_history.segment_id,
        score_history.segment_name,
        score_history.purchase_probability,
        score_history.predicted_revenue
    from score_history
    inner join timeline
        on score_history.as_of = timeline.as_of
        and score_history.model_id = timeline.model_id

)

select * from final
