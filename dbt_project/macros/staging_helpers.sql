{#- Shared typing rules for staging: raw CSV arrives as text, Parquet already typed. -#}

{% macro clean_text(column) -%}
    nullif(trim(cast({{ column }} as varchar)), '')
{%- endmacro %}

{% macro clean_lower(column) -%}
    lower({{ clean_text(column) }})
{%- endmacro %}

{#- The controlled value for a raw spelling; 'other' for a spelling the vocabulary lacks. -#}
{% macro vocabulary_value(vocabulary_alias, raw_column) -%}
    case
        when {{ clean_lower(raw_column) }} is null then null
        else coalesce({{ vocabulary_alias }}.value, 'other')
    end
{%- endmacro %}

{% macro join_vocabulary(vocabulary_alias, field, raw_column) -%}
    left join {{ ref('controlled_vocabulary') }} as {{ vocabulary_alias }}
        on {{ vocabulary_alias }}.field = '{{ field }}'
        and {{ vocabulary_alias }}.spelling = {{ clean_lower(raw_column) }}
{%- endmacro %}

{% macro parse_bool(column) -%}
    case
        when {{ clean_lower(column) }} in ('true', 't', 'yes', 'y', '1') then true
        when {{ clean_lower(column) }} in ('false', 'f', 'no', 'n', '0') then false
    end
{%- endmacro %}

{#- When the raw files were landed: the reference for "in the future" rules. -#}
{% macro loaded_at() -%}
    (select max(loaded_at) from {{ source('shop', 'files') }})
{%- endmacro %}
