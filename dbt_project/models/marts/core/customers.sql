with

customers as (

    select * from {{ ref('stg_shop__customers') }}

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
        max(activity_on) as last_ordered_on,
    from order_days
    group by customer_id

),

-- BI never sees the raw email; a stable hash still lets analysts count distinct addresses.
final as (

    select
        -- ids
        customers.customer_id,
        md5(customers.email) as email_hash,

        -- strings
        customers.gender,
        customers.region,
        customers.city,
        customers.acquisition_channel,

        -- numerics
        customers.income,
        cast(coalesce(lifetime_orders.n_orders, 0) as bigint) as n_orders,
        cast(coalesce(lifetime_orders.n_purchases, 0) as bigint) as n_purchases,
        cast(coalesce(lifetime_orders.lifetime_value, 0) as decimal(18, 2)) as lifetime_value,

        -- booleans
        customers.is_marketing_opt_in,

        -- dates and timestamps
        customers.birth_date,
        customers.created_at,
        customers.updated_at,
        lifetime_orders.first_ordered_on,
        lifetime_orders.last_ordered_on,

    from customers
    left join lifetime_orders
        on customers.customer_id = lifetime_orders.customer_id
    -- Known only by a rejected profile row, with no order: nothing to show (it is quarantined).
    where customers.created_at is not null

)

select * from final
