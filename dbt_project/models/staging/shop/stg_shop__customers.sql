with

versions as (

    select * from {{ ref('stg_shop__customer_versions') }}

),

-- Re-loads repeat a customer: the version with the latest updated_at wins.
current_versions as (

    select
        customer_id,
        email,
        gender,
        region,
        city,
        acquisition_channel,
        income,
        is_marketing_opt_in,
        birth_date,
        created_at,
        updated_at,
        n_loaded_copies,
    from versions
    where is_current

)

select * from current_versions
