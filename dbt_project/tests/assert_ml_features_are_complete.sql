{#- After imputation nothing the model reads is null: every feature, its scaled value, its
    missing flag and every one-hot column, in both ML marts. One row per offending column. -#}

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

customer_features as (

    select * from {{ ref('customer_features') }}

),

training_examples as (

    select * from {{ ref('training_examples') }}

),

null_counts as (

    {% for mart in ['customer_features', 'training_examples'] -%}
    {% for column in columns -%}
    select
        '{{ mart }}' as mart,
        '{{ column }}' as column_name,
        count(*) - count({{ column }}) as n_nulls
    from {{ mart }}
    {% if not loop.last %}union all{% endif %}
    {% endfor -%}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from null_counts
where n_nulls > 0
