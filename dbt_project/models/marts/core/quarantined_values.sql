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
            contains(cast(raw_record as varchar), chr(65533))
            {%- for column in parsed_columns.get(source_table, []) %}
            or {{ column }} is null
            {%- endfor %}
        )

),

{{ source_table }}_values as (

    {% for column in spec.columns -%}
    {%- set raw_value = "json_extract_string(raw_record, '$." ~ column ~ "')" -%}
    select
        '{{ source_table }}' as source_table,
        cast({{ spec.columns[0] }} as varchar) as row_key,
        '{{ column }}' as column_name,
        case
            when contains({{ raw_value }}, chr(65533)) then 'undecodable_value'
            else 'unparsable_value'
        end as rule,
        {{ raw_value }} as raw_value
    from {{ source_table }}_suspects
    where
        contains({{ raw_value }}, chr(65533))
        {%- if column in parsed_columns.get(source_table, []) %}
        or ({{ column }} is null and nullif(trim({{ raw_value }}), '') is not null)
        {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

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
