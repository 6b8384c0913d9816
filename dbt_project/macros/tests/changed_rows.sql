{#-
    Data tests that read only the rows a build changed. A build of an incremental model
    (staging, the customer-day aggregates) rewrites the rows of some keys and leaves the others
    as the build before tested them. A test that can only fail among the rewritten rows (one
    row per key, when every row of a key is rewritten together) need not read the rest: it
    declares `config: {where: "__rows_changed_by_this_build__"}`.

    The model's pre_hook records, in raw_history.changed_rows, the table that holds the keys it
    rewrites (key_table, key_column), or none when it rewrites every row. The test reads that
    record only when the same dbt invocation wrote it, so a test run on its own, or after a
    build that failed, reads every row.
-#}

{#- pre_hook: record which rows this build of the model changes (`key_table` none: every row). -#}
{% macro record_changed_rows(key_table=none, key_column=none) %}
    {% if target.type != 'duckdb' %}{{ return('') }}{% endif %}
    {{ return(
        "delete from raw_history.changed_rows where model_name = '" ~ this.identifier ~ "';"
        ~ " insert into raw_history.changed_rows values ('" ~ this.identifier ~ "', '"
        ~ invocation_id ~ "', "
        ~ ("'" ~ key_table ~ "', '" ~ key_column ~ "'" if key_table else "null, null") ~ ")"
    ) }}
{% endmacro %}


{#- The filter of the rows this invocation's build of `relation` changed: 'true' (every row)
    unless this invocation recorded its keys. -#}
{% macro rows_changed_by_this_build(relation) %}
    {% set records = _changed_rows_records([relation.identifier]) %}
    {% if records | length == 0 or records[0]['key_table'] is none %}{{ return('true') }}{% endif %}
    {% set key_column = records[0]['key_column'] %}
    {{ return(key_column ~ " in (select " ~ key_column ~ " from " ~ records[0]['key_table'] ~ ")") }}
{% endmacro %}


{#- The records this invocation's builds of `models` wrote in raw_history.changed_rows (none
    outside a DuckDB build). -#}
{% macro _changed_rows_records(models) %}
    {% if not execute or target.type != 'duckdb'
        or adapter.get_relation(target.database, 'raw_history', 'changed_rows') is none %}
        {{ return([]) }}
    {% endif %}
    {{ return(run_query(
        "select key_table, key_column from raw_history.changed_rows where invocation_id = '"
        ~ invocation_id ~ "' and model_name in ('" ~ models | join("', '") ~ "')"
    ).rows) }}
{% endmacro %}


{#- dbt's `where` config, with __rows_changed_by_this_build__ resolved when the test runs (a
    `where` is rendered when the project is parsed). -#}
{% macro get_where_subquery(relation) -%}
    {% set where = config.get('where') %}
    {% if not where %}{{ return(relation) }}{% endif %}
    {% if '__rows_changed_by_this_build__' in where %}
        {% set where = where | replace(
            '__rows_changed_by_this_build__', rows_changed_by_this_build(relation)
        ) %}
    {% endif %}
    {{ return("(select * from " ~ relation ~ " where " ~ where ~ ") dbt_subquery") }}
{%- endmacro %}


{#- The keys (`key_column`) of the rows `models` rewrote in this invocation, as a query; none
    when one of them rewrote every row (no key column) or was not built in it. -#}
{% macro keys_changed_by_this_build(models, key_column) %}
    {% set records = _changed_rows_records(models) %}
    {% if records | length < models | length %}{{ return(none) }}{% endif %}
    {% set queries = [] %}
    {% for record in records %}
        {% if record['key_column'] != key_column %}{{ return(none) }}{% endif %}
        {% do queries.append("select " ~ key_column ~ " from " ~ record['key_table']) %}
    {% endfor %}
    {{ return(queries | join(' union ')) }}
{% endmacro %}
