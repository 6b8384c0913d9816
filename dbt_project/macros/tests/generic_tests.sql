{#- The few dbt_utils-style generic tests segmart needs (the Hub is out of reach). -#}

{% test unique_combination_of_columns(model, combination_of_columns) %}
    select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{% test expression_is_true(model, expression) %}
    select * from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}

{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
    select * from {{ model }}
    where {{ column_name }} is not null
        and (
            false
            {% if min_value is not none %} or {{ column_name }} < {{ min_value }} {% endif %}
            {% if max_value is not none %} or {{ column_name }} > {{ max_value }} {% endif %}
        )
{% endtest %}

{% test not_empty(model) %}
    select 'empty' as problem
    where not exists (select 1 from {{ model }})
{% endtest %}

{#- Fails when the model is empty although `condition` (a boolean SQL expression, typically
    `exists (...)`) holds: for models that may be empty only for a known reason. -#}
{% test not_empty_when(model, condition) %}
    select 'empty although the condition holds' as problem
    where not exists (select 1 from {{ model }})
        and ({{ condition }})
{% endtest %}
