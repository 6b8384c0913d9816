{#- Every categorical is one-hot: exactly one of its level columns (including `other`) is 1 per
    row, in both ML marts. -#}

with

customer_features as (

    select * from {{ ref('customer_features') }}

),

training_examples as (

    select * from {{ ref('training_examples') }}

),

row_sums as (

    {% for mart in ['customer_features', 'training_examples'] -%}
    {% for categorical in onehot_categoricals() -%}
    select
        '{{ mart }}' as mart,
        customer_id,
        '{{ categorical }}' as categorical,
        {% for column in onehot_columns(categorical) -%}
        {{ column }}{% if not loop.last %} + {% endif %}
        {%- endfor %} as n_hot
    from {{ mart }}
    {% if not loop.last %}union all{% endif %}
    {% endfor -%}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from row_sums
where n_hot is distinct from 1
