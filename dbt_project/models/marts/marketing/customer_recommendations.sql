{#- A category pair needs this many shared orders before its lift is trusted. -#}
{%- set min_pair_orders = var('recommendation_min_pair_orders') | int -%}
{#- Categories bought this recently are not recommended again. -#}
{%- set recent_days = var('recommendation_recent_days') | int -%}

with

customer_day_baskets as (

    select * from {{ ref('int_order_items_aggregated_to_customer_day_baskets') }}

),

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}

),

customer_scores as (

    select * from {{ ref('customer_scores') }}

),

as_of as (

    select max(as_of_on) as as_of_on from snapshot_dates

),

-- Counted orders only (the baskets hold no cancelled order); on or after as_of is the future.
counted_baskets as (

    select
        customer_day_baskets.customer_id,
        customer_day_baskets.activity_on,
        customer_day_baskets.basket,
        customer_day_baskets.n_orders
    from customer_day_baskets
    cross join as_of
    where customer_day_baskets.activity_on < as_of.as_of_on

),

-- Orders with the same categories count together: 1,001 distinct baskets at M (10 categories)
-- against 9.2M customer-day rows; then one row per basket and category.
basket_sizes as (

    select
        basket,
        cast(sum(n_orders) as bigint) as n_orders
    from counted_baskets
    group by basket

),

basket_category_names as (

    select
        basket,
        n_orders,
        {{ split_to_rows('basket', basket_separator()) }} as category
    from basket_sizes

),

-- Integer keys in category-name order: the joins and rankings below run on them, not on the
-- names.
categories as (

    select
        category,
        row_number() over (order by category) as category_key
    from (
        select distinct category
        from basket_category_names
    ) as bought_categories

),

basket_categories as (

    select
        basket_category_names.basket,
        basket_category_names.n_orders,
        categories.category_key
    from basket_category_names
    inner join categories
        on basket_category_names.category = categories.category

),

n_orders_total as (

    select cast(sum(n_orders) as bigint) as n_orders from basket_sizes

),

category_orders as (

    select
        category_key,
        cast(sum(n_orders) as bigint) as n_orders
    from basket_categories
    group by category_key

),

category_pairs as (

    select
        antecedent.category_key as antecedent_key,
        consequent.category_key as consequent_key,
        cast(sum(antecedent.n_orders) as bigint) as n_orders_together
    from basket_categories as antecedent
    inner join basket_categories as consequent
        on antecedent.basket = consequent.basket
        and antecedent.category_key <> consequent.category_key
    group by antecedent.category_key, consequent.category_key

),

-- lift = P(both) / (P(antecedent) * P(consequent)): above 1, bought together more than chance.
category_lift as (

    select
        category_pairs.antecedent_key,
        category_pairs.consequent_key,
        category_pairs.n_orders_together,
        category_pairs.n_orders_together * n_orders_total.n_orders
        / (antecedent_orders.n_orders * consequent_orders.n_orders) as lift
    from category_pairs
    cross join n_orders_total
    inner join category_orders as antecedent_orders
        on category_pairs.antecedent_key = antecedent_orders.category_key
    inner join category_orders as consequent_orders
        on category_pairs.consequent_key = consequent_orders.category_key
    where category_pairs.n_orders_together >= {{ min_pair_orders }}

),

-- A customer's orders with the same basket first, then one row per category.
customer_baskets as (

    select
        customer_id,
        basket,
        max(activity_on) as last_bought_on
    from counted_baskets
    group by customer_id, basket

),

customer_category_dates as (

    select
        customer_baskets.customer_id,
        basket_categories.category_key,
        customer_baskets.last_bought_on
    from customer_baskets
    inner join basket_categories
        on customer_baskets.basket = basket_categories.basket

),

customer_categories as (

    select
        customer_id,
        category_key,
        max(last_bought_on) as last_bought_on
    from customer_category_dates
    group by customer_id, category_key

),

recent_categories as (

    select
        customer_categories.customer_id,
        customer_categories.category_key
    from customer_categories
    cross join as_of
    where customer_categories.last_bought_on >= as_of.as_of_on - {{ recent_days }}

),

-- A candidate's score is its strongest lift from any category the customer has bought.
co_purchase as (

    select
        customer_categories.customer_id,
        category_lift.consequent_key as category_key,
        max(category_lift.lift) as score,
        1 as source_order
    from customer_categories
    inner join category_lift
        on customer_categories.category_key = category_lift.antecedent_key
    where category_lift.lift > 1
    group by customer_categories.customer_id, category_lift.consequent_key

),

segment_sizes as (

    select
        segment_id,
        count(*) as n_customers
    from customer_scores
    group by segment_id

),

-- The fallback: the share of the customer's ML segment that bought the category in the year
-- before as_of.
segment_category_share as (

    select
        customer_scores.segment_id,
        customer_categories.category_key,
        count(*) / any_value(segment_sizes.n_customers) as share_of_segment
    from customer_categories
    inner join customer_scores
        on customer_categories.customer_id = customer_scores.customer_id
    inner join segment_sizes
        on customer_scores.segment_id = segment_sizes.segment_id
    cross join as_of
    where customer_categories.last_bought_on >= as_of.as_of_on - 365
    group by customer_scores.segment_id, customer_categories.category_key

),

segment_popular as (

    select
        customer_scores.customer_id,
        segment_category_share.category_key,
        segment_category_share.share_of_segment as score,
        2 as source_order
    from customer_scores
    inner join segment_category_share
        on customer_scores.segment_id = segment_category_share.segment_id

),

-- Categories bought recently are never recommended.
eligible_co_purchase as (

    select co_purchase.*
    from co_purchase
    inner join customer_scores
        on co_purchase.customer_id = customer_scores.customer_id
    left join recent_categories
        on co_purchase.customer_id = recent_categories.customer_id
        and co_purchase.category_key = recent_categories.category_key
    where recent_categories.customer_id is null

),

-- A category found by both sources keeps its co-purchase reason.
excluded_from_segment_popular as (

    select
        customer_id,
        category_key
    from recent_categories
    union all
    select
        customer_id,
        category_key
    from co_purchase

),

eligible_segment_popular as (

    select segment_popular.*
    from segment_popular
    left join excluded_from_segment_popular
        on segment_popular.customer_id = excluded_from_segment_popular.customer_id
        and segment_popular.category_key = excluded_from_segment_popular.category_key
    where excluded_from_segment_popular.customer_id is null

),

deduplicated as (

    select * from eligible_co_purchase
    union all
    select * from eligible_segment_popular

),

-- Co-purchase candidates rank first: they come from the customer's own baskets. Keys sort as
-- the names do.
ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by source_order asc, score desc, category_key asc
        ) as rank  -- noqa: RF04
    from deduplicated

),

final as (

    select
        -- ids
        ranked.customer_id,

        -- strings
        categories.category,
        case
            when ranked.source_order = 1 then 'co_purchase'
            else 'segment_popular'
        end as source,  -- noqa: RF04

        -- numerics
        cast(ranked.rank as integer) as rank,  -- noqa: RF04
        cast(ranked.score as double) as score,

        -- dates
        as_of.as_of_on as as_of

    from ranked
    inner join categories
        on ranked.category_key = categories.category_key
    cross join as_of
    where ranked.rank <= 3

)

select * from final
