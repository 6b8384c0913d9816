{#- on-run-end: a scoring build (var scoring_only) leaves the training marts out, so the ones
    in the warehouse describe an older build; dropped, `segmart train` asks for a full build
    instead of training on them. -#}
{% macro drop_training_marts_of_scoring_build() %}
    {% if not execute or not var('scoring_only') %}{{ return('') }}{% endif %}
    {% for name in ['training_examples', 'int_customer_snapshots_labelled'] %}
        {% set node = graph.nodes['model.' ~ project_name ~ '.' ~ name] %}
        {% set relation = adapter.get_relation(node.database, node.schema, node.alias) %}
        {% if relation is not none %}
            {% do adapter.drop_relation(relation) %}
        {% endif %}
    {% endfor %}
    {{ return('') }}
{% endmacro %}
