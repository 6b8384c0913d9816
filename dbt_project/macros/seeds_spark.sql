{#-
    Seeds on Spark with values as SQL literals. dbt-spark 1.11's session connection pastes each
    binding between single quotes unescaped: an empty cell becomes the string 'None' and a quote
    in a value ("Can't lose them" in audience_playbook) breaks the insert. This override of its
    spark__load_csv_rows is the same insert with escaped literals and real nulls.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {% set column_override = model['config'].get('column_types', {}) %}
    {% set statements = [] %}
    {% for chunk in agate_table.rows | batch(get_batch_size()) %}
        {% set rows = [] %}
        {% for row in chunk %}
            {% set values = [] %}
            {% for col_name in agate_table.column_names %}
                {% set type = column_override.get(
                    col_name, adapter.convert_type(agate_table, loop.index0)) %}
                {% do values.append(
                    "cast(" ~ _spark_seed_literal(row[loop.index0]) ~ " as " ~ type ~ ")") %}
            {% endfor %}
            {% do rows.append("(" ~ values | join(", ") ~ ")") %}
        {% endfor %}
        {% set sql = "insert into " ~ this.render() ~ " values " ~ rows | join(", ") %}
        {% do adapter.add_query(sql, abridge_sql_log=True) %}
        {% if loop.first %}{% do statements.append(sql) %}{% endif %}
    {% endfor %}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}


{% macro _spark_seed_literal(value) %}
    {% if value is none %}{{ return('null') }}{% endif %}
    {% if value is sameas true or value is sameas false %}{{ return(value | string | lower) }}{% endif %}
    {% if value is number %}{{ return(value | string) }}{% endif %}
    {{ return("'" ~ value | string | replace('\\', '\\\\') | replace("'", "\\'") ~ "'") }}
{% endmacro %}
