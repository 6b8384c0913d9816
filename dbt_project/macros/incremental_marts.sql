{#-
    Incremental marts (DuckDB): a mart that is a function, key by key, of incremental staging
    models rewrites only the keys they rewrote in the same build (raw_history.changed_rows), and
    every row when one of them rewrote every row or was not built in this invocation (a
    `dbt build --select` of the mart alone). Spark builds it as a table.
-#}

{#- The table in which this mart keeps the keys it rewrites: its pre_hook fills it. -#}
{% macro _keys_to_rewrite() -%}
    raw_history.{{ this.identifier }}__keys_to_rewrite
{%- endmacro %}


{#- pre_hook: keep the keys `models` rewrote this build, record them (record_changed_rows) and
    delete their rows; on a full build or a rewrite of every row, record that. -#}
{% macro delete_keys_to_rewrite(models, key_column) %}
    {% if target.type != 'duckdb' %}{{ return('') }}{% endif %}
    {% if not is_incremental() %}{{ return(record_changed_rows()) }}{% endif %}
    {% set keys_sql = keys_changed_by_this_build(models, key_column) %}
    {% if keys_sql is none %}{{ return(record_changed_rows() ~ "; delete from " ~ this) }}{% endif %}
    {{ return(
        "create or replace table " ~ _keys_to_rewrite() ~ " as " ~ keys_sql ~ "; "
        ~ record_changed_rows(_keys_to_rewrite(), key_column) ~ "; delete from " ~ this
        ~ " where " ~ key_column ~ " in (select " ~ key_column ~ " from " ~ _keys_to_rewrite()
        ~ ")"
    ) }}
{% endmacro %}


{#- The mart's filter on its inputs' key column: every row on a full build or a rewrite of
    every row, else the keys its pre_hook kept. -#}
{% macro keys_to_rewrite(key_column, models) %}
    {% if not is_incremental() or keys_changed_by_this_build(models, key_column) is none %}
        {{ return('true') }}
    {% endif %}
    {{ return(key_column ~ " in (select " ~ key_column ~ " from " ~ _keys_to_rewrite() ~ ")") }}
{% endmacro %}
