{#- customer_scores on Spark, where Python models do not run: the champion's scores in SQL
    (customer_scores_sql) in the columns of the Python model of the same name (DuckDB only,
    disabled on Spark in dbt_project.yml). Reasons and value columns come from Python: null. -#}
{{ config(enabled=(target.type == 'spark')) }}

with

scores_sql as (

    select * from {{ ref('customer_scores_sql') }}

),

final as (

    select
        customer_id,
        as_of,
        model_id,
        purchase_probability,
        propensity_decile,
        segment_id,
        segment_name,
        cast(null as {{ dbt.type_string() }}) as reason_1,
        cast(null as {{ dbt.type_string() }}) as reason_2,
        cast(null as {{ dbt.type_string() }}) as reason_3,
        cast(null as double) as expected_orders,
        cast(null as double) as probability_alive,
        cast(null as double) as predicted_revenue,
        cast(null as integer) as predicted_revenue_decile,
        cast(null as double) as predicted_clv
    from scores_sql

)

select * from final
