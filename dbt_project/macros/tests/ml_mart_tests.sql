{#- Generic tests of an ML mart (customer_features, training_examples): each mart is tested on
    its own, so a scoring build, which leaves training_examples out, still tests the features
    it scores. -#}

{#- After imputation nothing the model reads is null: every feature, its scaled value, its
    missing flag and every one-hot column. One row per offending column. -#}
{% test ml_features_are_complete(model) %}
{%- set columns = [] -%}
{%- for feature in feature_catalog() -%}
{%- do columns.append(feature.name) -%}
{%- do columns.append(feature.name ~ '__scaled') -%}
{%- if feature.imputable -%}{%- do columns.append(feature.name ~ '_was_missing') -%}{%- endif -%}
{%- endfor -%}
{%- for categorical in onehot_categoricals() -%}
{%- for column in onehot_columns(categorical) -%}
{%- do columns.append(column) -%}
{%- endfor -%}
{%- endfor -%}
{%- do columns.append('is_marketing_opt_in') -%}

with

null_counts as (

    {% for column in columns -%}
    select
        '{{ column }}' as column_name,
        count(*) - count({{ column }}) as n_nulls
    from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from null_counts
where n_nulls > 0
{% endtest %}


{#- Every categorical is one-hot: exactly one of its level columns (including `other`) is 1 per
    row. -#}
{% test onehot_columns_sum_to_one(model) %}
with

row_sums as (

    {% for categorical in onehot_categoricals() -%}
    select
        customer_id,
        '{{ categorical }}' as categorical,
        {% for column in onehot_columns(categorical) -%}
        {{ column }}{% if not loop.last %} + {% endif %}
        {%- endfor %} as n_hot
    from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from row_sums
where n_hot is distinct from 1
{% endtest %}
