{#-
    The raw data contract, kept in one place: the var `raw_contract` in dbt_project.yml (the
    Python landing step, ml/ingest, reads the same var).
-#}
{% macro raw_contract() %}
    {{ return(var('raw_contract')) }}
{% endmacro %}
