{#- A date var as a SQL literal, or none when unset; anything but YYYY-MM-DD is refused. -#}
{% macro date_var(name) %}
    {% set value = var(name) %}
    {% if value is none or value | string | trim in ('', 'none', 'None', 'null') %}
        {{ return(none) }}
    {% endif %}
    {% if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) %}
        {% do exceptions.raise_compiler_error(
            "var " ~ name ~ " must be a date YYYY-MM-DD, got: " ~ value) %}
    {% endif %}
    {{ return("date '" ~ value ~ "'") }}
{% endmacro %}

{#- A positive integer var; anything else is refused. -#}
{% macro int_var(name) %}
    {% set value = var(name) | string %}
    {% if not modules.re.match('^[0-9]+$', value) or value | int < 1 %}
        {% do exceptions.raise_compiler_error(
            "var " ~ name ~ " must be a positive integer, got: " ~ value) %}
    {% endif %}
    {{ return(value | int) }}
{% endmacro %}
