{#- Shared typing rules for staging: raw CSV arrives as text, Parquet already typed. -#}

{#- Trimmed text, null when empty or when it holds U+FFFD: a byte the file's encoding could not
    decode (ml/ingest/files.py) leaves no trustworthy value; core.quarantined_values notes it.
    A value that starts and ends with a printable ASCII character other than a space (every id
    of a clean file) is already trimmed and not empty: trim copies every string, and skipping it
    there saves about 40% of this macro's cost (four ids of 5.6M web events). -#}
{% macro clean_text(column) -%}
    {%- set text = 'cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ ')' -%}
    case
        when contains({{ text }}, {{ replacement_character() }}) then null
        when
            ascii({{ text }}) between 33 and 126
            and ascii(right({{ text }}, 1)) between 33 and 126
            then {{ text }}
        else nullif(trim({{ text }}), '')
    end
{%- endmacro %}

{% macro clean_lower(column) -%}
    lower({{ clean_text(column) }})
{%- endmacro %}

{#- The controlled value of a raw spelling. An open categorical (a shop's own regions, channels,
    genders) keeps its cleaned spelling when the vocabulary lacks it: the vocabulary only folds
    known synonyms ("m" -> male), and the one-hot levels are learned from the data
    (feature_stats). A closed enum (order status, event type, touch channel) is read strictly
    instead, straight from the join: an unknown spelling is null and quarantined. -#}
{% macro vocabulary_value(vocabulary_alias, raw_column) -%}
    coalesce({{ vocabulary_alias }}.value, {{ clean_lower(raw_column) }})
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

{#- A timestamp from raw text: ISO 8601 (what the engine casts), or a bare YYYYMMDD date as
    transaction logs write it. Anything else (01/02/1997 could be either day order) is null and
    quarantined: a mapping states the format (timestamp_format), it is never guessed. -#}
{% macro parse_timestamp(column) -%}
    coalesce(
        try_cast({{ column }} as timestamp),
        {{ timestamp_from_yyyymmdd('trim(cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ '))') }}
    )
{%- endmacro %}
