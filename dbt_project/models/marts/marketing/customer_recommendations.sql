{#- A category pair needs this many shared orders before its lift is trusted. -#}
{%- set min_pair_orders = var('recommendation_min_pair_orders') | int -%}
{#- Categories bought this recently are not recommended again. -#}
{%- set recent_days = var('recommendation_recent_days') | int -%}

with

orders as (

    select * from {{ ref('orders') }}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

products as (

    select * from {{ ref('stg_shop__products') }}

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

-- Cancelled orders say nothing about what goes together; orders on or after as_of are the future.
order_categories as (

    select distinct
        orders.order_id,
        orders.customer_id,
        orders.ordered_on,
        products.category
    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    inner join products
        on order_items.product_id = products.product_id
    cross join as_of
    where orders.is_counted_purchase
        and orders.ordered_on < as_of.as_of_on
        and products.category <> 'unknown'

),

n_orders_total as (

    select count(distinct order_id) as n_orders from order_categories

),

category_orders as (

    select
        category,
        count(*) as n_orders
    from order_categories
    group by category

),

category_pairs as (

    select
        antecedent.category as antecedent_category,
        consequent.category as consequent_category,
        count(*) as n_orders_together
    from order_categories as antecedent
    inner join order_categories as consequent
        on antecedent.order_id = consequent.order_id
        and antecedent.category <> consequent.category
    group by antecedent.category, consequent.category

),

-- lift = P(both) / (P(antecedent) * P(consequent)): above 1, bought together more than chance.
category_lift as (

    select
        category_pairs.antecedent_category,
        category_pairs.consequent_category,
        category_pairs.n_orders_together,
        category_pairs.n_orders_together * n_orders_total.n_orders
        / (antecedent_orders.n_orders * consequent_orders.n_orders) as lift
    from category_pairs
    cross join n_orders_total
    inner join category_orders as antecedent_orders
        on category_pairs.antecedent_category = antecedent_orders.category
    inner join category_orders as consequent_orders
        on category_pairs.consequent_category = consequent_orders.category
    where category_pairs.n_orders_together >= {{ min_pair_orders }}

),

customer_categories as (

    select
        customer_id,
        category,
        max(ordered_on) as last_bought_on
    from order_categories
    group by customer_id, category

),

recent_categories as (

    select
        customer_categories.customer_id,
        customer_categories.category
    from customer_categories
    cross join as_of
    where customer_categories.last_bought_on >= as_of.as_of_on - {{ recent_days }}

),

-- A candidate's score is its strongest lift from any category the customer has bought.
co_purchase as (

    select
        customer_categories.customer_id,
        category_lift.consequent_category as category,
        max(category_lift.lift) as score,
        'co_purchase' as source,  -- noqa: RF04
        1 as source_order
    from customer_categories
    inner join category_lift
        on customer_categories.category = category_lift.antecedent_category
    where category_lift.lift > 1
    group by customer_categories.customer_id, category_lift.consequent_category

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
        customer_categories.category,
        count(*) / any_value(segment_sizes.n_customers) as share_of_segment
    from customer_categories
    inner join customer_scores
        on customer_categories.customer_id = customer_scores.customer_id
    inner join segment_sizes
        on customer_scores.segment_id = segment_sizes.segment_id
    cross join as_of
    where customer_categories.last_bought_on >= as_of.as_of_on - 365
    group by customer_scores.segment_id, customer_categories.category

),

segment_popular as (

    select
        customer_scores.customer_id,
        segment_category_share.category,
        segment_category_share.share_of_segment as score,
        'segment_popular' as source,  -- noqa: RF04
        2 as source_order
    from customer_scores
    inner join segment_category_share
        on customer_scores.segment_id = segment_category_share.segment_id

),

candidates as (

    select * from co_purchase
    union all
    select * from segment_popular

),

eligible as (

    select candidates.*
    from candidates
    inner join customer_scores
        on candidates.customer_id = customer_scores.customer_id
    left join recent_categories
        on candidates.customer_id = recent_categories.customer_id
        and candidates.category = recent_categories.category
    where recent_categories.customer_id is null

),

-- A category found by both sources keeps its co-purchase reason.
deduplicated as (

    select
        customer_id,
        category,
        score,
        source,
        source_order
    from (
        select
            *,
            row_number() over (
                partition by customer_id, category order by source_order
            ) as source_rank
        from eligible
    ) as ranked_sources
    where source_rank = 1

),

-- Co-purchase candidates rank first: they come from the customer's own baskets.
ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by source_order asc, score desc, category asc
        ) as rank  -- noqa: RF04
    from deduplicated

),

final as (

    select
        -- ids
        ranked.customer_id,

        -- strings
        ranked.category,
        ranked.source,

        -- numerics
        cast(ranked.rank as integer) as rank,  -- noqa: RF04
        cast(ranked.score as double) as score,

        -- dates
        as_of.as_of_on as as_of

    from ranked
    cross join as_of
    where ranked.rank <= 3

)

select * from final
