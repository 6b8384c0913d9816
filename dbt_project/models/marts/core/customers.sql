with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}

),

order_days as (

    select * from {{ ref('int_orders_aggregated_to_customer_days') }}

),

lifetime_orders as (

    select
        customer_id,
        sum(n_orders) as n_orders,
        sum(n_purchases) as n_purchases,
        sum(purchase_value) as lifetime_value,
        min(activity_on) as first_ordered_on,
        max(activity_on) as last_ordered_on
    from order_days
    group by customer_id

),

as_of as (

    select max(as_of_on) as as_of_on from snapshot_dates

),

-- BI reads no direct identifier and no quasi-identifier at full precision: a keyed hash of the
-- email, the age and income in bands, the region but not the city.
final as (

    select
        -- ids
        customers.customer_id,
        {{ keyed_hash('customers.email') }} as email_hash,

        -- strings
        customers.gender,
        customers.region,
        customers.acquisition_channel,
        {{ age_band('customers.birth_date', 'as_of.as_of_on') }} as age_band,
        {{ income_band('customers.income') }} as income_band,

        -- numerics
        cast(coalesce(lifetime_orders.n_orders, 0) as bigint) as n_orders,
        cast(coalesce(lifetime_orders.n_purchases, 0) as bigint) as n_purchases,
        cast(coalesce(lifetime_orders.lifetime_value, 0) as decimal(18, 2)) as lifetime_value,

        -- booleans
        customers.is_marketing_opt_in,

        -- dates and timestamps
        customers.created_at,
        customers.updated_at,
        lifetime_orders.first_ordered_on,
        lifetime_orders.last_ordered_on

    from customers
    cross join as_of
    left join lifetime_orders
        on customers.customer_id = lifetime_orders.customer_id
    -- Known only by a rejected profile row, with no order: nothing to show (it is quarantined).
    where customers.created_at is not null

)

select * from final
