with

validated as (

    select
        *,
        -- A profile with no timestamp at all (an export of ids and attributes) is in force
        -- for every snapshot: nothing says when it changed.
        coalesce(updated_at, created_at, timestamp '1970-01-01') as valid_from
    from {{ ref('base_shop__customers') }}
    where rejection_reason is null

),

-- A re-load with a new updated_at is a new version of the profile; rows with the same
-- updated_at are copies of one version: keep one, deterministically.
deduplicated as (

    select
        *,
        count(*) over (partition by customer_id) as n_loaded_copies
    from validated
    qualify row_number() over (partition by customer_id, valid_from order by raw_record) = 1

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
        -- A channel's own consent when the shop states it, else the general opt-in. A stated
        -- value that does not parse (quarantined) is no consent: never contact on a guess.
        {%- for channel in ['email', 'sms', 'push'] %}
        case
            when is_{{ channel }}_consent_stated then coalesce({{ channel }}_consent, false)
            else coalesce(is_marketing_opt_in, false)
        end as has_{{ channel }}_consent,
        {%- endfor %}
        lead(valid_from) over customer_versions is null as is_current,

        -- dates and timestamps
        case
            when birth_date <= coalesce(cast(created_at as date), current_date)
                and birth_date >= date '1900-01-01' then birth_date
        end as birth_date,
        created_at,
        valid_from as updated_at,
        valid_from,
        lead(valid_from) over customer_versions as valid_to,

        -- lineage
        n_loaded_copies

    from deduplicated
    window customer_versions as (partition by customer_id order by valid_from)

)

select * from cleaned
