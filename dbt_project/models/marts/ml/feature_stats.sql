{#- Incremental, unlike the folder's tables: the statistics fitted at each earlier as_of must
    survive later builds, since scoring with a model reuses the ones it was trained with. -#}
{{
    config(
        materialized='incremental',
        unique_key='fitted_as_of',
        incremental_strategy=slice_overwrite_strategy(),
        partition_by=slice_partitions(['fitted_as_of']),
        on_schema_change='fail',
    )
}}

{#- Fitted only when stats_as_of is unset or equals as_of: scoring a later as_of with an older
    model reuses that model's rows instead of refitting (no train/serve skew). Never in a
    scoring build, which has no training population to fit on. -#}
{%- set stats_as_of = date_var('stats_as_of') -%}
{%- set as_of = date_var('as_of') -%}
{%- set fit_now = not var('scoring_only')
    and (stats_as_of is none or stats_as_of == as_of) -%}
{%- set strategy = var('imputation_strategy') -%}
{%- set scaler = var('scaler') -%}
{%- if strategy not in ('mean', 'median') -%}
    {%- do exceptions.raise_compiler_error("var imputation_strategy must be mean or median, got: " ~ strategy) -%}
{%- endif -%}
{%- if scaler not in ('zscore', 'minmax', 'seed_norm') -%}
    {%- do exceptions.raise_compiler_error("var scaler must be zscore, minmax or seed_norm, got: " ~ scaler) -%}
{%- endif -%}
{#- Per feature, the scaler's center and spread (the scale, unless it is 0 or unknown). -#}
{%- set centers, spreads = {}, {} -%}
{%- for feature in feature_catalog() -%}
{%- set m = 'moments.' ~ feature.name -%}
{%- if scaler == 'zscore' -%}
{%- do centers.update({feature.name: m ~ '__mean'}) -%}
{%- do spreads.update({feature.name: m ~ '__std_pop'}) -%}
{%- elif scaler == 'minmax' -%}
{%- do centers.update({feature.name: m ~ '__min'}) -%}
{%- do spreads.update({feature.name: m ~ '__max - ' ~ m ~ '__min'}) -%}
{%- else -%}
{%- do centers.update({feature.name: '0.0'}) -%}
{%- do spreads.update({feature.name: m ~ '__mean + 3 * ' ~ m ~ '__std_samp'}) -%}
{%- endif -%}
{%- endfor -%}

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
        count(*) as n_rows
    from training_population

),

-- LT02 wants the tags of a Jinja loop that forms a whole select list dedented: off for these.
-- noqa: disable=LT02
transformed as (

    select
        {%- for feature in feature_catalog() %}
        {%- set imputed = 'coalesce(training_population.' ~ feature.name
            ~ ', impute_values.' ~ feature.name ~ ')' %}
        {{ log1p_if(imputed, feature.log1p) }} as {{ feature.name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from training_population
    cross join impute_values

),

means as (

    select
        {%- for feature in feature_catalog() %}
        {{ exact_mean(feature.name) }} as {{ feature.name }}{{ ',' if not loop.last }}
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
        max(transformed.{{ feature.name }}) as {{ feature.name }}__max{{ ',' if not loop.last }}
        {%- endfor %}
    from transformed
    cross join means

),
-- noqa: enable=LT02

numeric_features as (

    {% for feature in feature_catalog() -%}
    select
        '{{ feature.name }}' as feature,
        {{ feature.log1p }} as is_log1p
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),


-- One row per feature, its parameters picked out of the one-row aggregates: one scan of them
-- (Spark recomputes a CTE at every reference; a union branch per feature meant 29 scans).
-- noqa: disable=LT02
numeric_parameters as (

    select
        numeric_features.feature,
        numeric_features.is_log1p,
        case numeric_features.feature
            {%- for feature in feature_catalog() %}
            when '{{ feature.name }}' then impute_values.{{ feature.name }}
            {%- endfor %}
        end as impute_value,
        case numeric_features.feature
            {%- for feature in feature_catalog() %}
            when '{{ feature.name }}' then {{ centers[feature.name] }}
            {%- endfor %}
        end as center,
        case numeric_features.feature
            {%- for feature in feature_catalog() %}
            when '{{ feature.name }}'
                then {{ spreads[feature.name] }}
            {%- endfor %}
        end as spread
    from numeric_features
    cross join impute_values
    cross join moments

),
-- noqa: enable=LT02

numeric_stats as (

    select
        feature,
        'numeric' as kind,
        cast(null as {{ dbt.type_string() }}) as level,
        cast(null as integer) as slot,
        is_log1p,
        impute_value,
        center,
        case when coalesce(spread, 0) = 0 then 1 else spread end as scale,
        cast(null as double) as training_share
    from numeric_parameters

),

-- The one-hot levels as scikit-learn's OneHotEncoder(min_frequency=onehot_min_share,
-- max_categories=onehot_max_levels + 1) learns them: a level is frequent when its count is at
-- least n x min_share; of those, the onehot_max_levels most frequent are kept. Ties go as in
-- scikit-learn (a stable sort of the sorted levels by count): the level later in code-point
-- order wins, so slot numbers follow (count desc, level desc).
level_counts as (

    {% for categorical in onehot_categoricals() -%}
    select
        '{{ categorical }}' as feature,
        {{ categorical }} as level,
        count(*) as n_level_rows
    from training_population
    where {{ categorical }} is not null
    group by 1, 2
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

ranked_levels as (

    select
        level_counts.feature,
        level_counts.level,
        level_counts.n_level_rows,
        row_number() over (
            partition by level_counts.feature
            order by level_counts.n_level_rows desc, level_counts.level desc
        ) as frequency_rank
    from level_counts
    cross join impute_values
    where level_counts.n_level_rows >= impute_values.n_rows * {{ onehot_min_share() }}

),

learned_levels as (

    select
        ranked_levels.feature,
        ranked_levels.level,
        ranked_levels.frequency_rank as slot,
        ranked_levels.n_level_rows,
        ranked_levels.n_level_rows / impute_values.n_rows as training_share
    from ranked_levels
    cross join impute_values
    where ranked_levels.frequency_rank <= {{ onehot_max_levels() }}

),

categoricals as (

    {% for categorical in onehot_categoricals() -%}
    select '{{ categorical }}' as feature
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

-- The rest (infrequent levels, and at scoring levels never seen in training): level null.
other_levels as (

    select
        categoricals.feature,
        cast(null as {{ dbt.type_string() }}) as level,
        cast(null as integer) as slot,
        coalesce(
            (any_value(impute_values.n_rows) - coalesce(sum(learned_levels.n_level_rows), 0))
            / nullif(any_value(impute_values.n_rows), 0),
            0
        ) as training_share
    from categoricals
    cross join impute_values
    left join learned_levels
        on categoricals.feature = learned_levels.feature
    group by 1

),

level_stats as (

    select
        feature,
        'onehot_level' as kind,
        level,
        cast(slot as integer) as slot,
        false as is_log1p,
        cast(null as double) as impute_value,
        cast(null as double) as center,
        cast(null as double) as scale,
        cast(training_share as double) as training_share
    from learned_levels
    union all
    select
        feature,
        'onehot_level' as kind,
        level,
        slot,
        false as is_log1p,
        cast(null as double) as impute_value,
        cast(null as double) as center,
        cast(null as double) as scale,
        cast(training_share as double) as training_share
    from other_levels

),

final as (

    select
        fitted_as_of.fitted_as_of,
        stats.feature,
        stats.kind,
        stats.level,
        stats.slot,
        stats.is_log1p,
        stats.impute_value,
        stats.center,
        stats.scale,
        stats.training_share,
        '{{ strategy }}' as imputation_strategy,
        '{{ scaler }}' as scaler,
        (select impute_values.n_rows from impute_values) as n_training_rows
    from (
        select * from numeric_stats
        union all
        select * from level_stats
    ) as stats
    cross join fitted_as_of

)

select * from final
{% if not fit_now %}where false{% endif %}
