{#-
    The champion's scoring SQL (ml/serving/champion_sql.py writes it at each promotion), read by
    customer_scores_sql when it runs. DuckDB keeps it in a table of the warehouse; Spark defines
    the table over the Parquet file the registry writes beside champion.json (SEGMART_MODELS_DIR),
    as landing defines raw tables over files. Before the first promotion the table is empty.
-#}
{% macro create_champion_scoring_table() %}
    {% do adapter.dispatch('create_champion_scoring_table')() %}
    {#- dbt read the schema's relations before this hook ran: without this, a first build
        would find no table and score nothing. -#}
    {% if execute %}
        {% do adapter.cache_added(source('predictions', 'champion_scoring_sql').incorporate(
            type='table')) %}
    {% endif %}
{% endmacro %}

{% macro default__create_champion_scoring_table() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% do run_query("create schema if not exists predictions") %}
    {% do run_query(
        "create table if not exists predictions.champion_scoring_sql (model_id varchar,"
        ~ " feature_stats_fitted_as_of date, scoring_sql varchar, note varchar)"
    ) %}
{% endmacro %}

{#- Dropping a table with a location leaves its file: the registry's, rewritten at promotion. -#}
{% macro spark__create_champion_scoring_table() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set models_dir = env_var('SEGMART_MODELS_DIR', '../warehouse/models') %}
    {% do run_query("create schema if not exists predictions") %}
    {% do run_query("drop table if exists predictions.champion_scoring_sql") %}
    {% do run_query(
        "create table predictions.champion_scoring_sql (model_id string,"
        ~ " feature_stats_fitted_as_of date, scoring_sql string, note string) using parquet"
        ~ " location '" ~ models_dir ~ "/champion_scoring_sql.parquet'"
    ) %}
{% endmacro %}


{#- The champion: on DuckDB the registry's (champion_model, which refuses a changed artifact);
    Spark runs no Python model, so there it is the row of the scoring SQL's table. -#}
{% macro champion_relation() %}
    {{- return(adapter.dispatch('champion_relation')()) -}}
{% endmacro %}

{% macro default__champion_relation() %}
    {{- return(ref('champion_model')) -}}
{% endmacro %}

{% macro spark__champion_relation() %}
    {{- return(source('predictions', 'champion_scoring_sql')) -}}
{% endmacro %}


{#- The champion's row of predictions.champion_scoring_sql at execution time, or none (with a
    warning) when there is no champion or its model has no SQL. Fails when the table holds
    another model than the champion: its SQL would score the wrong model. -#}
{% macro champion_scoring() %}
    {#- Both relations are named before the execute check so that dbt's parser sees them. -#}
    {% set scoring_table = source('predictions', 'champion_scoring_sql') %}
    {% set champion = champion_relation() %}
    {#- Absent before the first build (`dbt compile`, sqlfluff): as if there were no champion. -#}
    {% if not execute or load_relation(scoring_table) is none or load_relation(champion) is none %}
        {{ return(none) }}
    {% endif %}
    {% set champion_ids = run_query("select model_id from " ~ champion).columns[0].values() %}
    {% set rows = run_query(
        "select model_id, scoring_sql, note from " ~ scoring_table
    ).rows %}
    {% if champion_ids | length == 0 %}
        {% do log("segmart warning: no champion: " ~ this ~ " is empty (promote a model with"
            ~ " `segmart models promote ID`, or run `segmart run`)", info=True) %}
        {{ return(none) }}
    {% endif %}
    {% if rows | length == 0 or rows[0]['model_id'] != champion_ids[0] %}
        {% do exceptions.raise_compiler_error(
            "the champion " ~ champion_ids[0] ~ " has no scoring SQL in " ~ scoring_table
            ~ ": promote it again with `segmart models promote " ~ champion_ids[0] ~ "`") %}
    {% endif %}
    {% if rows[0]['scoring_sql'] is none %}
        {% do log("segmart warning: champion " ~ champion_ids[0] ~ " cannot be scored in SQL ("
            ~ rows[0]['note'] ~ "): " ~ this ~ " is empty", info=True) %}
        {{ return(none) }}
    {% endif %}
    {{ return(rows[0]) }}
{% endmacro %}


{#- The champion's scores of `features` (a relation with the feature mart's columns), or a typed
    empty select when there is no SQL to score with. -#}
{% macro champion_scores_select(scoring, features) -%}
    {%- if scoring is none -%}
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as double) as purchase_probability,
        cast(null as integer) as segment_id,
        cast(null as integer) as propensity_decile,
        cast(null as {{ dbt.type_string() }}) as segment_name,
        cast(null as {{ dbt.type_string() }}) as model_id
    where 1 = 0
    {%- else -%}
    select
        scored.*,
        '{{ scoring["model_id"] | replace("'", "''") }}' as model_id
    from (
        {{ scoring['scoring_sql'] | replace('__champion_features__', features) }}
    ) as scored
    {%- endif -%}
{%- endmacro %}
