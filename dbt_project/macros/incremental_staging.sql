{#-
    Incremental staging (DuckDB): a raw table may be a folder of daily or weekly files, and the
    big staging models read again only the keys a run can change.

    raw.files lists every landed file with its size and modification time (land_raw_files);
    raw_history.loaded_files keeps, per staging model, the files it has read, when, and the
    latest row timestamp each held. A model's increment is the rows of files it has not read,
    the rows of files that changed since it read them stamped at most
    var('incremental_lookback_days') before the latest row they held then (a table kept as one
    growing file), and the rows stamped after its last run (rejected then as in the future). It
    deletes the keys those rows carry and rebuilds them from every landed row that holds one, so
    deduplication and quarantine see old and new rows together. The increment and the files
    that hold its keys are found from the raw columns alone, when the model renders; the base
    view's joins then run for the rows of those files only. A file gone from raw_dir rebuilds the model
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


{#- Values as an SQL list of string literals. -#}
{% macro _literal_list(values) -%}
    ({% for value in values -%}
        '{{ value | replace("'", "''") }}'{{ ", " if not loop.last }}
    {%- endfor %})
{%- endmacro %}


{#- The files of these raw tables this model has read, as they were then. -#}
{% macro _files_read_before(tables) -%}
    select file_path, file_size, modified_at, loaded_at, max_stamped_at, latest_stamped_at
    from raw_history.loaded_files
    where
        model_name = '{{ this.identifier }}'
        and table_name in ('{{ tables | join("', '") }}')
{%- endmacro %}


{#- The landed files of these raw tables that this model has not read (is_new), or that have
    changed since it read them (with their latest row then). -#}
{% macro _new_or_changed_files(tables) -%}
    select
        files.table_name,
        files.file_path,
        read_before.file_path is null as is_new,
        read_before.max_stamped_at
    from raw.files as files
    left join ({{ _files_read_before(tables) }}) as read_before
        on files.file_path = read_before.file_path
    where
        files.table_name in ('{{ tables | join("', '") }}')
        and (
            read_before.file_path is null
            or files.file_size <> read_before.file_size
            or files.modified_at <> read_before.modified_at
        )
{%- endmacro %}


{#- The files of a table this model read that have changed since, with their latest row then. -#}
{% macro _changed_files(table_name) -%}
    select file_path, max_stamped_at from ({{ _new_or_changed_files([table_name]) }}) as files
    where not is_new
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


{#- Whether a raw row of `table_name` (its timestamp `stamped_at`, none for a table without
    one) belongs to this run's increment (see the top of this file). The files are queried
    when the model renders and written as literal lists: only those reach the Parquet scan,
    which then skips the files it does not need. -#}
{% macro is_in_increment(table_name, stamped_at=none) -%}
    {%- if not execute %}{{ return('true') }}{% endif -%}
    {%- set files = run_query(_new_or_changed_files([table_name])) -%}
    {%- set new_files, changed_files, changed_since = [], [], [] -%}
    {%- for file in files.rows -%}
        {%- do (new_files if file['is_new'] else changed_files).append(file['file_path']) -%}
        {%- if not file['is_new'] and file['max_stamped_at'] is not none -%}
            {%- do changed_since.append(file['max_stamped_at']) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set parts = [] -%}
    {%- if new_files %}{% do parts.append('source_file in ' ~ _literal_list(new_files)) %}{% endif -%}
    {%- if changed_files -%}
        {%- set late_rows = '' -%}
        {#- When a changed file's rows had no timestamp then, every changed file is read whole. -#}
        {%- if stamped_at is not none and changed_since | length == changed_files | length -%}
            {%- set late_rows = " and " ~ stamped_at ~ " >= cast('" ~ changed_since | min
                ~ "' as timestamp) - interval '" ~ var('incremental_lookback_days') ~ "' day" -%}
        {%- endif -%}
        {%- do parts.append('(source_file in ' ~ _literal_list(changed_files) ~ late_rows ~ ')') -%}
    {%- endif -%}
    {%- if stamped_at is not none %}
        {%- set stamped_later = _files_with_rows_after_last_read(table_name) -%}
        {%- if stamped_later -%}
            {%- do parts.append('(source_file in ' ~ _literal_list(stamped_later) ~ ' and '
                ~ stamped_at ~ ' > ' ~ last_loaded_at() ~ ')') -%}
        {%- endif -%}
    {%- endif -%}
    {{ return('(' ~ (parts | join(' or ') or 'false') ~ ')') }}
{%- endmacro %}


{#- The files of `table_name` this model read that may hold a row stamped after its last run:
    their latest row then was after it (none are unless rows were in the future), or was not
    recorded (a warehouse from before latest_stamped_at). Scanning only these, not every row's
    timestamp, took the increment of a week of web events at M from 3.4 s to 0.2 s. -#}
{% macro _files_with_rows_after_last_read(table_name) %}
    {{ return(run_query(
        "select file_path from (" ~ _files_read_before([table_name]) ~ ") as read_before"
        ~ " where latest_stamped_at is null or latest_stamped_at > " ~ last_loaded_at()
    ).columns[0].values()) }}
{% endmacro %}


{#- The customers whose rows are new this run: their orders, events and touches may have
    been orphans, or placed before a sign-up they now have. -#}
{% macro customers_in_increment() -%}
    select {{ clean_text('customer_id') }} as customer_id
    from {{ source('shop', 'customers') }}
    where {{ is_in_increment('customers', _increment_stamp('customers')) }}
{%- endmacro %}


{#- The keys of the raw rows of `table_name` in this run's increment, or of its customers'.
    Read from the raw table, not the base view: its joins would run for every row. -#}
{% macro _keys_in_increment(table_name, key_column) -%}
    select {{ clean_text(key_column) }} as {{ key_column }} from {{ source('shop', table_name) }}
    where {{ is_in_increment(table_name, _increment_stamp(table_name)) }}
    union all
    select {{ clean_text(key_column) }} as {{ key_column }} from {{ source('shop', table_name) }}
    where {{ clean_text('customer_id') }} in ({{ customers_in_increment() }})
{%- endmacro %}


{#- The orders whose staged row may change this run (see the top of this file). -#}
{% macro order_ids_in_increment() -%}
    {{ _keys_in_increment('orders', 'order_id') }}
{%- endmacro %}


{#- The orders whose lines' staged rows may change this run: their lines are new, or they are. -#}
{% macro order_ids_of_lines_in_increment() -%}
    select {{ clean_text('order_id') }} as order_id from {{ source('shop', 'order_items') }}
    where {{ is_in_increment('order_items') }}
    union all
    {{ order_ids_in_increment() }}
{%- endmacro %}


{#- The web events whose staged row may change this run. -#}
{% macro event_ids_in_increment() -%}
    {{ _keys_in_increment('web_events', 'event_id') }}
{%- endmacro %}


{#- The table in which an incremental run of this model keeps the keys it rebuilds: made when
    the model renders, read by its query and hooks. -#}
{% macro _keys_to_restage() -%}
    raw_history.{{ this.identifier }}__keys_to_restage
{%- endmacro %}


{#- The table in which an incremental run of this model keeps the files that hold a key to
    restage: made when the model renders, read by its pre_hook. -#}
{% macro _files_to_restage() -%}
    raw_history.{{ this.identifier }}__files_to_restage
{%- endmacro %}


{#- Whether this model rebuilds whole (must_rebuild_whole), decided when it is rendered: its
    filters are then plain semi-joins (an `or exists` made DuckDB test every row). -#}
{% macro _rebuilds_whole(tables) %}
    {% if not execute %}{{ return(false) }}{% endif %}
    {{ return(run_query("select " ~ must_rebuild_whole(tables)).columns[0].values()[0]) }}
{% endmacro %}


{#- The staging model's filter: every row on a full build, or when it must rebuild whole. On
    an incremental run, when the model renders, the keys of `keys_sql` are kept in a table and
    the filter is their rows, in the files that hold one as a literal list: the Parquet scan
    then reads those files only, and the base view's joins run for their rows only. Both
    before the pre_hook deletes anything. -#}
{% macro rows_to_restage(key_column, tables, keys_in_increment) %}
    {% if not is_incremental() or _rebuilds_whole(tables) %}{{ return('true') }}{% endif %}
    {% do run_query(
        "create or replace table " ~ _keys_to_restage() ~ " as select distinct " ~ key_column
        ~ " from (" ~ keys_in_increment() ~ ") as keys_in_increment where " ~ key_column ~ " is not null"
    ) %}
    {% set files = run_query(
        "select distinct source_file from " ~ source('shop', tables[0]) ~ " where "
        ~ clean_text(key_column) ~ " in (select " ~ key_column ~ " from " ~ _keys_to_restage()
        ~ ")"
    ).columns[0].values() %}
    {#- Kept for the pre_hook, which logs the customers of these rows. -#}
    {% do run_query(
        "create or replace table " ~ _files_to_restage() ~ " as select unnest(cast(["
        ~ _literal_list(files)[1:-1] ~ "] as varchar[])) as file_path"
    ) %}
    {% if not files %}{{ return('false') }}{% endif %}
    {{ return(
        "(source_file in " ~ _literal_list(files) ~ " and " ~ key_column ~ " in (select "
        ~ key_column ~ " from " ~ _keys_to_restage() ~ "))"
    ) }}
{% endmacro %}


{#- pre_hook of an incremental staging model. On an incremental run: log the customers whose
    staged rows change, and delete the rows of the keys kept when the model rendered. With
    `base_relation` (the model's base view), the customers of every copy of those keys in the
    files that hold one: those of the rows about to be staged, and, unless a file of the table
    changed since read, those of the rows staged before (their copies are still there); else,
    and always without a base view, `customers_sql` as well, read before the delete. On a full
    build, or one that must rebuild whole: log that every customer changes (the entries before
    say nothing more) and delete every row. Each customer is logged with the first day their
    changed rows fall on, old versions and new (null when a row has no day: every day); the
    customer-day aggregates read the log (macros/incremental_aggregates.sql). `customers_sql`
    yields (customer_id, restaged_on); `day_sql` is the day of a row of the base view. -#}
{% macro delete_keys_to_restage(key_column, tables, customers_sql, base_relation=none, day_sql=none) %}
    {% if target.type != 'duckdb' %}{{ return('') }}{% endif %}
    {% set log = "insert into raw_history.restaged_customers (model_name, customer_id,"
        ~ " is_every_customer, restaged_at, restaged_from) select '" ~ this.identifier ~ "', " %}
    {% if not is_incremental() or _rebuilds_whole(tables) %}
        {{ return(
            "delete from raw_history.restaged_customers where model_name = '" ~ this.identifier
            ~ "'; " ~ log ~ "null, true, " ~ loaded_at() ~ ", null; " ~ record_changed_rows()
            ~ ("; delete from " ~ this if is_incremental() else "")
        ) }}
    {% endif %}
    {% set logged = [] %}
    {% if base_relation is not none %}
        {% do logged.append(_customers_of_copies(key_column, base_relation, day_sql)) %}
    {% endif %}
    {% if base_relation is none or _has_changed_files(tables[0]) %}
        {% do logged.append(customers_sql) %}
    {% endif %}
    {{ return(
        log ~ "customer_id, false, " ~ loaded_at() ~ ", " ~ first_day('restaged_on')
        ~ " from (" ~ logged | join(' union all ') ~ ") as restaged group by customer_id; "
        ~ record_changed_rows(_keys_to_restage(), key_column)
        ~ "; delete from " ~ this ~ " where " ~ key_column ~ " in (select " ~ key_column
        ~ " from " ~ _keys_to_restage() ~ ")"
    ) }}
{% endmacro %}


{#- The earliest of the days `day_column` holds, null when one of them is null (a row
    without a day: every day). -#}
{% macro first_day(day_column) -%}
    case when count(*) = count({{ day_column }}) then min({{ day_column }}) end
{%- endmacro %}


{#- The customers of every copy, in the base view, of the keys this run restages, and the day
    of each copy. -#}
{% macro _customers_of_copies(key_column, base_relation, day_sql) %}
    {% set files = run_query("select file_path from " ~ _files_to_restage()).columns[0].values() %}
    {% if not files %}
        {{ return(
            "select cast(null as varchar) as customer_id, cast(null as date) as restaged_on"
            ~ " where false"
        ) }}
    {% endif %}
    {{ return(
        "select customer_id, " ~ day_sql ~ " as restaged_on from " ~ base_relation
        ~ " where source_file in "
        ~ _literal_list(files) ~ " and " ~ key_column ~ " in (select " ~ key_column ~ " from "
        ~ _keys_to_restage() ~ ") and customer_id is not null"
    ) }}
{% endmacro %}


{% macro _has_changed_files(table_name) %}
    {{ return(run_query(
        "select count(*) > 0 from (" ~ _changed_files(table_name) ~ ") as changed"
    ).columns[0].values()[0]) }}
{% endmacro %}


{#- The customers of this model's staged rows whose key is rebuilt this run (an anonymous web
    event has none), and the day of each row. -#}
{% macro customers_of_restaged_keys(key_column, day_column) -%}
    select customer_id, {{ day_column }} as restaged_on from {{ this }}
    where
        {{ key_column }} in (select {{ key_column }} from {{ _keys_to_restage() }})
        and customer_id is not null
{%- endmacro %}


{#- The customers of the orders whose lines stg_shop__order_items rebuilds, and the day of each
    order: lines carry neither (an order's earlier customer or day, if it changed,
    stg_shop__orders logged). -#}
{% macro customers_of_restaged_orders() -%}
    select customer_id, ordered_on as restaged_on from {{ ref('stg_shop__orders') }}
    where order_id in (select order_id from {{ _keys_to_restage() }})
{%- endmacro %}


{#- post_hook: remember the files this build read, as they are now, with their latest row (a
    row stamped in the future is no reference for the look-back) and their latest row of all
    (whether the next run must look for rows stamped after this one). Only files new, changed,
    or with a row after their last read are scanned (at M the scan of every row of a weekly
    build's three staging tables took 2.7 s); the others keep what was recorded. -#}
{% macro record_loaded_files(tables) %}
    {% if target.type != 'duckdb' %}{{ return('') }}{% endif %}
    {% set to_scan = _files_to_scan_for_stamps(tables) %}
    {% set latest_rows = [
        "select cast(null as varchar) as source_file, cast(null as timestamp) as max_stamped_at,"
        ~ " cast(null as timestamp) as latest_stamped_at where false"
    ] %}
    {% for table_name in tables if to_scan.get(table_name) %}
        {% set stamp = _increment_stamp(table_name) or 'cast(null as timestamp)' %}
        {% do latest_rows.append(
            "select source_file, max(" ~ stamp ~ ") filter (where " ~ stamp ~ " <= "
            ~ loaded_at() ~ ") as max_stamped_at, coalesce(max(" ~ stamp
            ~ "), timestamp '-infinity') as latest_stamped_at from raw." ~ table_name
            ~ " where source_file in " ~ _literal_list(to_scan[table_name])
            ~ " group by source_file"
        ) %}
    {% endfor %}
    {% set scanned = [] %}
    {% for files in to_scan.values() %}{% do scanned.extend(files) %}{% endfor %}
    {% set is_scanned = "files.file_path in " ~ _literal_list(scanned) if scanned else "false" %}
    {{ return(
        "create or replace temporary table " ~ this.identifier ~ "__loaded_files as select '"
        ~ this.identifier ~ "' as model_name,"
        ~ " files.table_name, files.file_path, files.file_size, files.modified_at,"
        ~ " files.loaded_at,"
        ~ " case when " ~ is_scanned ~ " then latest_rows.max_stamped_at"
        ~ " else read_before.max_stamped_at end as max_stamped_at,"
        ~ " case when " ~ is_scanned ~ " then latest_rows.latest_stamped_at"
        ~ " else read_before.latest_stamped_at end as latest_stamped_at"
        ~ " from raw.files as files left join ("
        ~ latest_rows | join(' union all ') ~ ") as latest_rows"
        ~ " on files.file_path = latest_rows.source_file"
        ~ " left join (" ~ _files_read_before(tables) ~ ") as read_before"
        ~ " on files.file_path = read_before.file_path"
        ~ " where files.table_name in ('" ~ tables | join("', '") ~ "');"
        ~ " delete from raw_history.loaded_files where model_name = '" ~ this.identifier ~ "';"
        ~ " insert into raw_history.loaded_files select * from " ~ this.identifier
        ~ "__loaded_files; drop table " ~ this.identifier ~ "__loaded_files"
    ) }}
{% endmacro %}


{#- Per raw table, the landed files whose latest rows record_loaded_files must scan: new or
    changed since this model read them, or holding then a row after that read (or not
    recorded). Queried when the post_hook renders, before it rewrites the record. -#}
{% macro _files_to_scan_for_stamps(tables) %}
    {% set to_scan = {} %}
    {% if not execute %}{{ return(to_scan) }}{% endif %}
    {% for row in run_query(
        "select table_name, file_path from (" ~ _new_or_changed_files(tables) ~ ") as files"
        ~ " union select files.table_name, files.file_path from raw.files as files"
        ~ " inner join (" ~ _files_read_before(tables) ~ ") as read_before"
        ~ " on files.file_path = read_before.file_path"
        ~ " where files.table_name in ('" ~ tables | join("', '") ~ "') and ("
        ~ " read_before.latest_stamped_at is null"
        ~ " or read_before.latest_stamped_at > read_before.loaded_at)"
    ).rows %}
        {% do to_scan.setdefault(row[0], []).append(row[1]) %}
    {% endfor %}
    {{ return(to_scan) }}
{% endmacro %}
