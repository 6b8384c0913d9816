with

validated as (

    select * from {{ ref('base_shop__customers') }}
    where rejection_reason is null

),

-- Re-loads repeat a customer: the record with the latest updated_at wins.
deduplicated as (

    select
        *,
        count(*) over (partition by customer_id) as n_loaded_copies,
    from validated
    qualify
        row_number() over (
            partition by customer_id
            order by coalesce(updated_at, created_at) desc, raw_record
        ) = 1

),

-- Impossible profile values do not reject the customer: they count as missing (and get imputed).
cleaned as (

    select
        -- ids
        customer_id,

        -- strings
        email,
        gender,
        region,
        city,
        acquisition_channel,

        -- numerics
        case when income >= 0 and income <= 100 * {{ var('max_money') }} then income end as income,

        -- booleans
        coalesce(is_marketing_opt_in, false) as is_marketing_opt_in,

        -- dates and timestamps
        case
            when birth_date <= cast(created_at as date)
                and birth_date >= date '1900-01-01' then birth_date
        end as birth_date,
        created_at,
        coalesce(updated_at, created_at) as updated_at,

        -- lineage
        n_loaded_copies,

    from deduplicated

)

select * from cleaned
