{#- segment_profiles on Spark: the sums of ml/segments/profiles.py (SegmentSums.profiles) in SQL,
    over the SQL scores. The Python model of the same name (DuckDB only, disabled on Spark in
    dbt_project.yml) adds a description from the archetype of the champion's artifact, which
    the scoring SQL does not carry: null here. -#}
{{ config(enabled=(target.type == 'spark')) }}

{#- ml/segments/profiles.py's PROFILE_FEATURES; a mean skips the rows where it was imputed. -#}
{%- set profile_features = [
    'days_since_last_order', 'n_orders', 'n_orders_365d', 'revenue', 'avg_order_value',
    'tenure_days', 'discount_share', 'n_sessions_90d', 'n_product_views_90d',
    'days_since_last_visit'
] -%}
{%- set imputable = feature_catalog() | selectattr('imputable') | map(attribute='name') | list -%}

with

customer_scores as (

    select * from {{ ref('customer_scores') }}

),

champion_features as (

    select * from {{ ref('champion_features') }}

),

scored_features as (

    select
        customer_scores.segment_id,
        customer_scores.segment_name,
        customer_scores.model_id,
        customer_scores.as_of,
        customer_scores.purchase_probability,
        {% for feature in profile_features -%}
        {%- if feature in imputable -%}
        case when not champion_features.{{ feature }}_was_missing
            then champion_features.{{ feature }}
        end as {{ feature }},
        {%- else -%}
        champion_features.{{ feature }},
        {%- endif %}
        {% endfor -%}
        champion_features.days_since_last_order_was_missing as never_ordered
    from customer_scores
    inner join champion_features
        on customer_scores.customer_id = champion_features.customer_id

),

aggregated_to_segments as (

    select
        segment_id,
        min(segment_name) as segment_name,
        min(model_id) as model_id,
        max(as_of) as as_of,
        count(*) as n_customers,
        {{ exact_sum('purchase_probability') }} as purchase_probability,
        count(*) filter (where never_ordered) as n_never_ordered,
        {% for feature in profile_features -%}
        {{ exact_mean(feature) }} as mean_{{ feature }},
        {% endfor -%}
        coalesce({{ exact_sum('revenue') }}, 0) as revenue
    from scored_features
    group by segment_id

),

final as (

    select
        cast(segment_id as integer) as segment_id,
        segment_name,
        cast(null as {{ dbt.type_string() }}) as description,
        cast(n_customers as bigint) as n_customers,
        cast(n_customers / sum(n_customers) over () as double) as share,
        cast(revenue / greatest(sum(revenue) over (), 1e-12) as double) as revenue_share,
        cast(purchase_probability / n_customers as double) as mean_purchase_probability,
        cast(n_never_ordered / n_customers as double) as never_ordered_share,
        {% for feature in profile_features -%}
        cast(mean_{{ feature }} as double) as mean_{{ feature }},
        {% endfor -%}
        model_id,
        as_of
    from aggregated_to_segments

)

select * from final
