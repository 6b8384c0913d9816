{#- A table: every other base model checks its customer ids against it. -#}
{{ config(materialized='table') }}

{#- The customers that exist. With a customers file: every id it holds, whether or not its
    profile row passes validation, so a profile defect never turns valid purchases, visits or
    touches into orphans. Without one (an orders export or a transaction log): every customer
    who ordered. `first_created_at` is the earliest parseable sign-up of the id's rows. -#}

with

customer_rows as (

    select
        {{ clean_text('customer_id') }} as customer_id,
        {{ parse_timestamp('created_at') }} as created_at
    from {{ source('shop', 'customers') }}

),

order_rows as (

    select {{ clean_text('customer_id') }} as customer_id
    from {{ source('shop', 'orders') }}

),

has_customers_file as (

    select count(*) > 0 as is_present from customer_rows

),

known_ids as (

    select
        customer_id,
        -- The earliest sign-up that passes validation (see base_shop__customers).
        min(case
            when created_at between {{ date_var('min_valid_date') }} and {{ loaded_at() }}
                then created_at
        end) as first_created_at,
        true as has_profile_rows
    from customer_rows
    where customer_id is not null
    group by customer_id

    union all

    select
        customer_id,
        cast(null as timestamp) as first_created_at,
        false as has_profile_rows
    from order_rows
    where
        customer_id is not null
        and not (select has_customers_file.is_present from has_customers_file)
    group by customer_id

)

select * from known_ids
