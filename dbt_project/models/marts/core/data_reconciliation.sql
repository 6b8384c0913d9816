{#- Rows in = rows accepted + duplicates removed + rows quarantined, per raw table. Duplicates
    are counted on their own (not as a difference), so the identity is a real check. -#}

with

quarantined_rows as (

    select * from {{ ref('quarantined_rows') }}

),

counts as (

    {% for source_table, spec in raw_contract().items() -%}
    {%- set dedup_key = {'order_items': 'order_id, product_id, quantity, unit_price'}.get(source_table, spec.key_columns[0]) -%}
    select
        '{{ source_table }}' as source_table,
        (select count(*) from {{ source('shop', source_table) }})
            + (select coalesce(sum(n_lines), 0) from {{ source('shop', 'csv_rejects') }}
               where table_name = '{{ source_table }}') as n_raw_rows,
        (select count(*) from {{ ref('stg_shop__' ~ source_table) }}) as n_accepted,
        (
            select count(*) - count(distinct ({{ dedup_key }}))
            from {{ ref('base_shop__' ~ source_table) }}
            where rejection_reason is null
        ) as n_duplicates,
        (
            select coalesce(sum(n_raw_lines), 0) from quarantined_rows
            where source_table = '{{ source_table }}'
        ) as n_quarantined,
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        *,
        n_raw_rows = n_accepted + n_duplicates + n_quarantined as is_reconciled,
    from counts

)

select * from final
