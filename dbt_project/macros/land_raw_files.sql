{#-
    Lands each raw table of the contract in schema `raw` with exactly the contract's columns:
    Parquet as a view (no copy), CSV as an all-VARCHAR table (typed in staging, so a bad value
    becomes a quarantine row with a reason instead of a failed load). Malformed CSV lines go to
    raw.csv_rejects through DuckDB's reject tables: kept and reported, never silently skipped.
    raw.files records what was found, for reconciliation and for the CLI's messages.

    var('landing') (written by ml/ingest) can name, per table, another file to read (a mapped
    export, or a UTF-8 copy of a file DuckDB cannot read as it lies) and one SQL expression per
    contract column over that file's columns (`source."Column"`). Tables it leaves out are read
    from raw_dir as `<table>.csv` or `<table>.parquet`.
-#}
{% macro land_raw_files() %}
    {{ return(adapter.dispatch('land_raw_files')()) }}
{% endmacro %}


{% macro default__land_raw_files() %}
    {% do exceptions.raise_compiler_error(
        "land_raw_files has no implementation for adapter " ~ adapter.type()) %}
{% endmacro %}


{#- DuckDB reads the files in place (Spark: land_raw_files_spark.sql). -#}
{% macro duckdb__land_raw_files() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set raw_dir = var('raw_dir') | string | replace("'", "''") %}
    {% set landing = var('landing') or {} %}
    {#- Schema raw holds only what this hook lands: rebuild it whole, tables and views alike. -#}
    {% do run_query("drop schema if exists raw cascade; create schema raw") %}
    {% do run_query(
        "create or replace table raw.csv_rejects (table_name varchar, line bigint,"
        ~ " n_lines bigint, error_type varchar, csv_line varchar, error_message varchar)"
    ) %}
    {% do run_query(
        "create or replace table raw.files (table_name varchar, file_path varchar,"
        ~ " file_format varchar, loaded_at timestamp, columns_missing varchar[],"
        ~ " columns_extra varchar[], file_size bigint, modified_at timestamp)"
    ) %}
    {#- Which files each incremental staging model has read, kept across runs (see
        macros/incremental_staging.sql). -#}
    {% do run_query(
        "create schema if not exists raw_history; create table if not exists"
        ~ " raw_history.loaded_files (model_name varchar, table_name varchar, file_path varchar,"
        ~ " file_size bigint, modified_at timestamp, loaded_at timestamp,"
        ~ " max_stamped_at timestamp, latest_stamped_at timestamp);"
        ~ " alter table raw_history.loaded_files add column if not exists latest_stamped_at timestamp"
    ) %}
    {#- The customers whose staged rows each incremental staging model changed, from which day
        (null: every day), and how far each customer-day aggregate has re-aggregated them
        (macros/incremental_aggregates.sql). -#}
    {% do run_query(
        "create table if not exists raw_history.restaged_customers (model_name varchar,"
        ~ " customer_id varchar, is_every_customer boolean, restaged_at timestamp,"
        ~ " restaged_from date);"
        ~ " alter table raw_history.restaged_customers add column if not exists restaged_from date;"
        ~ " create table if not exists"
        ~ " raw_history.reaggregated (model_name varchar, processed_through timestamp);"
        ~ " create table if not exists raw_history.product_categories_read (model_name varchar,"
        ~ " product_id varchar, category varchar)"
    ) %}
    {#- Which rows each incremental model's last build changed (macros/tests/changed_rows.sql). -#}
    {% do run_query(
        "create table if not exists raw_history.changed_rows (model_name varchar,"
        ~ " invocation_id varchar, key_table varchar, key_column varchar)"
    ) %}
    {#- Forgotten customers (segmart forget) never land, so no rebuild brings them back. -#}
    {% do run_query(
        "create schema if not exists privacy; create table if not exists"
        ~ " privacy.forgotten_customers (customer_id varchar primary key, forgotten_at timestamp)"
    ) %}
    {% for table_name, spec in raw_contract().items() %}
        {% do _land_one_table(raw_dir, table_name, spec, landing.get(table_name)) %}
    {% endfor %}
    {{ return('') }}
{% endmacro %}


{#- The files of a raw table: `<table>.csv` or `<table>.parquet`, or a folder `<table>/` of
    such files in one format (daily or weekly drops), read as one table. -#}
{% macro _find_raw_files(raw_dir, table_name) %}
    {% set single = run_query(
        "select file from glob('" ~ raw_dir ~ "/" ~ table_name ~ ".parquet')"
        ~ " union all select file from glob('" ~ raw_dir ~ "/" ~ table_name ~ ".csv')"
    ) %}
    {% set in_folder = run_query(
        "select file from glob('" ~ raw_dir ~ "/" ~ table_name ~ "/*.parquet')"
        ~ " union all select file from glob('" ~ raw_dir ~ "/" ~ table_name ~ "/*.csv')"
        ~ " order by file"
    ) %}
    {% if single.rows | length > 1 %}
        {% do exceptions.raise_compiler_error(
            "raw table " ~ table_name ~ " is ambiguous: both .csv and .parquet in " ~ raw_dir
            ~ "; keep one") %}
    {% endif %}
    {% set folder_files = in_folder.rows | map(attribute=0) | list %}
    {% if single.rows and folder_files %}
        {% do exceptions.raise_compiler_error(
            "raw table " ~ table_name ~ " is ambiguous: both a file and a folder " ~ table_name
            ~ "/ in " ~ raw_dir ~ "; keep one") %}
    {% endif %}
    {% set extensions = [] %}
    {% for file in folder_files %}
        {% if file.split('.') | last not in extensions %}{% do extensions.append(file.split('.') | last) %}{% endif %}
    {% endfor %}
    {% if extensions | length > 1 %}
        {% do exceptions.raise_compiler_error(
            "raw folder " ~ raw_dir ~ "/" ~ table_name ~ "/ mixes .csv and .parquet files; keep one"
            ~ " format per table") %}
    {% endif %}
    {{ return({'files': folder_files or (single.rows | map(attribute=0) | list),
               'is_folder': folder_files | length > 0}) }}
{% endmacro %}


{% macro _csv_header(path, delimiter) %}
    {#- Read the header line alone: sniffing fails on files whose first rows are malformed, and a
        later line that is not UTF-8 must not fail the header (the landing read rejects it).
        parallel=false: a parallel scan returns the first line of whichever buffer finishes
        first, a data row several megabytes into a large file. -#}
    {% set first = run_query(
        "select column0 from read_csv('" ~ path ~ "', header=false, auto_detect=false,"
        ~ " columns={'column0': 'VARCHAR'}, delim=chr(30), quote='', escape='',"
        ~ " ignore_errors=true, parallel=false) limit 1"
    ) %}
    {% if first.rows | length == 0 or first.rows[0][0] is none %}{{ return([]) }}{% endif %}
    {% set names = [] %}
    {% for name in first.rows[0][0].split(delimiter) %}
        {% do names.append(name | replace('"', '') | replace('\ufeff', '') | trim) %}
    {% endfor %}
    {{ return(names) }}
{% endmacro %}


{% macro _sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}


{% macro _sql_list(values) %}
    {% set quoted = [] %}
    {% for value in values %}{% do quoted.append(_sql_string(value)) %}{% endfor %}
    {{ return("[" ~ quoted | join(', ') ~ "]") }}
{% endmacro %}


{#- The file, or the files of a folder as one relation with their path in a column. -#}
{% macro _files_argument(files, is_folder) %}
    {{ return(_sql_list(files) ~ ", filename='" ~ _file_column() ~ "'" if is_folder
        else _sql_string(files[0])) }}
{% endmacro %}


{% macro _file_column() %}{{ return('segmart_source_file') }}{% endmacro %}


{% macro _csv_reader(table_name, files_argument, delimiter, header) %}
    {% set columns = [] %}
    {% for name in header %}{% do columns.append(_sql_string(name) ~ ": 'VARCHAR'") %}{% endfor %}
    {% set reader = "read_csv(" ~ files_argument ~ ", header=true, auto_detect=false, delim="
        ~ _sql_string(delimiter) ~ ", quote='\"', escape='\"', columns={"
        ~ columns | join(', ') ~ "}, store_rejects=true, rejects_table='rejects_" ~ table_name
        ~ "', rejects_scan='rejects_scan_" ~ table_name ~ "')" %}
    {{ return(reader) }}
{% endmacro %}


{#- One select expression per contract column: the mapping's, the file's own column, or null. -#}
{% macro _contract_select(spec, header, planned) %}
    {% set lowered = header | map('lower') | list %}
    {% set select_list, missing, used = [], [], [] %}
    {% for column in spec.columns %}
        {% if planned.select is defined and planned.select is not none %}
            {% if column in planned.select %}
                {% do select_list.append(planned.select[column] ~ " as " ~ column) %}
            {% else %}
                {% do select_list.append("null::varchar as " ~ column) %}
                {% do missing.append(column) %}
            {% endif %}
        {% elif column in lowered %}
            {% set source_name = header[lowered.index(column)] %}
            {% do used.append(source_name) %}
            {% do select_list.append('source."' ~ source_name | replace('"', '""') ~ '" as ' ~ column) %}
        {% else %}
            {% do select_list.append("null::varchar as " ~ column) %}
            {% do missing.append(column) %}
        {% endif %}
    {% endfor %}
    {{ return({'select_list': select_list, 'missing': missing, 'used': used}) }}
{% endmacro %}


{% macro _land_one_table(raw_dir, table_name, spec, planned) %}
    {% set planned = planned or {} %}
    {% set found = {'files': [planned.path], 'is_folder': false} if planned.path is defined
        else _find_raw_files(raw_dir, table_name) %}
    {% set path = found.files[0] if found.files else none %}
    {% set target = 'raw.' ~ table_name %}
    {#- What the user knows the file by: the shop's own file, even when a UTF-8 copy is read. -#}
    {% set shown_path = planned.source_path if planned.source_path is defined
        else (raw_dir ~ '/' ~ table_name ~ '/' if found.is_folder else path) %}
    {% if path is none %}
        {% if spec.required %}
            {% do exceptions.raise_compiler_error(
                "required raw table " ~ table_name ~ " not found: expected " ~ raw_dir ~ "/"
                ~ table_name ~ ".csv or .parquet (a transaction log: transactions.csv;"
                ~ " any other export: segmart build --mapping FILE)") %}
        {% endif %}
        {% set empty_columns = [] %}
        {% for column in spec.columns %}{% do empty_columns.append("null::varchar as " ~ column) %}{% endfor %}
        {% do empty_columns.append("null::varchar as source_file") %}
        {% do run_query("create table " ~ target ~ " as select " ~ empty_columns | join(', ') ~ " where false") %}
        {{ return(none) }}
    {% endif %}
    {% set is_csv = (planned.format if planned.format is defined else path.split('.') | last) == 'csv' %}
    {% set files_argument = _files_argument(found.files, found.is_folder) %}
    {% set delimiter = planned.delimiter | default(',') %}
    {% if planned.columns is defined %}
        {% set header = planned.columns %}
    {% elif is_csv %}
        {% set header = _csv_header(path | replace("'", "''"), delimiter) %}
    {% else %}
        {% set described = run_query(
            "describe select * from read_parquet(" ~ _sql_string(path) ~ ")") %}
        {% set header = [] %}
        {% for row in described.rows %}{% do header.append(row[0]) %}{% endfor %}
    {% endif %}
    {#- The files of a folder share the first one's columns. -#}
    {% set reader = _csv_reader(table_name, files_argument, delimiter, header) if is_csv
        else "read_parquet(" ~ files_argument ~ ")" %}
    {% set selected = _contract_select(spec, header, planned) %}
    {#- Every raw row keeps the file it came from: incremental staging reads only new files. -#}
    {% set source_file = 'source.' ~ _file_column() if found.is_folder else _sql_string(shown_path) %}
    {% set landed_columns = spec.columns | reject('in', selected.missing) | list %}
    {% set derived_keys = [] %}
    {% for column in spec.key_columns %}
        {% if column not in landed_columns %}{% do derived_keys.append(column) %}{% endif %}
    {% endfor %}
    {% if derived_keys %}
        {% do exceptions.raise_compiler_error(
            "raw file " ~ shown_path ~ " lacks required column(s) " ~ derived_keys | join(', ')
            ~ " (it has: " ~ (header | join(', ') or 'no header') ~ ")") %}
    {% endif %}
    {% set relation = _grouped(selected.select_list + [source_file ~ " as source_file"], planned, reader) %}
    {% if table_name == 'orders' and 'order_id' not in landed_columns %}
        {% set relation = _with_derived_order_ids(relation, spec, planned) %}
    {% endif %}
    {% set not_forgotten = (
        " where customer_id is null or trim(cast(customer_id as varchar)) not in"
        ~ " (select customer_id from privacy.forgotten_customers)"
    ) if 'customer_id' in spec.columns else "" %}
    {% set body = "select * from (" ~ relation ~ ") as landed" ~ not_forgotten %}
    {% if is_csv %}
        {% do run_query("create table " ~ target ~ " as " ~ body) %}
        {#- DuckDB reports a short line once per missing column: keep one error per line. -#}
        {% do run_query(
            "insert into raw.csv_rejects select '" ~ table_name ~ "', line,"
            ~ " len(string_split(rtrim(csv_line, chr(10)), chr(10))), error_type, csv_line, error_message"
            ~ " from rejects_" ~ table_name
            ~ " qualify row_number() over (partition by scan_id, file_id, line order by column_idx) = 1") %}
    {% else %}
        {% do run_query("create view " ~ target ~ " as " ~ body) %}
    {% endif %}
    {#- A header-only export would otherwise surface as an obscure failing test far downstream. -#}
    {% if spec.required and run_query("select count(*) from " ~ target).rows[0][0] == 0 %}
        {% do exceptions.raise_compiler_error(
            "required raw table " ~ table_name ~ " has no readable rows in " ~ shown_path
            ~ " (header only, or every line malformed): export it again") %}
    {% endif %}
    {% if spec.required %}{% do _check_key_timestamps(table_name, spec, target, shown_path) %}{% endif %}
    {% set extra = [] %}
    {% if planned.select is not defined or planned.select is none %}
        {% for column in header %}{% if column not in selected.used %}{% do extra.append(_sql_string(column)) %}{% endif %}{% endfor %}
    {% endif %}
    {% set missing = [] %}
    {% for column in selected.missing %}{% do missing.append(_sql_string(column)) %}{% endfor %}
    {#- Size and modification time tell incremental staging which files changed since. -#}
    {% set stated = _sql_list(found.files if found.is_folder else [shown_path]) %}
    {% do run_query(
        "insert into raw.files select '" ~ table_name ~ "', filename, '"
        ~ ('csv' if is_csv else 'parquet') ~ "', current_timestamp::timestamp, ["
        ~ missing | join(', ') ~ "]::varchar[], [" ~ extra | join(', ') ~ "]::varchar[], size,"
        ~ " last_modified::timestamp from read_blob(" ~ stated ~ ")") %}
{% endmacro %}


{#- The contract columns over the file; with `one_row_per`, one row per value of that key, each
    column its non-null value, the largest where rows disagree (or, with `latest_by`, the latest
    row's non-null value).
    Rows without the key do not describe that entity (a line item's row in an orders export
    carries no customer) and are left to the tables they do describe. Max and arg_max keep
    the choice deterministic under parallel reads. -#}
{% macro _grouped(select_list, planned, reader) %}
    {% if planned.one_row_per is not defined or planned.one_row_per is none %}
        {{ return("select " ~ select_list | join(', ') ~ " from " ~ reader ~ " as source") }}
    {% endif %}
    {% set inner = select_list + [planned.one_row_per ~ " as _row_key"] %}
    {% if planned.latest_by %}{% do inner.append(planned.latest_by ~ " as _row_order") %}{% endif %}
    {% set outer = [] %}
    {% for expression in select_list %}
        {% set column = expression.split(' as ') | last %}
        {% if planned.latest_by %}
            {% do outer.append("arg_max(" ~ column ~ ", [_row_order, " ~ column ~ "]) filter (where "
                ~ column ~ " is not null) as " ~ column) %}
        {% else %}
            {% do outer.append("max(" ~ column ~ ") as " ~ column) %}
        {% endif %}
    {% endfor %}
    {{ return(
        "select " ~ outer | join(', ') ~ " from (select " ~ inner | join(', ')
        ~ " from " ~ reader ~ " as source) as rows_of_file where _row_key is not null"
        ~ " group by _row_key"
    ) }}
{% endmacro %}


{#- An export without order ids (a transaction log): the id is a hash of the row's content and
    its occurrence among identical rows, so the same file always gives the same ids. Identical
    rows are separate purchases, unless the mapping says the export repeats rows
    (identical_rows: copies): then they share an id and staging keeps one. -#}
{% macro _with_derived_order_ids(relation, spec, planned) %}
    {% set content = [] %}
    {% for column in spec.columns if column != 'order_id' %}
        {% do content.append("coalesce(cast(" ~ column ~ " as varchar), '')") %}
    {% endfor %}
    {% set row_hash = "md5(concat_ws('|', " ~ content | join(', ') ~ "))" %}
    {% if (planned.identical_rows | default('separate')) == 'copies' %}
        {% set order_id = row_hash %}
    {% else %}
        {% set order_id = row_hash ~ " || '-' || row_number() over (partition by "
            ~ content | join(', ') ~ " order by source_file)" %}
    {% endif %}
    {{ return("select * exclude (order_id), " ~ order_id ~ " as order_id from (" ~ relation ~ ") as keyed") }}
{% endmacro %}


{#- A required table none of whose key timestamps parse (dates written 01/02/1997, say) would
    quarantine every row and fail far downstream: say so here, with an example (the smallest,
    so the message is the same every run) and the fix. -#}
{% macro _check_key_timestamps(table_name, spec, target, path) %}
    {% for column in spec.key_columns if column in spec.timestamps %}
        {% set found = run_query(
            "select count(*) filter (where " ~ parse_timestamp(column) ~ " is not null),"
            ~ " min(" ~ column ~ ") filter (where " ~ parse_timestamp(column) ~ " is null)"
            ~ " from " ~ target
        ) %}
        {% if found.rows[0][0] == 0 %}
            {% do exceptions.raise_compiler_error(
                "no " ~ column ~ " value of " ~ path ~ " reads as a timestamp (e.g. '"
                ~ found.rows[0][1] ~ "'): state its format in a mapping, e.g. timestamp_format:"
                ~ " '%d/%m/%Y' or '%m/%d/%Y' (segmart build --mapping FILE)") %}
        {% endif %}
    {% endfor %}
{% endmacro %}
