{{
    config(
        materialized='incremental',
        unique_key='fitted_as_of',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{#- Fitted only when stats_as_of is unset or equals as_of: scoring a later as_of with an older
    model reuses that model's rows instead of refitting (no train/serve skew). -#}
{%- set stats_as_of = date_var('stats_as_of') -%}
{%- set as_of = date_var('as_of') -%}
{%- set fit_now = stats_as_of is none or stats_as_of == as_of -%}
{%- set strategy = var('imputation_strategy') -%}
{%- set scaler = var('scaler') -%}
{%- if strategy not in ('mean', 'median') -%}
    {%- do exceptions.raise_compiler_error("var imputation_strategy must be mean or median, got: " ~ strategy) -%}
{%- endif -%}
{%- if scaler not in ('zscore', 'minmax', 'seed_norm') -%}
    {%- do exceptions.raise_compiler_error("var scaler must be zscore, minmax or seed_norm, got: " ~ scaler) -%}
{%- endif -%}

with

featurized as (

    select * from {{ ref('int_customer_snapshots_featurized') }}

),

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}

),

training_population as (

    select * from featurized
    where is_training

),

fitted_as_of as (

    select max(as_of_on) as fitted_as_of from snapshot_dates

),

impute_values as (

    select
        {% for feature in feature_catalog() %}
        -- A feature never observed in training imputes 0 (SimpleImputer keep_empty_features=True).
        coalesce(
            {% if strategy == 'median' %}median({{ feature.name }})
            {%- else %}{{ exact_mean(feature.name) }}{% endif %},
            0
        ) as {{ feature.name }},
        {% endfor %}
        count(*) as n_rows,
    from training_population

),

-- LT02 wants the tags of a Jinja loop that forms a whole select list dedented: off for these.
-- noqa: disable=LT02
transformed as (

    select
        {%- for feature in feature_catalog() %}
        {%- set imputed = 'coalesce(training_population.' ~ feature.name
            ~ ', impute_values.' ~ feature.name ~ ')' %}
        {{ log1p_if(imputed, feature.log1p) }} as {{ feature.name }},
        {%- endfor %}
    from training_population
    cross join impute_values

),

means as (

    select
        {%- for feature in feature_catalog() %}
        {{ exact_mean(feature.name) }} as {{ feature.name }},
        {%- endfor %}
    from transformed

),

-- Two passes (mean, then squared deviations), both summed exactly: see exact_sum.
moments as (

    select
        {%- for feature in feature_catalog() %}
        {%- set deviation = 'power(transformed.' ~ feature.name
            ~ ' - means.' ~ feature.name ~ ', 2)' %}
        any_value(means.{{ feature.name }}) as {{ feature.name }}__mean,
        sqrt({{ exact_sum(deviation) }} / nullif(count(transformed.{{ feature.name }}), 0))
            as {{ feature.name }}__std_pop,
        sqrt({{ exact_sum(deviation) }} / nullif(count(transformed.{{ feature.name }}) - 1, 0))
            as {{ feature.name }}__std_samp,
        min(transformed.{{ feature.name }}) as {{ feature.name }}__min,
        max(transformed.{{ feature.name }}) as {{ feature.name }}__max,
        {%- endfor %}
    from transformed
    cross join means

),
-- noqa: enable=LT02

numeric_stats as (

    {% for feature in feature_catalog() -%}
    {%- set m = 'moments.' ~ feature.name -%}
    select
        '{{ feature.name }}' as feature,
        'numeric' as kind,
        cast(null as varchar) as level,
        {{ feature.log1p }} as is_log1p,
        impute_values.{{ feature.name }} as impute_value,
        {% if scaler == 'zscore' -%}
        {{ m }}__mean as center,
        case
            when coalesce({{ m }}__std_pop, 0) = 0 then 1
            else {{ m }}__std_pop
        end as scale,
        {%- elif scaler == 'minmax' -%}
        {{ m }}__min as center,
        case
            when coalesce({{ m }}__max - {{ m }}__min, 0) = 0 then 1
            else {{ m }}__max - {{ m }}__min
        end as scale,
        {%- else -%}
        0.0 as center,
        case
            when coalesce({{ m }}__mean + 3 * {{ m }}__std_samp, 0) = 0 then 1
            else {{ m }}__mean + 3 * {{ m }}__std_samp
        end as scale,
        {%- endif %}
        cast(null as double) as training_share,
    from impute_values
    cross join moments
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

level_stats as (

    {% for categorical, levels in categorical_levels().items() -%}
    {% for level in levels + ['other'] -%}
    select
        '{{ categorical }}' as feature,
        'onehot_level' as kind,
        '{{ level }}' as level,
        false as is_log1p,
        cast(null as double) as impute_value,
        cast(null as double) as center,
        cast(null as double) as scale,
        {% if level == 'other' -%}
        avg(
            cast(
                {{ categorical }} not in (
                    '{{ levels | join("', '") }}'  -- noqa: LT05
                ) as double
            )
        )
        {%- else -%}
        avg(cast({{ categorical }} = '{{ level }}' as double))
        {%- endif %} as training_share,
    from training_population
    {% if not loop.last %}union all{% endif %}
    {% endfor -%}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        fitted_as_of.fitted_as_of,
        stats.feature,
        stats.kind,
        stats.level,
        stats.is_log1p,
        stats.impute_value,
        stats.center,
        stats.scale,
        stats.training_share,
        '{{ strategy }}' as imputation_strategy,
        '{{ scaler }}' as scaler,
        (select impute_values.n_rows from impute_values) as n_training_rows,
    from (
        select * from numeric_stats
        union all by name
        select * from level_stats
    ) as stats
    cross join fitted_as_of

)

select * from final
{% if not fit_now %}where false{% endif %}
