{#-
    land_raw_files on Spark: the same tables in schema `raw` (exactly the contract's columns,
    CSV as all-string tables, Parquet as views over the file), raw.files and raw.csv_rejects,
    over the same paths. Spark lists raw_dir through the binaryFile source (its path column
    only: no file is read) and reads CSV through a temporary view with an all-string schema.
    A CSV line Spark cannot split into the header's columns goes to raw.csv_rejects, kept and
    reported as on DuckDB; Spark does not say why, so the reason is counted from the line.

    Mapped exports (var('landing'), written by ml/ingest as DuckDB expressions) are DuckDB-only
    for now: a build with one stops here with a message.
-#}
{% macro spark__land_raw_files() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% if var('landing') %}
        {% do exceptions.raise_compiler_error(
            "mapped or re-encoded raw files (var landing) are not supported on Spark yet:"
            ~ " build them on DuckDB, or export the contract's files as they are") %}
    {% endif %}
    {% set raw_dir = var('raw_dir') | string %}
    {% do run_query("drop schema if exists raw cascade") %}
    {% do run_query("create schema raw") %}
    {% do run_query(
        "create table raw.csv_rejects (table_name string, line bigint, n_lines bigint,"
        ~ " error_type string, csv_line string, error_message string) using parquet"
    ) %}
    {% do run_query(
        "create table raw.files (table_name string, file_path string, file_format string,"
        ~ " loaded_at timestamp, columns_missing array<string>, columns_extra array<string>)"
        ~ " using parquet"
    ) %}
    {#- Forgotten customers (segmart forget) never land, so no rebuild brings them back. -#}
    {% do run_query("create schema if not exists privacy") %}
    {% do run_query(
        "create table if not exists privacy.forgotten_customers (customer_id string,"
        ~ " forgotten_at timestamp) using parquet"
    ) %}
    {% set files = _spark_list_files(raw_dir) %}
    {% for table_name, spec in raw_contract().items() %}
        {% do _spark_land_one_table(raw_dir, files, table_name, spec) %}
    {% endfor %}
    {{ return('') }}
{% endmacro %}


{#- File name -> path (as Spark spells it, file:/...) of every file directly in raw_dir. -#}
{% macro _spark_list_files(raw_dir) %}
    {% set listed = run_query("select path from binaryFile.`" ~ raw_dir | replace('`', '``') ~ "`") %}
    {% set files = {} %}
    {% for row in listed.rows %}{% do files.update({row[0].split('/') | last: row[0]}) %}{% endfor %}
    {{ return(files) }}
{% endmacro %}


{% macro _spark_identifier(name) -%}
    `{{ name | replace('`', '``') }}`
{%- endmacro %}


{#- The header line alone, split: sniffing a schema fails on files whose first rows are bad. -#}
{% macro _spark_csv_header(path, delimiter) %}
    {% set first = run_query(
        "select value from text.`" ~ path | replace('`', '``') ~ "` limit 1") %}
    {% if first.rows | length == 0 or first.rows[0][0] is none %}{{ return([]) }}{% endif %}
    {% set names = [] %}
    {% for name in first.rows[0][0].split(delimiter) %}
        {% do names.append(name | replace('"', '') | replace('\ufeff', '') | trim) %}
    {% endfor %}
    {{ return(names) }}
{% endmacro %}


{% macro _spark_land_one_table(raw_dir, files, table_name, spec) %}
    {% set csv_path = files.get(table_name ~ '.csv') %}
    {% set parquet_path = files.get(table_name ~ '.parquet') %}
    {% set target = 'raw.' ~ table_name %}
    {% if csv_path and parquet_path %}
        {% do exceptions.raise_compiler_error(
            "raw table " ~ table_name ~ " is ambiguous: both .csv and .parquet in " ~ raw_dir
            ~ "; keep one") %}
    {% endif %}
    {% set path = csv_path or parquet_path %}
    {% if path is none %}
        {% if spec.required %}
            {#- No Spark scan lists a zero-byte file, so an empty export reads as none. -#}
            {% do exceptions.raise_compiler_error(
                "required raw table " ~ table_name ~ " not found: expected " ~ raw_dir ~ "/"
                ~ table_name ~ ".csv or .parquet (Spark sees no zero-byte file)") %}
        {% endif %}
        {% set empty_columns = [] %}
        {% for column in spec.columns %}{% do empty_columns.append("cast(null as string) as " ~ column) %}{% endfor %}
        {% do empty_columns.append("cast(null as string) as source_file") %}
        {% do run_query("create table " ~ target ~ " using parquet as select "
            ~ empty_columns | join(', ') ~ " where false") %}
        {{ return(none) }}
    {% endif %}
    {% set is_csv = csv_path is not none %}
    {% if is_csv %}
        {% set header = _spark_csv_header(path, ',') %}
        {% set reader = _spark_csv_reader(table_name, path, header) %}
    {% else %}
        {% set reader = "parquet.`" ~ path | replace('`', '``') ~ "`" %}
        {#- Its schema through a temporary view: a file that is no Parquet then fails naming the
            file (a direct query fails as "Failed to create plan for direct query on files"). -#}
        {% do run_query("create or replace temporary view raw_file__" ~ table_name
            ~ " using parquet options (path " ~ _sql_string(path) ~ ")") %}
        {% set described = run_query("describe raw_file__" ~ table_name) %}
        {% set header = [] %}
        {% for row in described.rows %}{% do header.append(row[0]) %}{% endfor %}
    {% endif %}
    {% set lowered = header | map('lower') | list %}
    {% set select_list, missing, used = [], [], [] %}
    {% for column in spec.columns %}
        {% if column in lowered %}
            {% set source_name = header[lowered.index(column)] %}
            {% do used.append(source_name) %}
            {% do select_list.append('source.' ~ _spark_identifier(source_name) ~ ' as ' ~ column) %}
        {% else %}
            {% do select_list.append("cast(null as string) as " ~ column) %}
            {% do missing.append(column) %}
        {% endif %}
    {% endfor %}
    {% set lacking = spec.key_columns | select('in', missing) | list %}
    {% if lacking %}
        {% do exceptions.raise_compiler_error(
            "raw file " ~ path ~ " lacks required column(s) " ~ lacking | join(', ')
            ~ " (it has: " ~ (header | join(', ') or 'no header') ~ ")") %}
    {% endif %}
    {% set relation = "select " ~ select_list | join(', ') ~ " from " ~ reader ~ " as source"
        ~ (" where source._corrupt_record is null" if is_csv else "") %}
    {% if table_name == 'orders' and 'order_id' in missing %}
        {% set relation = _spark_with_derived_order_ids(relation, spec) %}
    {% endif %}
    {% set not_forgotten = (
        " where customer_id is null or trim(cast(customer_id as string)) not in"
        ~ " (select customer_id from privacy.forgotten_customers)"
    ) if 'customer_id' in spec.columns else "" %}
    {#- The file each row came from, as on DuckDB (which reads folders of files too). -#}
    {% set body = "select landed.*, " ~ _sql_string(path) ~ " as source_file from (" ~ relation
        ~ ") as landed" ~ not_forgotten %}
    {% if is_csv %}
        {% do run_query("create table " ~ target ~ " using parquet as " ~ body) %}
        {% do _spark_insert_csv_rejects(table_name, reader, header | length) %}
        {% do run_query("uncache table " ~ reader) %}
    {% else %}
        {% do run_query("create view " ~ target ~ " as " ~ body) %}
    {% endif %}
    {% if spec.required and run_query("select count(*) from " ~ target).rows[0][0] == 0 %}
        {% do exceptions.raise_compiler_error(
            "required raw table " ~ table_name ~ " has no readable rows in " ~ path
            ~ " (header only, or every line malformed): export it again") %}
    {% endif %}
    {% if spec.required %}{% do _check_key_timestamps(table_name, spec, target, path) %}{% endif %}
    {% set extra = [] %}
    {% for column in header %}{% if column not in used %}{% do extra.append(_sql_string(column)) %}{% endif %}{% endfor %}
    {% set missing_literals = [] %}
    {% for column in missing %}{% do missing_literals.append(_sql_string(column)) %}{% endfor %}
    {% do run_query(
        "insert into raw.files select '" ~ table_name ~ "', " ~ _sql_string(path) ~ ", '"
        ~ ('csv' if is_csv else 'parquet') ~ "', current_timestamp(),"
        ~ " cast(array(" ~ missing_literals | join(', ') ~ ") as array<string>),"
        ~ " cast(array(" ~ extra | join(', ') ~ ") as array<string>)") %}
{% endmacro %}


{#- A temporary view over the CSV file: every header column as string, plus the text of any
    row that does not split into them (PERMISSIVE mode keeps it in _corrupt_record). multiLine,
    as DuckDB: a quoted value may hold a line break, and a quote left open takes the next line
    into the same bad record (counted as its lines) instead of landing it as a row. -#}
{% macro _spark_csv_reader(table_name, path, header) %}
    {% set view = 'raw_file__' ~ table_name %}
    {% set columns = [] %}
    {% for name in header %}{% do columns.append(_spark_identifier(name) ~ ' string') %}{% endfor %}
    {% do columns.append('_corrupt_record string') %}
    {% do run_query(
        "create or replace temporary view " ~ view ~ " (" ~ columns | join(', ') ~ ") using csv"
        ~ " options (path " ~ _sql_string(path) ~ ", header 'true', sep ',', quote '\"',"
        ~ " escape '\"', multiLine 'true', mode 'PERMISSIVE',"
        ~ " columnNameOfCorruptRecord '_corrupt_record')"
    ) %}
    {#- Spark reads the corrupt-record column alone only from parsed rows: parse once, cached. -#}
    {% do run_query("cache table " ~ view) %}
    {{ return(view) }}
{% endmacro %}


{#- DuckDB names the defect; Spark only keeps the text, so the reason is read off it: a line
    break means a quote left open, else fewer or more delimiters outside quotes than the header
    has. -#}
{% macro _spark_insert_csv_rejects(table_name, reader, n_columns) %}
    {% set text = "trim(trailing chr(10) from _corrupt_record)" %}
    {% set n_fields = "size(split(regexp_replace(" ~ text ~ ", '\"[^\"]*\"', ''), ','))" %}
    {% do run_query(
        "insert into raw.csv_rejects select '" ~ table_name ~ "', cast(null as bigint),"
        ~ " size(split(" ~ text ~ ", chr(10))),"
        ~ " case when instr(" ~ text ~ ", chr(10)) > 0 then 'UNQUOTED VALUE'"
        ~ " when " ~ n_fields ~ " < " ~ n_columns ~ " then 'MISSING COLUMNS'"
        ~ " when " ~ n_fields ~ " > " ~ n_columns ~ " then 'TOO MANY COLUMNS'"
        ~ " else 'UNQUOTED VALUE' end, _corrupt_record, 'malformed line (Spark CSV reader)'"
        ~ " from " ~ reader ~ " where _corrupt_record is not null"
    ) %}
{% endmacro %}


{#- As _with_derived_order_ids: the id is a hash of the row's content and its occurrence among
    identical rows (Spark's row_number needs an order; identical rows make any order the same). -#}
{% macro _spark_with_derived_order_ids(relation, spec) %}
    {% set content = [] %}
    {% set other_columns = spec.columns | reject('equalto', 'order_id') | list %}
    {% for column in other_columns %}
        {% do content.append("coalesce(cast(" ~ column ~ " as string), '')") %}
    {% endfor %}
    {% set row_hash = "md5(concat_ws('|', " ~ content | join(', ') ~ "))" %}
    {% set order_id = row_hash ~ " || '-' || row_number() over (partition by "
        ~ content | join(', ') ~ " order by " ~ content | join(', ') ~ ")" %}
    {{ return("select " ~ other_columns | join(', ') ~ ", " ~ order_id ~ " as order_id from ("
        ~ relation ~ ") as keyed") }}
{% endmacro %}
