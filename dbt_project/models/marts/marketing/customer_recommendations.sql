{#- A category pair needs this many shared orders before its lift is trusted. -#}
{%- set min_pair_orders = var('recommendation_min_pair_orders') | int -%}
{#- Categories bought this recently are not recommended again. -#}
{%- set recent_days = var('recommendation_recent_days') | int -%}
{#- Categories one bigint mask holds (bits 0-61, clear of the sign bit); a unit test lowers it
    to check the path for categories past the mask against the same answer. -#}
{%- set mask_width = var('recommendation_mask_width') | int -%}
{%- if mask_width > 62 -%}
    {%- do exceptions.raise_compiler_error("var recommendation_mask_width must be at most 62, got: " ~ mask_width) -%}
{%- endif -%}

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

-- Integer keys in category-name order: the joins and rankings below run on them, not on the
-- names. An order's categories are also one bit each in a bigint mask (bit_or, `&` and power
-- exist under these names on DuckDB and Spark): orders with the same mask count together, a few
-- hundred masks instead of millions of orders. A mask holds the first mask_width categories; the
-- rare orders with a category past those take the slower path of one row per category.
categories as (

    select
        category,
        category_key,
        category_key > {{ mask_width }} as is_past_mask,
        case
            when category_key <= {{ mask_width }}
                then cast(power(2, category_key - 1) as bigint)
            else 0
        end as category_bit
    from (
        select
            category,
            row_number() over (order by category) as category_key
        from (
            select distinct category
            from products
            where category <> 'unknown'
        ) as named_categories
    ) as keyed_categories

),

product_categories as (

    select
        products.product_id,
        categories.category_key,
        categories.is_past_mask,
        categories.category_bit
    from products
    inner join categories
        on products.category = categories.category

),

-- Cancelled orders say nothing about what goes together; orders on or after as_of are the future.
counted_orders as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_on
    from orders
    cross join as_of
    where orders.is_counted_purchase
        and orders.ordered_on < as_of.as_of_on

),

order_masks as (

    select
        order_items.order_id,
        bit_or(product_categories.category_bit) as category_mask,
        max(case when product_categories.is_past_mask then 1 else 0 end) as has_past_mask
    from order_items
    inner join product_categories
        on order_items.product_id = product_categories.product_id
    group by order_items.order_id

),

counted_order_masks as (

    select
        counted_orders.order_id,
        counted_orders.customer_id,
        counted_orders.ordered_on,
        order_masks.category_mask,
        order_masks.has_past_mask
    from order_masks
    inner join counted_orders
        on order_masks.order_id = counted_orders.order_id

),

mask_sizes as (

    select
        category_mask,
        count(*) as n_orders
    from counted_order_masks
    where category_mask <> 0
    group by category_mask

),

mask_categories as (

    select
        mask_sizes.category_mask,
        mask_sizes.n_orders,
        categories.category_key
    from mask_sizes
    inner join categories
        on (mask_sizes.category_mask & categories.category_bit) <> 0

),

-- The orders with a category past the mask, one row per order and category.
past_mask_order_categories as (

    select distinct
        counted_order_masks.order_id,
        counted_order_masks.customer_id,
        counted_order_masks.ordered_on,
        product_categories.category_key,
        product_categories.is_past_mask
    from counted_order_masks
    inner join order_items
        on counted_order_masks.order_id = order_items.order_id
    inner join product_categories
        on order_items.product_id = product_categories.product_id
    where counted_order_masks.has_past_mask = 1

),

n_orders_total as (

    select count(*) as n_orders from counted_order_masks

),

category_order_counts as (

    select
        category_key,
        n_orders
    from mask_categories
    union all
    select
        category_key,
        1 as n_orders
    from past_mask_order_categories
    where is_past_mask

),

category_orders as (

    select
        category_key,
        cast(sum(n_orders) as bigint) as n_orders
    from category_order_counts
    group by category_key

),

-- Pairs within the mask from the masks, pairs with a category past it from the rows.
category_pair_counts as (

    select
        antecedent.category_key as antecedent_key,
        consequent.category_key as consequent_key,
        antecedent.n_orders
    from mask_categories as antecedent
    inner join mask_categories as consequent
        on antecedent.category_mask = consequent.category_mask
        and antecedent.category_key <> consequent.category_key
    union all
    select
        antecedent.category_key as antecedent_key,
        consequent.category_key as consequent_key,
        1 as n_orders
    from past_mask_order_categories as antecedent
    inner join past_mask_order_categories as consequent
        on antecedent.order_id = consequent.order_id
        and antecedent.category_key <> consequent.category_key
    where antecedent.is_past_mask or consequent.is_past_mask

),

category_pairs as (

    select
        antecedent_key,
        consequent_key,
        cast(sum(n_orders) as bigint) as n_orders_together
    from category_pair_counts
    group by antecedent_key, consequent_key

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

-- A customer's orders with the same mask first, then one row per category.
customer_masks as (

    select
        customer_id,
        category_mask,
        max(ordered_on) as last_bought_on
    from counted_order_masks
    where category_mask <> 0
    group by customer_id, category_mask

),

customer_category_dates as (

    select
        customer_masks.customer_id,
        categories.category_key,
        customer_masks.last_bought_on
    from customer_masks
    inner join categories
        on (customer_masks.category_mask & categories.category_bit) <> 0
    union all
    select
        customer_id,
        category_key,
        ordered_on as last_bought_on
    from past_mask_order_categories
    where is_past_mask

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
