{#-
    The few places where DuckDB and Spark SQL differ, one macro each (jaffle-shop's pattern).
    The duckdb__ variants emit exactly the SQL the models had before Spark, so a DuckDB build
    is unchanged; everything else in the models is portable SQL or a dbt cross-database macro.
-#}

{#- U+FFFD, the character a byte the file's encoding could not decode became. -#}
{% macro replacement_character() %}
    {{- return(adapter.dispatch('replacement_character')()) -}}
{% endmacro %}

{% macro default__replacement_character() -%}
    chr(65533)
{%- endmacro %}

{#- Spark's chr() wraps at 256; its string literals take \u escapes instead. -#}
{% macro spark__replacement_character() -%}
    '\uFFFD'
{%- endmacro %}


{#- A row of `relation_alias` as one JSON object (the quarantine's raw_record). -#}
{% macro row_as_json(relation_alias) %}
    {{- return(adapter.dispatch('row_as_json')(relation_alias)) -}}
{% endmacro %}

{% macro default__row_as_json(relation_alias) -%}
    to_json({{ relation_alias }})
{%- endmacro %}

{#- Spark leaves null fields out of the object: json_field reads them back as null all the same. -#}
{% macro spark__row_as_json(relation_alias) -%}
    to_json(struct({{ relation_alias }}.*))
{%- endmacro %}


{#- The text of top-level field `key` of a JSON object, null when absent. -#}
{% macro json_field(json_text, key) %}
    {{- return(adapter.dispatch('json_field')(json_text, key)) -}}
{% endmacro %}

{% macro default__json_field(json_text, key) -%}
    json_extract_string({{ json_text }}, '$.{{ key }}')
{%- endmacro %}

{% macro spark__json_field(json_text, key) -%}
    get_json_object({{ json_text }}, '$.{{ key }}')
{%- endmacro %}


{#- A timestamp from text holding a bare YYYYMMDD date (transaction logs), else null. -#}
{% macro timestamp_from_yyyymmdd(text) %}
    {{- return(adapter.dispatch('timestamp_from_yyyymmdd')(text)) -}}
{% endmacro %}

{% macro default__timestamp_from_yyyymmdd(text) -%}
    case
        when regexp_full_match({{ text }}, '[0-9]{8}')
            then try_strptime({{ text }}, '%Y%m%d')
    end
{%- endmacro %}

{#- With ANSI mode off (dbt-spark forces it) to_timestamp returns null on a bad date. -#}
{% macro spark__timestamp_from_yyyymmdd(text) -%}
    case
        when {{ text }} rlike '^[0-9]{8}$'
            then to_timestamp({{ text }}, 'yyyyMMdd')
    end
{%- endmacro %}


{#- Whole days from start_date to end_date (dates; null when either is null). dbt.datediff on
    Spark asserts both are non-null, and features need the null. -#}
{% macro days_between(start_date, end_date) %}
    {{- return(adapter.dispatch('days_between')(start_date, end_date)) -}}
{% endmacro %}

{% macro default__days_between(start_date, end_date) -%}
    ({{ end_date }} - {{ start_date }})
{%- endmacro %}

{#- date - date is an interval on Spark. -#}
{% macro spark__days_between(start_date, end_date) -%}
    datediff({{ end_date }}, {{ start_date }})
{%- endmacro %}


{#- The integers 0 .. n - 1 as a relation with one column, step_index. -#}
{% macro integer_series(n) %}
    {{- return(adapter.dispatch('integer_series')(n)) -}}
{% endmacro %}

{% macro default__integer_series(n) -%}
    (select range as step_index from range({{ n }}))
{%- endmacro %}

{% macro spark__integer_series(n) -%}
    (select id as step_index from range({{ n }}))
{%- endmacro %}


{#- Fails the query with `message` (a SQL string expression) when evaluated. -#}
{% macro raise_error(message) %}
    {{- return(adapter.dispatch('raise_error')(message)) -}}
{% endmacro %}

{% macro default__raise_error(message) -%}
    error({{ message }})
{%- endmacro %}

{#- raise_error() is typed null: cast, so it can stand where a boolean is expected. -#}
{% macro spark__raise_error(message) -%}
    cast(raise_error({{ message }}) as boolean)
{%- endmacro %}


{#- Values joined by `delimiter` in the order of `order_by` (an aggregate). dbt.listagg drops
    the order on Spark. -#}
{% macro ordered_string_agg(expression, delimiter, order_by) %}
    {{- return(adapter.dispatch('ordered_string_agg')(expression, delimiter, order_by)) -}}
{% endmacro %}

{% macro default__ordered_string_agg(expression, delimiter, order_by) -%}
    string_agg(
            {{ expression }},
            {{ delimiter }} order by {{ order_by }}
        )
{%- endmacro %}

{% macro spark__ordered_string_agg(expression, delimiter, order_by) -%}
    string_agg({{ expression }}, {{ delimiter }}) within group (order by {{ order_by }})
{%- endmacro %}


{#- The distinct values of `expression` in ascending order, joined by `delimiter` (an
    aggregate): a list sorted per group, cheaper than string_agg's order by. -#}
{% macro sorted_distinct_string_agg(expression, delimiter) %}
    {{- return(adapter.dispatch('sorted_distinct_string_agg')(expression, delimiter)) -}}
{% endmacro %}

{% macro default__sorted_distinct_string_agg(expression, delimiter) -%}
    array_to_string(list_sort(list(distinct {{ expression }})), {{ delimiter }})
{%- endmacro %}

{% macro spark__sorted_distinct_string_agg(expression, delimiter) -%}
    array_join(array_sort(collect_set({{ expression }})), {{ delimiter }})
{%- endmacro %}


{#- What separates the categories of a basket (int_order_items_aggregated_to_customer_day_baskets):
    the ASCII unit separator, which no category name holds, unlike '|' or ','. -#}
{% macro basket_separator() -%}
    chr(31)
{%- endmacro %}


{#- One row per part of `expression` split at `delimiter` (a table function in the select list;
    Spark's split takes a pattern: the delimiter must not be a regex metacharacter). -#}
{% macro split_to_rows(expression, delimiter) %}
    {{- return(adapter.dispatch('split_to_rows')(expression, delimiter)) -}}
{% endmacro %}

{% macro default__split_to_rows(expression, delimiter) -%}
    unnest(string_split({{ expression }}, {{ delimiter }}))
{%- endmacro %}

{% macro spark__split_to_rows(expression, delimiter) -%}
    explode(split({{ expression }}, {{ delimiter }}))
{%- endmacro %}


{#- How an incremental model replaces the slices (unique_key values) a run writes and keeps
    the others: delete+insert; Spark's Parquet tables have no delete, so they overwrite those
    partitions (profiles.yml sets spark.sql.sources.partitionOverwriteMode to dynamic). Used by
    feature_stats (by fitted_as_of) and customer_score_history (by as_of, model_id). -#}
{% macro slice_overwrite_strategy() %}
    {{- return(adapter.dispatch('slice_overwrite_strategy')()) -}}
{% endmacro %}

{% macro default__slice_overwrite_strategy() %}
    {{- return('delete+insert') -}}
{% endmacro %}

{% macro spark__slice_overwrite_strategy() %}
    {{- return('insert_overwrite') -}}
{% endmacro %}

{#- The partition columns that strategy overwrites by: the slice's key on Spark, none elsewhere. -#}
{% macro slice_partitions(columns) %}
    {{- return(adapter.dispatch('slice_partitions')(columns)) -}}
{% endmacro %}

{% macro default__slice_partitions(columns) %}
    {{- return(none) -}}
{% endmacro %}

{% macro spark__slice_partitions(columns) %}
    {{- return(columns) -}}
{% endmacro %}


{#- Whether all of `text` matches the regular expression `pattern` (a Python string). -#}
{% macro matches_fully(text, pattern) %}
    {{- return(adapter.dispatch('matches_fully')(text, pattern)) -}}
{% endmacro %}

{% macro default__matches_fully(text, pattern) -%}
    regexp_full_match({{ text }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__matches_fully(text, pattern) -%}
    {{ text }} rlike '^(?:{{ pattern }})$'
{%- endmacro %}


{#- Whether every item of a `|`-separated list in `list_text` is one of `allowed` (strings). -#}
{% macro pipe_list_within(list_text, allowed) %}
    {{- return(adapter.dispatch('pipe_list_within')(list_text, allowed)) -}}
{% endmacro %}

{% macro default__pipe_list_within(list_text, allowed) -%}
    {%- set literals = [] -%}
    {%- for item in allowed %}{% do literals.append("'" ~ item | replace("'", "''") ~ "'") %}{% endfor -%}
    list_has_all(
        [{{ literals | join(', ') }}],
        list_transform(string_split({{ list_text }}, '|'), lambda name: trim(name))
    )
{%- endmacro %}

{#- Spark reads 'a''b' as two adjacent literals ('ab'): a quote is escaped with a backslash. -#}
{% macro spark__pipe_list_within(list_text, allowed) -%}
    {%- set literals = [] -%}
    {%- for item in allowed %}{% do literals.append("'" ~ item | replace("'", "\\'") ~ "'") %}{% endfor -%}
    size(array_except(
        transform(split({{ list_text }}, '[|]'), name -> trim(name)),
        array({{ literals | join(', ') }})
    )) = 0
{%- endmacro %}
