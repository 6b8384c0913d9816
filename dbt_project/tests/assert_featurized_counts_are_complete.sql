{#- The features feature_catalog() marks as never missing (counts, sums, tenure) are never null
    and never negative in int_customer_snapshots_featurized: one row per offending value. -#}

with

featurized as (

    select * from {{ ref('int_customer_snapshots_featurized') }}

),

offending_values as (

    {% for feature in feature_catalog() if not feature.imputable -%}
    select
        customer_id,
        snapshot_on,
        '{{ feature.name }}' as feature,
        {{ feature.name }} as feature_value
    from featurized
    where {{ feature.name }} is null or {{ feature.name }} < 0
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from offending_values
