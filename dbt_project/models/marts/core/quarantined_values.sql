{#- Values set to null in rows that were kept: a byte the file's encoding could not decode
    (U+FFFD after ml/ingest re-encoded the file), or text where a timestamp or number belongs
    in a column that may be empty. The row itself stays: a bad field never costs a customer or a
    purchase. Rows rejected whole are in quarantined_rows instead. Both come from
    int_raw_rows_screened. -#}
with

findings as (

    select * from {{ ref('int_raw_rows_screened') }}

),

bad_values as (

    select
        source_table,
        row_key,
        column_name,
        rule,
        raw_value
    from findings
    where column_name is not null

),

final as (

    select
        md5(concat_ws('|', source_table, row_key, column_name, raw_value, row_number() over (
            partition by source_table, row_key, column_name, raw_value order by rule
        ))) as quarantined_value_id,
        source_table,
        row_key,
        column_name,
        rule,
        raw_value
    from bad_values

)

select * from final
