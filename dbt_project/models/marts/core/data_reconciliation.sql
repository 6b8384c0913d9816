{#- Rows in = rows accepted + duplicates removed + rows quarantined, per raw table. Each part
    comes from a different model (source, staging, quarantine), so a row lost or double-counted
    anywhere on the way breaks the identity. -#}

with

quarantined_rows as (

    select * from {{ ref('quarantined_rows') }}

),

csv_rejects as (

    select * from {{ source('shop', 'csv_rejects') }}

),

counts as (

    {% for source_table in raw_contract() -%}
    select
        '{{ source_table }}' as source_table,
        (select count(*) from {{ source('shop', source_table) }})
        + (
            select coalesce(sum(csv_rejects.n_lines), 0) from csv_rejects
            where csv_rejects.table_name = '{{ source_table }}'
        ) as n_raw_rows,
        -- A customer known only by id (a rejected profile) stands for no accepted row.
        count(*) filter (where n_loaded_copies > 0) as n_accepted,
        coalesce(sum(n_loaded_copies - 1) filter (where n_loaded_copies > 0), 0) as n_duplicates,
        (
            select coalesce(sum(quarantined_rows.n_raw_lines), 0) from quarantined_rows
            where quarantined_rows.source_table = '{{ source_table }}'
        ) as n_quarantined
    from {{ ref('stg_shop__' ~ source_table) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        *,
        n_raw_rows = n_accepted + n_duplicates + n_quarantined as is_reconciled
    from counts

)

select * from final
