with

customer_ids as (

    select * from {{ ref('base_shop__customer_ids') }}

),

versions as (

    select * from {{ ref('stg_shop__customer_versions') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

-- Re-loads repeat a customer: the version with the latest updated_at wins.
current_versions as (

    select * from versions
    where is_current

),

first_orders as (

    select
        customer_id,
        min(ordered_at) as first_ordered_at
    from orders
    group by customer_id

),

-- Every known customer, with or without a valid profile: one whose profile row was rejected
-- (or who came from an orders export without a customers file) has a missing profile, imputed
-- downstream, and signed up when they first ordered if nothing else says when.
final as (

    select
        -- ids
        customer_ids.customer_id,

        -- strings
        current_versions.email,
        current_versions.gender,
        current_versions.region,
        current_versions.city,
        current_versions.acquisition_channel,

        -- numerics
        current_versions.income,
        coalesce(current_versions.n_loaded_copies, 0) as n_loaded_copies,

        -- booleans
        coalesce(current_versions.is_marketing_opt_in, false) as is_marketing_opt_in,
        coalesce(current_versions.has_email_consent, false) as has_email_consent,
        coalesce(current_versions.has_sms_consent, false) as has_sms_consent,
        coalesce(current_versions.has_push_consent, false) as has_push_consent,
        current_versions.customer_id is not null as has_profile,

        -- dates and timestamps
        current_versions.birth_date,
        coalesce(
            current_versions.created_at,
            customer_ids.first_created_at,
            first_orders.first_ordered_at
        ) as created_at,
        current_versions.updated_at

    from customer_ids
    left join current_versions
        on customer_ids.customer_id = current_versions.customer_id
    left join first_orders
        on customer_ids.customer_id = first_orders.customer_id

)

select * from final
