{#-
    The engine differences of the marketing and predictions marts, one macro each (as in
    cross_engine.sql). The duckdb__ variants emit the SQL the marts had before they ran on
    Spark, so a DuckDB build is unchanged.
-#}

{#- `text` as an SQL string literal. -#}
{% macro string_literal(text) %}
    {{- return(adapter.dispatch('string_literal')(text)) -}}
{% endmacro %}

{% macro default__string_literal(text) -%}
    '{{ text | replace("'", "''") }}'
{%- endmacro %}

{#- Spark reads 'a''b' as two adjacent literals ('ab'): a quote is escaped with a backslash. -#}
{% macro spark__string_literal(text) -%}
    '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}


{#- The trimmed items of a `|`-separated text as a list (null stays null). -#}
{% macro pipe_list(text) %}
    {{- return(adapter.dispatch('pipe_list')(text)) -}}
{% endmacro %}

{% macro default__pipe_list(text) -%}
    list_transform(string_split({{ text }}, '|'), lambda name: trim(name))
{%- endmacro %}

{% macro spark__pipe_list(text) -%}
    transform(split({{ text }}, '[|]'), name -> trim(name))
{%- endmacro %}


{#- Whether list `items` holds `value`. -#}
{% macro list_has(items, value) %}
    {{- return(adapter.dispatch('list_has')(items, value)) -}}
{% endmacro %}

{% macro default__list_has(items, value) -%}
    list_contains({{ items }}, {{ value }})
{%- endmacro %}

{% macro spark__list_has(items, value) -%}
    array_contains({{ items }}, {{ value }})
{%- endmacro %}


{#- One row per item of list `items` (a select-list expression; a null list gives no row). -#}
{% macro list_items(items) %}
    {{- return(adapter.dispatch('list_items')(items)) -}}
{% endmacro %}

{% macro default__list_items(items) -%}
    unnest({{ items }})
{%- endmacro %}

{% macro spark__list_items(items) -%}
    explode({{ items }})
{%- endmacro %}


{#- The most frequent value of `expression`, the lowest of those tied (an aggregate). -#}
{% macro lowest_mode(expression) %}
    {{- return(adapter.dispatch('lowest_mode')(expression)) -}}
{% endmacro %}

{% macro default__lowest_mode(expression) -%}
    mode({{ expression }} order by {{ expression }})
{%- endmacro %}

{% macro spark__lowest_mode(expression) -%}
    mode({{ expression }}, true)
{%- endmacro %}


{#- The number a text of hexadecimal digits (at most 8) stands for. -#}
{% macro hex_to_number(hex_text) %}
    {{- return(adapter.dispatch('hex_to_number')(hex_text)) -}}
{% endmacro %}

{% macro default__hex_to_number(hex_text) -%}
    cast(('0x' || {{ hex_text }}) as ubigint)
{%- endmacro %}

{% macro spark__hex_to_number(hex_text) -%}
    cast(conv({{ hex_text }}, 16, 10) as double)
{%- endmacro %}


{#- `timestamp` (or date) plus `days` days, a whole number that may be negative. dbt.dateadd on
    Spark asserts its input is not null, and a warehouse without scores has a null as_of. -#}
{% macro days_after(timestamp, days) %}
    {{- return(adapter.dispatch('days_after')(timestamp, days)) -}}
{% endmacro %}

{% macro default__days_after(timestamp, days) -%}
    {{ dbt.dateadd('day', days, timestamp) }}
{%- endmacro %}

{% macro spark__days_after(timestamp, days) -%}
    ({{ timestamp }} + make_interval(0, 0, 0, {{ days }}))
{%- endmacro %}
