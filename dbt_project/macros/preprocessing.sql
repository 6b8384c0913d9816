{#-
    SQL preprocessing that mirrors scikit-learn: SimpleImputer (mean or median), log1p
    (FunctionTransformer), StandardScaler / MinMaxScaler / the seed's value / (mean + 3 * std),
    and OneHotEncoder(min_frequency, max_categories, handle_unknown='infrequent_if_exist') over
    levels learned from the training population, in fixed slot columns plus `other`. Parameters
    are fitted once into feature_stats and only applied here, so train and serve share them.
-#}

{#- One row holding every fitted parameter as a column, for a cross join. -#}
{% macro feature_stats_wide(stats_relation) %}
    select
        {% for feature in feature_catalog() -%}
        max(impute_value) filter (where feature = '{{ feature.name }}') as {{ feature.name }}__impute,
        max(center) filter (where feature = '{{ feature.name }}') as {{ feature.name }}__center,
        max(scale) filter (where feature = '{{ feature.name }}') as {{ feature.name }}__scale,
        {% endfor -%}
        {% for categorical in onehot_categoricals() -%}
        {% for slot in range(1, onehot_slots() + 1) -%}
        max(level) filter (
            where feature = '{{ categorical }}' and kind = 'onehot_level' and slot = {{ slot }}
        ) as {{ categorical }}__level_{{ slot }}__level,
        {% endfor -%}
        {% endfor -%}
        max(fitted_as_of) as fitted_as_of,
        md5({{ ordered_string_agg(
            "concat_ws('|', feature, level, slot, impute_value, center, scale, is_log1p)",
            "';'",
            "feature, slot, level"
        ) }}) as feature_stats_id,
        count(*) as n_stats
    from {{ stats_relation }}
{% endmacro %}

{#- Sums of doubles in the same bits whatever order DuckDB's threads add the rows in: each row
    rounded to 1e-16 and summed exactly as a decimal (values up to 1e22). A plain avg() or
    stddev_pop() is not associative, so two builds of the same data differed in the last bit,
    and so did feature_stats_id and the model's training_data_sha256. -#}
{% macro exact_sum(expression) -%}
    cast(sum(cast({{ expression }} as decimal(38, 16))) as double)
{%- endmacro %}

{% macro exact_mean(expression) -%}
    ({{ exact_sum(expression) }} / nullif(count({{ expression }}), 0))
{%- endmacro %}

{% macro log1p_if(expression, apply) -%}
    {%- if apply -%}ln(1 + {{ expression }}){%- else -%}{{ expression }}{%- endif -%}
{%- endmacro %}

{#- The preprocessed columns of a relation of raw features, given feature_stats_wide. -#}
{% macro preprocessed_feature_columns(features, stats) %}
    {% for feature in feature_catalog() -%}
    {%- set imputed = 'coalesce(' ~ features ~ '.' ~ feature.name ~ ', ' ~ stats ~ '.' ~ feature.name ~ '__impute)' -%}
    {{ imputed }} as {{ feature.name }},
    ({{ log1p_if(imputed, feature.log1p) }} - {{ stats }}.{{ feature.name }}__center)
        / {{ stats }}.{{ feature.name }}__scale as {{ feature.name }}__scaled,
    {% if feature.imputable -%}
    {{ features }}.{{ feature.name }} is null as {{ feature.name }}_was_missing,
    {% endif -%}
    {% endfor -%}
    {% for categorical in onehot_categoricals() -%}
    {% for slot in range(1, onehot_slots() + 1) -%}
    coalesce(
        cast({{ features }}.{{ categorical }} = {{ stats }}.{{ categorical }}__level_{{ slot }}__level as integer), 0
    ) as {{ categorical }}__level_{{ slot }},
    {% endfor -%}
    {#- Not `not in (levels)`: an empty slot is null, and `x not in (..., null)` is null. #}
    1 - (
        {% for slot in range(1, onehot_slots() + 1) -%}
        coalesce(
            cast({{ features }}.{{ categorical }} = {{ stats }}.{{ categorical }}__level_{{ slot }}__level as integer), 0
        ){% if not loop.last %} + {% endif %}
        {% endfor -%}
    ) as {{ categorical }}__other,
    {% endfor -%}
    cast({{ features }}.is_marketing_opt_in as integer) as is_marketing_opt_in
{% endmacro %}

{#- The fitted_as_of whose feature_stats the marts apply: var stats_as_of, else as_of. -#}
{% macro selected_stats_as_of(snapshot_dates) -%}
    {%- set stats_as_of = date_var('stats_as_of') -%}
    {%- if stats_as_of is not none -%}{{ stats_as_of }}{%- else -%}(select max(as_of_on) from {{ snapshot_dates }}){%- endif -%}
{%- endmacro %}
