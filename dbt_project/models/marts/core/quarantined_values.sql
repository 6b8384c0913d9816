{#- Values set to null in rows that were kept: a byte the file's encoding could not decode
    (U+FFFD after ml/ingest re-encoded the file), or text where a timestamp or number belongs
    in a column that may be empty. The row itself stays: a bad field never costs a customer or a
    purchase. Rows rejected whole are in quarantined_rows instead. -#}
{#- The contract's typed columns that may be empty (not keys). One that a rule requires rejects
    its row when it does not parse, so only the optional ones ever appear here. -#}
{%- set parsed_columns = {} -%}
{%- for source_table, spec in raw_contract().items() -%}
{%- do parsed_columns.update({source_table: (spec.timestamps + spec.numbers
    + spec.get('booleans', [])) | reject('in', spec.key_columns) | list}) -%}
{%- endfor -%}

with

{% for source_table, spec in raw_contract().items() %}
{{ source_table }}_suspects as (

    select * from {{ ref('base_shop__' ~ source_table) }}
    where
        rejection_reason is null
        and (
            contains(cast(raw_record as {{ dbt.type_string() }}), {{ replacement_character() }})
            {%- for column in parsed_columns.get(source_table, []) %}
            or {{ column }} is null
            {%- endfor %}
        )

),

{{ source_table }}_columns as (

    {% for column in spec.columns -%}
    select '{{ column }}' as column_name
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

-- Every contract column of every suspect row as (name, raw text): one scan of the suspects
-- (Spark recomputes a CTE at every reference; a union branch per column rescanned them).
{{ source_table }}_cells as (

    select
        {{ source_table }}_columns.column_name,
        cast({{ source_table }}_suspects.{{ spec.columns[0] }} as {{ dbt.type_string() }})
            as row_key,
        case {{ source_table }}_columns.column_name
            {%- for column in spec.columns %}
            when '{{ column }}'
                then {{ json_field(source_table ~ '_suspects.raw_record', column) }}
            {%- endfor %}
        end as raw_value,
        {% if parsed_columns.get(source_table) -%}
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
    cross join {{ source_table }}_columns

),

{{ source_table }}_values as (

    select
        '{{ source_table }}' as source_table,
        row_key,
        column_name,
        case
            when contains(raw_value, {{ replacement_character() }}) then 'undecodable_value'
            else 'unparsable_value'
        end as rule,
        raw_value
    from {{ source_table }}_cells
    where
        contains(raw_value, {{ replacement_character() }})
        or (is_typed_value_null and nullif(trim(raw_value), '') is not null)

),

{% endfor %}
final as (

    {% for source_table in raw_contract() -%}
    select * from {{ source_table }}_values
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select
    md5(concat_ws('|', source_table, row_key, column_name, raw_value, row_number() over (
        partition by source_table, row_key, column_name, raw_value order by rule
    ))) as quarantined_value_id,
    *
from final
