{#-
    Lands each raw file of the contract in schema `raw` with exactly the contract's columns:
    Parquet as a view (no copy), CSV as an all-VARCHAR table (typed in staging, so a bad value
    becomes a quarantine row with a reason instead of a failed load). Malformed CSV lines go to
    raw.csv_rejects through DuckDB's reject tables: kept and reported, never silently skipped.
    raw.files records what was found, for reconciliation and for the CLI's messages.
-#}
{% macro land_raw_files() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set raw_dir = var('raw_dir') | string | replace("'", "''") %}
    {#- Schema raw holds only what this hook lands: rebuild it whole, tables and views alike. -#}
    {% do run_query("drop schema if exists raw cascade; create schema raw") %}
    {% do run_query(
        "create or replace table raw.csv_rejects (table_name varchar, line bigint,"
        ~ " n_lines bigint, error_type varchar, csv_line varchar, error_message varchar)"
    ) %}
    {% do run_query(
        "create or replace table raw.files (table_name varchar, file_path varchar,"
        ~ " file_format varchar, loaded_at timestamp, columns_missing varchar[],"
        ~ " columns_extra varchar[])"
    ) %}
    {#- Forgotten customers (segmart forget) never land, so no rebuild brings them back. -#}
    {% do run_query(
        "create schema if not exists privacy; create table if not exists"
        ~ " privacy.forgotten_customers (customer_id varchar primary key, forgotten_at timestamp)"
    ) %}
    {% for table_name, spec in raw_contract().items() %}
        {% do _land_one_table(raw_dir, table_name, spec) %}
    {% endfor %}
    {{ return('') }}
{% endmacro %}


{% macro _find_raw_file(raw_dir, table_name) %}
    {% set found = run_query(
        "select file from glob('" ~ raw_dir ~ "/" ~ table_name ~ ".parquet')"
        ~ " union all select file from glob('" ~ raw_dir ~ "/" ~ table_name ~ ".csv')"
    ) %}
    {% if found.rows | length > 1 %}
        {% do exceptions.raise_compiler_error(
            "raw table " ~ table_name ~ " is ambiguous: both .csv and .parquet in " ~ raw_dir
            ~ "; keep one") %}
    {% endif %}
    {{ return(found.rows[0][0] if found.rows | length == 1 else none) }}
{% endmacro %}


{% macro _csv_header(path) %}
    {#- Read the header line alone: sniffing fails on files whose first rows are malformed, and a
        later line that is not UTF-8 must not fail the header (the landing read rejects it). -#}
    {% set first = run_query(
        "select column0 from read_csv('" ~ path ~ "', header=false, auto_detect=false,"
        ~ " columns={'column0': 'VARCHAR'}, delim=chr(30), quote='', escape='',"
        ~ " ignore_errors=true) limit 1"
    ) %}
    {% if first.rows | length == 0 or first.rows[0][0] is none %}{{ return([]) }}{% endif %}
    {% set names = [] %}
    {% for name in first.rows[0][0].split(',') %}
        {% do names.append(name | replace('"', '') | replace('\ufeff', '') | trim | lower) %}
    {% endfor %}
    {{ return(names) }}
{% endmacro %}


{% macro _land_one_table(raw_dir, table_name, spec) %}
    {% set path = _find_raw_file(raw_dir, table_name) %}
    {% set target = 'raw.' ~ table_name %}
    {% if path is none %}
        {% if spec.required %}
            {% do exceptions.raise_compiler_error(
                "required raw table " ~ table_name ~ " not found: expected " ~ raw_dir ~ "/"
                ~ table_name ~ ".csv or .parquet") %}
        {% endif %}
        {% set empty_columns = [] %}
        {% for column in spec.columns %}{% do empty_columns.append("null::varchar as " ~ column) %}{% endfor %}
        {% do run_query("create table " ~ target ~ " as select " ~ empty_columns | join(', ') ~ " where false") %}
        {{ return(none) }}
    {% endif %}
    {% set path = path | replace("'", "''") %}
    {% set is_csv = path.endswith('.csv') %}
    {% if is_csv %}
        {% set present = _csv_header(path) %}
        {% set csv_columns = [] %}
        {% for name in present %}{% do csv_columns.append("'" ~ name | replace("'", "''") ~ "': 'VARCHAR'") %}{% endfor %}
        {% set reader = "read_csv('" ~ path ~ "', header=true, auto_detect=false, delim=',',"
            ~ " quote='\"', escape='\"', columns={" ~ csv_columns | join(', ') ~ "},"
            ~ " store_rejects=true, rejects_table='rejects_" ~ table_name ~ "',"
            ~ " rejects_scan='rejects_scan_" ~ table_name ~ "')" %}
    {% else %}
        {% set described = run_query("describe select * from read_parquet('" ~ path ~ "')") %}
        {% set present = [] %}
        {% for row in described.rows %}{% do present.append(row[0] | lower) %}{% endfor %}
        {% set reader = "read_parquet('" ~ path ~ "')" %}
    {% endif %}
    {% set missing_keys = [] %}
    {% for column in spec.key_columns %}{% if column not in present %}{% do missing_keys.append(column) %}{% endif %}{% endfor %}
    {% if missing_keys %}
        {% do exceptions.raise_compiler_error(
            "raw file " ~ path ~ " lacks required column(s) " ~ missing_keys | join(', ')
            ~ " (it has: " ~ (present | join(', ') or 'no header') ~ ")") %}
    {% endif %}
    {% set select_list = [] %}
    {% set missing = [] %}
    {% for column in spec.columns %}
        {% if column in present %}
            {% do select_list.append('"' ~ column ~ '"') %}
        {% else %}
            {% do select_list.append("null::varchar as " ~ column) %}
            {% do missing.append("'" ~ column ~ "'") %}
        {% endif %}
    {% endfor %}
    {% set extra = [] %}
    {% for column in present %}{% if column not in spec.columns %}{% do extra.append("'" ~ column | replace("'", "''") ~ "'") %}{% endif %}{% endfor %}
    {% set not_forgotten = (
        " where customer_id is null or trim(cast(customer_id as varchar)) not in"
        ~ " (select customer_id from privacy.forgotten_customers)"
    ) if 'customer_id' in present else "" %}
    {% if is_csv %}
        {% do run_query("create table " ~ target ~ " as select " ~ select_list | join(', ') ~ " from " ~ reader ~ not_forgotten) %}
        {#- DuckDB reports a short line once per missing column: keep one error per line. -#}
        {% do run_query(
            "insert into raw.csv_rejects select '" ~ table_name ~ "', line,"
            ~ " len(string_split(rtrim(csv_line, chr(10)), chr(10))), error_type, csv_line, error_message"
            ~ " from rejects_" ~ table_name
            ~ " qualify row_number() over (partition by scan_id, file_id, line order by column_idx) = 1") %}
    {% else %}
        {% do run_query("create view " ~ target ~ " as select " ~ select_list | join(', ') ~ " from " ~ reader ~ not_forgotten) %}
    {% endif %}
    {#- A header-only export would otherwise surface as an obscure failing test far downstream. -#}
    {% if spec.required and run_query("select count(*) from " ~ target).rows[0][0] == 0 %}
        {% do exceptions.raise_compiler_error(
            "required raw table " ~ table_name ~ " has no readable rows in " ~ path
            ~ " (header only, or every line malformed): export it again") %}
    {% endif %}
    {% do run_query(
        "insert into raw.files values ('" ~ table_name ~ "', '" ~ path ~ "', '"
        ~ ('csv' if is_csv else 'parquet') ~ "', current_timestamp::timestamp, ["
        ~ missing | join(', ') ~ "]::varchar[], [" ~ extra | join(', ') ~ "]::varchar[])") %}
{% endmacro %}
