with

findings as (

    select * from {{ ref('int_raw_rows_screened') }}

),

csv_rejects as (

    select * from {{ source('shop', 'csv_rejects') }}

),

rejected_rows as (

    select
        source_table,
        rule,
        raw_record,
        1 as n_raw_lines
    from findings
    where column_name is null

),

-- A line DuckDB could not parse never reached a table: keep its text and DuckDB's reason.
malformed_lines as (

    select
        table_name as source_table,
        'malformed_csv_line: ' || lower(error_type) as rule,
        csv_line as raw_record,
        n_lines as n_raw_lines
    from csv_rejects

),

final as (

    select
        md5(concat_ws('|', source_table, rule, raw_record, row_number() over (
            partition by source_table, rule, raw_record order by n_raw_lines
        ))) as quarantined_row_id,
        source_table,
        rule,
        raw_record,
        n_raw_lines
    from (
        select * from rejected_rows
        union all
        select * from malformed_lines
    ) as quarantined

)

select * from final
