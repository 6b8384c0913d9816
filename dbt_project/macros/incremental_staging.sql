{#-
    Incremental staging (DuckDB): a raw table may be a folder of daily or weekly files, and the
    big staging models read again only the keys a run can change.

    raw.files lists every landed file with its size and modification time (land_raw_files);
    raw_history.loaded_files keeps, per staging model, the files it has read, when, and the
    latest row timestamp each held. A model's increment is the rows of files it has not read,
    the rows of files that changed since it read them stamped at most
    var('incremental_lookback_days') before the latest row they held then (a table kept as one
    growing file), and the rows stamped after its last run (rejected then as in the future). It
    deletes the keys those rows carry and rebuilds them from every landed row, so deduplication
    and quarantine see old and new rows together. A file gone from raw_dir rebuilds the model
    whole, and so does a customer forgotten since; `segmart build --full-refresh` always does.
    A row added to a changed file further back than the look-back is not read:
    core.data_reconciliation then fails the build, and --full-refresh reads it.

    Spark builds these models as tables (dbt-spark has no delete for Parquet tables).
-#}

{% macro staging_materialization() %}
    {{ return('incremental' if target.type == 'duckdb' else 'table') }}
{% endmacro %}


{#- The raw row as quarantine keeps it: the contract's columns, without the file it came from. -#}
{% macro raw_record(relation_alias, table_name) %}
    {{- return(adapter.dispatch('raw_record')(relation_alias, table_name)) -}}
{% endmacro %}

{% macro default__raw_record(relation_alias, table_name) -%}
    to_json(struct_pack(
        {%- for column in raw_contract()[table_name].columns -%}
            {{ column }} := {{ relation_alias }}.{{ column }}{{ ", " if not loop.last }}
        {%- endfor -%}
    ))
{%- endmacro %}

{#- Spark leaves null fields out of the object: json_field reads them back as null all the same. -#}
{% macro spark__raw_record(relation_alias, table_name) -%}
    to_json(struct(
        {%- for column in raw_contract()[table_name].columns -%}
            {{ relation_alias }}.{{ column }}{{ ", " if not loop.last }}
        {%- endfor -%}
    ))
{%- endmacro %}


{#- The timestamp of a raw row that places it in time (none: the table has none). -#}
{% macro _increment_stamp(table_name) %}
    {% set stamps = {
        'orders': parse_timestamp('ordered_at'),
        'web_events': 'try_cast(event_at as timestamp)',
        'customers': 'coalesce(' ~ parse_timestamp('updated_at') ~ ', '
            ~ parse_timestamp('created_at') ~ ')',
    } %}
    {{ return(stamps.get(table_name)) }}
{% endmacro %}


{#- The files of these raw tables this model has read, as they were then. -#}
{% macro _files_read_before(tables) -%}
    select file_path, file_size, modified_at, loaded_at, max_stamped_at
    from raw_history.loaded_files
    where
        model_name = '{{ this.identifier }}'
        and table_name in ('{{ tables | join("', '") }}')
{%- endmacro %}


{#- When this model last read its files (null: never, so every file is new). -#}
{% macro last_loaded_at() -%}
    (select max(loaded_at) from raw_history.loaded_files where model_name = '{{ this.identifier }}')
{%- endmacro %}


{#- True when rows this model staged may have left the raw data, so it rebuilds whole: a file
    it read is gone from raw_dir, or a customer was forgotten since (segmart forget deletes
    their staged rows, not the lines of their orders). -#}
{% macro must_rebuild_whole(tables) -%}
    (
        exists (
            select 1 from ({{ _files_read_before(tables) }}) as read_before
            where read_before.file_path not in (select file_path from raw.files)
        )
        or exists (
            select 1 from privacy.forgotten_customers
            where forgotten_at > {{ last_loaded_at() }}
        )
    )
{%- endmacro %}


{#- The files of a table this model read that have changed since, with their latest row then. -#}
{% macro _changed_files(table_name) -%}
    select changed.file_path, read_before.max_stamped_at
    from raw.files as changed
    inner join ({{ _files_read_before([table_name]) }}) as read_before
        on changed.file_path = read_before.file_path
    where
        changed.file_size <> read_before.file_size
        or changed.modified_at <> read_before.modified_at
{%- endmacro %}


{#- Whether a landed row of `table_name` (its file in `file_column`, its timestamp in
    `stamped_at`, none for a table without one) belongs to this run's increment. -#}
{% macro is_in_increment(table_name, file_column, stamped_at=none) -%}
    {%- set lookback = "interval '" ~ var('incremental_lookback_days') ~ "' day" -%}
    (
        {{ file_column }} not in (
            select file_path from ({{ _files_read_before([table_name]) }}) as read_before
        )
        or {{ file_column }} in (
            select changed.file_path from ({{ _changed_files(table_name) }}) as changed
        )
        {%- if stamped_at is not none %}
            and {{ stamped_at }} >= (
                select min(changed.max_stamped_at) from ({{ _changed_files(table_name) }}) as changed
            ) - {{ lookback }}
        or {{ stamped_at }} > {{ last_loaded_at() }}
        {%- endif %}
    )
{%- endmacro %}


{#- The customers whose rows are new this run: their orders, events and touches may have
    been orphans, or placed before a sign-up they now have. -#}
{% macro customers_in_increment() -%}
    select {{ clean_text('customer_id') }} as customer_id
    from {{ source('shop', 'customers') }}
    where {{ is_in_increment('customers', 'source_file', _increment_stamp('customers')) }}
{%- endmacro %}


{#- The orders whose staged row may change this run (see the top of this file). -#}
{% macro order_ids_in_increment() -%}
    select order_id from {{ ref('base_shop__orders') }}
    where
        {{ is_in_increment('orders', 'source_file', 'ordered_at') }}
        or customer_id in ({{ customers_in_increment() }})
{%- endmacro %}


{#- The orders whose lines' staged rows may change this run: their lines are new, or they are. -#}
{% macro order_ids_of_lines_in_increment() -%}
    select order_id from {{ ref('base_shop__order_items') }}
    where {{ is_in_increment('order_items', 'source_file') }}
    union all
    {{ order_ids_in_increment() }}
{%- endmacro %}


{#- The web events whose staged row may change this run. -#}
{% macro event_ids_in_increment() -%}
    select event_id from {{ ref('base_shop__web_events') }}
    where
        {{ is_in_increment('web_events', 'source_file', 'event_at') }}
        or customer_id in ({{ customers_in_increment() }})
{%- endmacro %}


{#- The table in which an incremental run of this model keeps the keys it rebuilds: its
    pre_hook computes them once, its query and post_hook read them. -#}
{% macro _keys_to_restage() -%}
    raw_history.{{ this.identifier }}__keys_to_restage
{%- endmacro %}


{#- Whether this model rebuilds whole (must_rebuild_whole), decided when it is rendered: its
    filters are then plain semi-joins (an `or exists` made DuckDB test every row). -#}
{% macro _rebuilds_whole(tables) %}
    {% if not execute %}{{ return(false) }}{% endif %}
    {{ return(run_query("select " ~ must_rebuild_whole(tables)).columns[0].values()[0]) }}
{% endmacro %}


{#- The staging model's filter: every row on a full build; on an incremental run the rows of
    the keys to rebuild, or every row when it must rebuild whole. -#}
{% macro rows_to_restage(key_column, tables) %}
    {% if not is_incremental() or _rebuilds_whole(tables) %}{{ return('true') }}{% endif %}
    {{ return(key_column ~ " in (select " ~ key_column ~ " from " ~ _keys_to_restage() ~ ")") }}
{% endmacro %}


{#- pre_hook of an incremental staging model. On an incremental run: keep the keys to rebuild
    (`keys_sql`) in a table, log the customers whose staged rows change (`customers_sql`: the
    customers of the keys in that table, before they are deleted), and delete those keys. On a
    full build, or one that must rebuild whole: log that every customer changes (the entries
    before say nothing more) and delete every row. The customer-day aggregates read the log
    (macros/incremental_aggregates.sql). -#}
{% macro delete_keys_to_rebuild(key_column, keys_sql, tables, customers_sql) %}
    {% if target.type != 'duckdb' %}{{ return('') }}{% endif %}
    {% set log = "insert into raw_history.restaged_customers select '" ~ this.identifier ~ "', " %}
    {% if not is_incremental() or _rebuilds_whole(tables) %}
        {{ return(
            "create or replace table " ~ _keys_to_restage() ~ " as select cast(null as varchar) as "
            ~ key_column ~ " where false; delete from raw_history.restaged_customers where"
            ~ " model_name = '" ~ this.identifier ~ "'; " ~ log ~ "null, true, " ~ loaded_at()
            ~ ("; delete from " ~ this if is_incremental() else "")
        ) }}
    {% endif %}
    {{ return(
        "create or replace table " ~ _keys_to_restage() ~ " as select distinct " ~ key_column
        ~ " from (" ~ keys_sql ~ ") as keys_in_increment; "
        ~ log ~ "customer_id, false, " ~ loaded_at() ~ " from (" ~ customers_sql ~ ") as restaged; "
        ~ "delete from " ~ this ~ " where " ~ key_column ~ " in (select " ~ key_column ~ " from "
        ~ _keys_to_restage() ~ ")"
    ) }}
{% endmacro %}


{#- The customers of this model's staged rows whose key is rebuilt this run (an anonymous web
    event has none). -#}
{% macro customers_of_restaged_keys(key_column) -%}
    select distinct customer_id from {{ this }}
    where
        {{ key_column }} in (select {{ key_column }} from {{ _keys_to_restage() }})
        and customer_id is not null
{%- endmacro %}


{#- The customers of the orders whose lines stg_shop__order_items rebuilds: lines carry no
    customer (an order's earlier customer, if it changed, stg_shop__orders logged). -#}
{% macro customers_of_restaged_orders() -%}
    select distinct customer_id from {{ ref('stg_shop__orders') }}
    where order_id in (select order_id from {{ _keys_to_restage() }})
{%- endmacro %}


{#- post_hook: log the customers of the rows an incremental run staged (see
    delete_keys_to_rebuild; a full build logged every customer already). -#}
{% macro log_restaged_customers(customers_sql) %}
    {% if target.type != 'duckdb' %}{{ return('') }}{% endif %}
    {{ return(
        "insert into raw_history.restaged_customers select '" ~ this.identifier
        ~ "', customer_id, false, " ~ loaded_at() ~ " from (" ~ customers_sql ~ ") as restaged"
    ) }}
{% endmacro %}


{#- post_hook: remember the files this build read, as they are now, with their latest row (a
    row stamped in the future is no reference for the look-back). -#}
{% macro record_loaded_files(tables) %}
    {% if target.type != 'duckdb' %}{{ return('') }}{% endif %}
    {% set latest_rows = [] %}
    {% for table_name in tables %}
        {% set stamp = _increment_stamp(table_name) or 'cast(null as timestamp)' %}
        {% do latest_rows.append(
            "select source_file, max(" ~ stamp ~ ") filter (where " ~ stamp ~ " <= "
            ~ loaded_at() ~ ") as max_stamped_at from raw." ~ table_name ~ " group by source_file"
        ) %}
    {% endfor %}
    {{ return(
        "delete from raw_history.loaded_files where model_name = '" ~ this.identifier ~ "';"
        ~ " insert into raw_history.loaded_files select '" ~ this.identifier ~ "',"
        ~ " files.table_name, files.file_path, files.file_size, files.modified_at,"
        ~ " files.loaded_at, latest_rows.max_stamped_at from raw.files as files left join ("
        ~ latest_rows | join(' union all ') ~ ") as latest_rows"
        ~ " on files.file_path = latest_rows.source_file"
        ~ " where files.table_name in ('" ~ tables | join("', '") ~ "')"
    ) }}
{% endmacro %}
