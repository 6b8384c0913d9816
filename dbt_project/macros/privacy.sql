{#- Coarsened customer attributes for BI: no quasi-identifier at full precision. -#}

{#- Age in whole years on `on_date`, in ten-year bands; null when the birth date is unknown. -#}
{% macro age_band(birth_date, on_date) %}
    case
        when {{ birth_date }} is null then null
        when {{ full_years_between(birth_date, on_date) }} < 18 then 'under_18'
        when {{ full_years_between(birth_date, on_date) }} < 25 then '18-24'
        when {{ full_years_between(birth_date, on_date) }} < 35 then '25-34'
        when {{ full_years_between(birth_date, on_date) }} < 45 then '35-44'
        when {{ full_years_between(birth_date, on_date) }} < 55 then '45-54'
        when {{ full_years_between(birth_date, on_date) }} < 65 then '55-64'
        else '65+'
    end
{% endmacro %}

{#- Yearly income in bands; null when unknown. -#}
{% macro income_band(income) %}
    case
        when {{ income }} is null then null
        when {{ income }} < 25000 then 'under_25k'
        when {{ income }} < 50000 then '25k-50k'
        when {{ income }} < 75000 then '50k-75k'
        when {{ income }} < 100000 then '75k-100k'
        when {{ income }} < 150000 then '100k-150k'
        else '150k+'
    end
{% endmacro %}

{#- Birthdays passed, not calendar-year boundaries crossed (dbt.datediff counts the latter). -#}
{% macro full_years_between(start_date, end_date) %}
    {{ return(adapter.dispatch('full_years_between')(start_date, end_date)) }}
{% endmacro %}

{% macro default__full_years_between(start_date, end_date) %}
    cast(floor(months_between({{ end_date }}, {{ start_date }}) / 12) as integer)
{% endmacro %}

{% macro duckdb__full_years_between(start_date, end_date) %}
    datesub('year', {{ start_date }}, {{ end_date }})
{% endmacro %}

{#- A keyed hash (sha256 of key and value) that a list of addresses cannot reverse without the
    key. The key reaches DuckDB as the session variable segmart_hash_key (profiles.yml, from
    DBT_ENV_SECRET_SEGMART_HASH_KEY); without a key the hash is null, never unkeyed. -#}
{% macro keyed_hash(value) %}
    {{ return(adapter.dispatch('keyed_hash')(value)) }}
{% endmacro %}

{% macro default__keyed_hash(value) %}
    {% do exceptions.raise_compiler_error(
        "keyed_hash has no implementation for adapter " ~ adapter.type()
        ~ ": add one that reads the key from a secret, never an unkeyed hash") %}
{% endmacro %}

{#- The key reaches Spark as the session conf spark.segmart.hash_key (profiles.yml), read by
    Spark's variable substitution at execution: the compiled SQL never holds it. -#}
{% macro spark__keyed_hash(value) %}
    case
        when nullif('${spark.segmart.hash_key}', '') is not null
            then sha2(concat('${spark.segmart.hash_key}', chr(31), {{ value }}), 256)
    end
{% endmacro %}

{% macro duckdb__keyed_hash(value) %}
    case
        when nullif(getvariable('segmart_hash_key'), '') is not null
            then sha256(getvariable('segmart_hash_key') || chr(31) || {{ value }})
    end
{% endmacro %}
