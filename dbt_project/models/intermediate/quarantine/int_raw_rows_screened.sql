{#- What both quarantine marts report, from one scan of each base view: each mart re-evaluated
    every base view before, serialising every row's raw_record, and that was most of their time.
    Only the findings are kept, so no raw record of a row staging kept is stored here.
    Incremental on DuckDB: a run screens again only the rows whose findings it can change
    (macros/incremental_quarantine.sql). -#}
{{ config(
    materialized=staging_materialization(),
    incremental_strategy='append',
    pre_hook="{{ delete_findings_to_rescreen() }}",
    post_hook="{{ record_screened_files() }}"
) }}
{#- Queried only on an incremental run: a unit test gives no raw tables. -#}
{% set plan = screening_plan() if is_incremental() else none %}
{#- The contract's typed columns that may be empty (not keys). One that a rule requires rejects
    its row when it does not parse, so only the optional ones ever hold a value set to null. -#}
{%- set parsed_columns = {} -%}
{%- for source_table, spec in raw_contract().items() -%}
{%- do parsed_columns.update({source_table: (spec.timestamps + spec.numbers
    + spec.get('booleans', [])) | reject('in', spec.key_columns) | list}) -%}
{%- endfor %}
-- depends_on: {{ ref('base_shop__customer_ids') }}, {{ ref('stg_shop__orders') }} (screening_plan)

with

{% for source_table, spec in raw_contract().items() %}
{{ source_table }}_rows as (

    select
        *,
        cast(raw_record as {{ dbt.type_string() }}) as raw_record_text
    from {{ ref('base_shop__' ~ source_table) }}
    where {{ rows_to_rescreen(plan, source_table, spec.columns[0]) }}

),

-- Rejected rows, and kept rows that may hold a value set to null.
{{ source_table }}_suspects as (

    select
        *,
        contains(raw_record_text, {{ replacement_character() }}) as has_undecodable_text
    from {{ source_table }}_rows
    where
        rejection_reason is not null
        or contains(raw_record_text, {{ replacement_character() }})
        {%- for column in parsed_columns[source_table] %}
        or {{ column }} is null
        {%- endfor %}

),

-- The contract's columns, and null standing for the whole row.
{{ source_table }}_columns as (

    select cast(null as {{ dbt.type_string() }}) as column_name
    {% for column in spec.columns -%}
    union all
    select '{{ column }}' as column_name
    {% endfor %}

),

-- A rejected row once, as a whole; a kept one once per contract column that may hold a value
-- set to null (any, when the row holds undecodable text): one scan of the suspects (Spark
-- recomputes a CTE at every reference).
{{ source_table }}_cells as (

    select
        {{ source_table }}_columns.column_name,
        {{ source_table }}_suspects.*,
        {% if parsed_columns[source_table] -%}
        case {{ source_table }}_columns.column_name
            {%- for column in parsed_columns[source_table] %}
            when '{{ column }}' then {{ source_table }}_suspects.{{ column }} is null
            {%- endfor %}
            else false
        end as is_typed_value_null
        {%- else -%}
        false as is_typed_value_null
        {%- endif %}
    from {{ source_table }}_suspects
    inner join {{ source_table }}_columns
        on ({{ source_table }}_columns.column_name is null)
        = ({{ source_table }}_suspects.rejection_reason is not null)

),

-- The raw text only of the cells that may hold a finding: parsing JSON is the cost here.
{{ source_table }}_checked_cells as (

    select
        column_name,
        cast({{ spec.columns[0] }} as {{ dbt.type_string() }}) as row_key,
        {% if 'customer_id' in spec.columns -%}
        customer_id,
        {%- else -%}
        cast(null as {{ dbt.type_string() }}) as customer_id,
        {%- endif %}
        rejection_reason,
        raw_record_text,
        case column_name
            {%- for column in spec.columns %}
            when '{{ column }}' then {{ json_field('raw_record_text', column) }}
            {%- endfor %}
        end as raw_value,
        is_typed_value_null
    from {{ source_table }}_cells
    where rejection_reason is not null or has_undecodable_text or is_typed_value_null

),

{{ source_table }}_findings as (

    select
        '{{ source_table }}' as source_table,
        row_key,
        customer_id,
        column_name,
        case
            when rejection_reason is not null then rejection_reason
            when contains(raw_value, {{ replacement_character() }}) then 'undecodable_value'
            else 'unparsable_value'
        end as rule,
        raw_value,
        case when rejection_reason is not null then raw_record_text end as raw_record
    from {{ source_table }}_checked_cells
    where
        rejection_reason is not null
        or contains(raw_value, {{ replacement_character() }})
        or (is_typed_value_null and nullif(trim(raw_value), '') is not null)

),

{% endfor %}
final as (

    {% for source_table in raw_contract() -%}
    select * from {{ source_table }}_findings
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from final
