-- The practical floor: segmart's features, labels and preprocessing as one hand-written DuckDB
-- statement over the raw Parquet files. One row per customer per snapshot (the as_of snapshot
-- and the training snapshots): raw features (<feature>__raw, as in
-- int_customer_snapshots_featurized), the preprocessed columns under the marts' names
-- (customer_features, training_examples) and, for training rows, the label.
--
-- Cleaning: the staging rules that can change a feature (validity, orphans, dedup, controlled
-- vocabulary); benchmarks/README.md lists them and what is simplified. Unlike staging, which must
-- keep every valid row, the query drops anonymous web events before deduplicating them and takes
-- as_of from validated events without deduplication (a duplicate never moves a maximum).
--
-- Parameters, substituted by benchmarks.run: raw_dir, vocabulary_csv, as_of (a date literal or
-- null), horizon_days, n_snapshots, snapshot_step_days, max_money, max_quantity, min_valid_date.

create or replace table snapshot_features as

with

vocabulary as (

    select * from read_csv('${vocabulary_csv}', header = true, all_varchar = true)

),

loaded as (

    select cast(current_timestamp as timestamp) as loaded_at

),

customers_valid as (

    select
        customers.customer_id,
        customers.created_at,
        coalesce(customers.updated_at, customers.created_at) as valid_from,
        customers.birth_date,
        customers.income,
        coalesce(customers.marketing_opt_in, false) as is_marketing_opt_in,
        coalesce(gender_vocabulary.value, lower(nullif(trim(customers.gender), ''))) as gender,
        coalesce(region_vocabulary.value, lower(nullif(trim(customers.region), ''))) as region,
        coalesce(channel_vocabulary.value, lower(nullif(trim(customers.acquisition_channel), ''))) as acquisition_channel,
    from read_parquet('${raw_dir}/customers.parquet') as customers
    left join vocabulary as gender_vocabulary
        on gender_vocabulary.field = 'gender'
        and gender_vocabulary.spelling = lower(nullif(trim(customers.gender), ''))
    left join vocabulary as region_vocabulary
        on region_vocabulary.field = 'region'
        and region_vocabulary.spelling = lower(nullif(trim(customers.region), ''))
    left join vocabulary as channel_vocabulary
        on channel_vocabulary.field = 'acquisition_channel'
        and channel_vocabulary.spelling = lower(nullif(trim(customers.acquisition_channel), ''))
    where customers.customer_id is not null
        and customers.created_at <= (select loaded_at from loaded)
        and customers.created_at >= ${min_valid_date}

),

-- A re-load with a new updated_at is a new version of the profile, in force until the next one;
-- impossible values count as missing.
customer_versions as (

    select
        customer_id,
        created_at,
        valid_from,
        lead(valid_from) over (partition by customer_id order by valid_from) as valid_to,
        case
            when birth_date <= cast(created_at as date) and birth_date >= date '1900-01-01'
                then birth_date
        end as birth_date,
        case when income >= 0 and income <= 100 * ${max_money} then income end as income,
        gender,
        region,
        acquisition_channel,
        is_marketing_opt_in,
    from customers_valid
    qualify row_number() over (partition by customer_id, valid_from) = 1

),

-- Population and tenure go by the latest version.
customers as (

    select
        customer_id,
        created_at,
    from customer_versions
    where valid_to is null

),

orders as (

    select
        orders.order_id,
        orders.customer_id,
        cast(orders.ordered_at as date) as ordered_on,
        status_vocabulary.value as status,
        try_cast(orders.order_total as decimal(18, 2)) as order_total,
        coalesce(try_cast(orders.discount_total as decimal(18, 2)), 0) as discount_total,
    from read_parquet('${raw_dir}/orders.parquet') as orders
    inner join customers
        on orders.customer_id = customers.customer_id
    inner join vocabulary as status_vocabulary
        on status_vocabulary.field = 'order_status'
        and status_vocabulary.spelling = lower(nullif(trim(orders.status), ''))
    where orders.order_id is not null
        and orders.ordered_at <= (select loaded_at from loaded)
        and orders.ordered_at >= ${min_valid_date}
        and orders.ordered_at >= customers.created_at
        and try_cast(orders.order_total as decimal(18, 2)) between 0 and ${max_money}
        and coalesce(try_cast(orders.discount_total as decimal(18, 2)), 0) >= 0
    qualify row_number() over (
        partition by orders.order_id
        order by orders.ordered_at, orders.customer_id, orders.status, orders.order_total,
            orders.discount_total
    ) = 1

),

order_items as (

    select distinct
        order_id,
        product_id,
        quantity,
        try_cast(unit_price as decimal(18, 2)) as unit_price,
    from read_parquet('${raw_dir}/order_items.parquet')
    where product_id is not null
        and quantity between 1 and ${max_quantity}
        and try_cast(unit_price as decimal(18, 2)) between 0 and ${max_money}
        and order_id in (select order_id from orders)

),

products as (

    select
        product_id,
        coalesce(lower(nullif(trim(category), '')), 'unknown') as category,
    from read_parquet('${raw_dir}/products.parquet')
    where product_id is not null
        and (
            list_price is null
            or try_cast(list_price as decimal(18, 2)) between 0 and ${max_money}
        )
    qualify row_number() over (partition by product_id) = 1

),

-- Every valid event, anonymous ones included: only as_of reads them.
web_events as (

    select web_events.event_at,
    from read_parquet('${raw_dir}/web_events.parquet') as web_events
    inner join vocabulary as event_type_vocabulary
        on event_type_vocabulary.field = 'event_type'
        and event_type_vocabulary.spelling = lower(nullif(trim(web_events.event_type), ''))
    where web_events.event_id is not null
        and web_events.event_at <= (select loaded_at from loaded)
        and web_events.event_at >= ${min_valid_date}
        and (
            web_events.customer_id is null
            or web_events.customer_id in (select customer_id from customers)
        )

),

customer_events as (

    select
        web_events.customer_id,
        web_events.session_id,
        event_type_vocabulary.value as event_type,
        cast(web_events.event_at as date) as event_on,
    from read_parquet('${raw_dir}/web_events.parquet') as web_events
    inner join vocabulary as event_type_vocabulary
        on event_type_vocabulary.field = 'event_type'
        and event_type_vocabulary.spelling = lower(nullif(trim(web_events.event_type), ''))
    where web_events.event_id is not null
        and web_events.event_at <= (select loaded_at from loaded)
        and web_events.event_at >= ${min_valid_date}
        and web_events.customer_id in (select customer_id from customers)
    qualify row_number() over (
        partition by web_events.event_id
        order by web_events.event_at, web_events.customer_id, web_events.session_id,
            event_type_vocabulary.value
    ) = 1

),

-- What sessions and visits need of the events, a fraction of their rows.
session_visit_days as (

    select
        customer_id,
        session_id,
        event_on,
        count(*) filter (where event_type = 'product_view') as n_product_views,
        count(*) filter (where event_type = 'add_to_cart') as n_add_to_cart,
    from customer_events
    group by all

),

campaign_touches as (

    select
        touches.touch_id,
        touches.customer_id,
        coalesce(touches.is_control, false) as is_control,
        cast(touches.sent_at as date) as sent_on,
        cast(touches.opened_at as date) as opened_on,
        cast(touches.clicked_at as date) as clicked_on,
    from read_parquet('${raw_dir}/campaign_touches.parquet') as touches
    inner join vocabulary as channel_vocabulary
        on channel_vocabulary.field = 'touch_channel'
        and channel_vocabulary.spelling = lower(nullif(trim(touches.channel), ''))
    where touches.touch_id is not null
        and touches.sent_at <= (select loaded_at from loaded)
        and touches.sent_at >= ${min_valid_date}
        and touches.customer_id in (select customer_id from customers)
    qualify row_number() over (
        partition by touches.touch_id
        order by touches.sent_at, touches.customer_id, touches.campaign_id, touches.channel,
            touches.opened_at, touches.clicked_at
    ) = 1

),

as_of as (

    select
        coalesce(
            ${as_of},
            greatest(
                (select max(ordered_on) from orders),
                (select max(cast(event_at as date)) from web_events)
            ) + 1
        ) as as_of_on

),

snapshot_dates as (

    select
        as_of_on as snapshot_on,
        false as is_training,
    from as_of

    union all

    select
        as_of_on - cast(${horizon_days} + ${snapshot_step_days} * step.range as integer),
        true,
    from as_of
    cross join range(${n_snapshots}) as step

),

-- Snapshots numbered from the earliest; a day's bucket is the number of snapshots on or before
-- it, so its activity counts for the snapshots numbered above the bucket.
snapshot_ranks as (

    select
        snapshot_on,
        row_number() over (order by snapshot_on) as snapshot_rank,
    from snapshot_dates

),

day_buckets as (

    select
        days.activity_on,
        count(snapshot_ranks.snapshot_on) as bucket,
    from (
        select
            cast(unnest(generate_series(min(ordered_on), max(ordered_on), interval 1 day)) as date)
                as activity_on,
        from orders
    ) as days
    left join snapshot_ranks
        on snapshot_ranks.snapshot_on <= days.activity_on
    group by days.activity_on

),

units_per_order as (

    select
        order_id,
        sum(quantity) as n_units,
    from order_items
    group by order_id

),

order_days as (

    select
        orders.customer_id,
        orders.ordered_on as activity_on,
        count(*) as n_orders,
        sum(orders.order_total) as order_value,
        sum(orders.discount_total) as discount_value,
        coalesce(sum(units_per_order.n_units), 0) as n_units,
        count(units_per_order.order_id) as n_orders_with_items,
        count(*) filter (where orders.status = 'cancelled') as n_cancelled,
        count(*) filter (where orders.status = 'returned') as n_returned,
        count(*) filter (where orders.status <> 'cancelled') as n_purchases,
        sum(orders.order_total) filter (where orders.status <> 'cancelled') as purchase_value,
    from orders
    left join units_per_order
        on orders.order_id = units_per_order.order_id
    group by orders.customer_id, orders.ordered_on

),

-- Units per customer, category and bucket: at most one row per snapshot interval instead of one
-- per day, each repeated only for the snapshots up to the customer's next bucket of that category.
category_buckets as (

    select
        orders.customer_id,
        coalesce(products.category, 'unknown') as category,
        day_buckets.bucket,
        sum(order_items.quantity) as n_units,
    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    inner join day_buckets
        on orders.ordered_on = day_buckets.activity_on
    left join products
        on order_items.product_id = products.product_id
    group by all

),

category_running_units as (

    select
        customer_id,
        category,
        bucket,
        sum(n_units) over (partition by customer_id, category order by bucket) as n_units,
        lead(bucket, 1, (select count(*) from snapshot_ranks)) over (
            partition by customer_id, category order by bucket
        ) as next_bucket,
    from category_buckets

),

category_history as (

    select
        category_running_units.customer_id,
        snapshot_ranks.snapshot_on,
        count(*) as n_distinct_categories,
        max(category_running_units.n_units) / sum(category_running_units.n_units)
            as top_category_share,
    from (
        select
            *,
            unnest(range(bucket + 1, next_bucket + 1)) as snapshot_rank,
        from category_running_units
    ) as category_running_units
    inner join snapshot_ranks
        on category_running_units.snapshot_rank = snapshot_ranks.snapshot_rank
    group by all

),

-- A session counts on the day it started.
session_days as (

    select
        customer_id,
        activity_on,
        count(*) as n_sessions,
    from (
        select
            customer_id,
            min(event_on) as activity_on,
        from session_visit_days
        group by customer_id, session_id
    )
    group by all

),

visit_days as (

    select
        customer_id,
        event_on as activity_on,
        sum(n_product_views) as n_product_views,
        sum(n_add_to_cart) as n_add_to_cart,
    from session_visit_days
    group by all

),

-- Opens and clicks count on the day they happened; control touches were never delivered.
touch_days as (

    select
        customer_id,
        activity_on,
        sum(n_touches) as n_touches,
        sum(n_opened) as n_opened,
        sum(n_clicked) as n_clicked,
    from (
        select customer_id, sent_on as activity_on, 1 as n_touches, 0 as n_opened, 0 as n_clicked
        from campaign_touches
        where not is_control
        union all
        select customer_id, opened_on, 0, 1, 0
        from campaign_touches
        where not is_control and opened_on is not null
        union all
        select customer_id, clicked_on, 0, 0, 1
        from campaign_touches
        where not is_control and clicked_on is not null
    )
    group by all

),

-- The profile is the version in force before the snapshot (none yet: missing).
population as (

    select
        customers.customer_id,
        snapshot_dates.snapshot_on,
        snapshot_dates.is_training,
        snapshot_dates.snapshot_on - cast(customers.created_at as date) as tenure_days,
        profiles.birth_date,
        profiles.income,
        profiles.gender,
        profiles.region,
        profiles.acquisition_channel,
        coalesce(profiles.is_marketing_opt_in, false) as is_marketing_opt_in,
    from customers
    inner join snapshot_dates
        on customers.created_at < snapshot_dates.snapshot_on
    left join customer_versions as profiles
        on customers.customer_id = profiles.customer_id
        and profiles.valid_from < snapshot_dates.snapshot_on
        and (profiles.valid_to is null or profiles.valid_to >= snapshot_dates.snapshot_on)

),

order_history as (

    select
        order_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(order_days.n_orders) as n_orders,
        sum(order_days.n_orders)
            filter (where order_days.activity_on >= snapshot_dates.snapshot_on - 30)
            as n_orders_30d,
        sum(order_days.n_orders)
            filter (where order_days.activity_on >= snapshot_dates.snapshot_on - 90)
            as n_orders_90d,
        sum(order_days.n_orders)
            filter (where order_days.activity_on >= snapshot_dates.snapshot_on - 365)
            as n_orders_365d,
        sum(order_days.n_orders)
            filter (
                where order_days.activity_on >= snapshot_dates.snapshot_on - 180
                and order_days.activity_on < snapshot_dates.snapshot_on - 90
            )
            as n_orders_prev_90d,
        sum(order_days.order_value) as revenue,
        sum(order_days.order_value)
            filter (where order_days.activity_on >= snapshot_dates.snapshot_on - 90)
            as revenue_90d,
        sum(order_days.discount_value) as discount_value,
        sum(order_days.n_units) as n_units,
        sum(order_days.n_orders_with_items) as n_orders_with_items,
        sum(order_days.n_orders)
            filter (where order_days.activity_on < snapshot_dates.snapshot_on - 30)
            as n_settled_orders,
        sum(order_days.n_cancelled)
            filter (where order_days.activity_on < snapshot_dates.snapshot_on - 30)
            as n_settled_cancelled,
        sum(order_days.n_returned)
            filter (where order_days.activity_on < snapshot_dates.snapshot_on - 30)
            as n_settled_returned,
        min(order_days.activity_on) as first_ordered_on,
        max(order_days.activity_on) as last_ordered_on,
    from order_days
    inner join snapshot_dates
        on order_days.activity_on < snapshot_dates.snapshot_on
    group by order_days.customer_id, snapshot_dates.snapshot_on

),

visit_history as (

    select
        visit_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(visit_days.n_product_views)
            filter (where visit_days.activity_on >= snapshot_dates.snapshot_on - 90)
            as n_product_views_90d,
        sum(visit_days.n_add_to_cart)
            filter (where visit_days.activity_on >= snapshot_dates.snapshot_on - 90)
            as n_add_to_cart_90d,
        max(visit_days.activity_on) as last_visited_on,
    from visit_days
    inner join snapshot_dates
        on visit_days.activity_on < snapshot_dates.snapshot_on
    group by all

),

session_history as (

    select
        session_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(session_days.n_sessions) as n_sessions_90d,
    from session_days
    inner join snapshot_dates
        on session_days.activity_on < snapshot_dates.snapshot_on
        and session_days.activity_on >= snapshot_dates.snapshot_on - 90
    group by all

),

touch_history as (

    select
        touch_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(touch_days.n_touches) as n_touches_90d,
        sum(touch_days.n_opened) as n_opened_90d,
        sum(touch_days.n_clicked) as n_clicked_90d,
    from touch_days
    inner join snapshot_dates
        on touch_days.activity_on < snapshot_dates.snapshot_on
        and touch_days.activity_on >= snapshot_dates.snapshot_on - 90
    group by all

),

label_history as (

    select
        order_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(order_days.n_purchases) as n_purchases_in_horizon,
        sum(order_days.purchase_value) as revenue_in_horizon,
    from order_days
    inner join snapshot_dates
        on snapshot_dates.is_training
        and order_days.activity_on >= snapshot_dates.snapshot_on
        and order_days.activity_on < snapshot_dates.snapshot_on + ${horizon_days}
    group by all

),

-- A rate is missing where its denominator is 0 (least() alone would skip the null).
featurized as (

    select
        population.customer_id,
        population.snapshot_on,
        population.is_training,
        cast(population.snapshot_on + ${horizon_days} as date) as label_ends_on,
        case
            when population.is_training then coalesce(label_history.n_purchases_in_horizon, 0) > 0
        end as purchased_in_horizon,
        case
            when population.is_training
                then cast(coalesce(label_history.revenue_in_horizon, 0) as double)
        end as revenue_in_horizon,
        cast(population.snapshot_on - order_history.last_ordered_on as double)
            as days_since_last_order__raw,
        cast(coalesce(order_history.n_orders, 0) as double) as n_orders__raw,
        cast(coalesce(order_history.n_orders_30d, 0) as double) as n_orders_30d__raw,
        cast(coalesce(order_history.n_orders_90d, 0) as double) as n_orders_90d__raw,
        cast(coalesce(order_history.n_orders_365d, 0) as double) as n_orders_365d__raw,
        -- No order: 0; orders without amounts: missing (as int_customer_snapshots_featurized).
        case
            when order_history.customer_id is null then 0
            when order_history.revenue is not null then cast(order_history.revenue as double)
        end as revenue__raw,
        case
            when order_history.customer_id is null then 0
            when order_history.revenue is not null
                then cast(coalesce(order_history.revenue_90d, 0) as double)
        end as revenue_90d__raw,
        cast(order_history.revenue / order_history.n_orders as double) as avg_order_value__raw,
        cast(population.tenure_days as double) as tenure_days__raw,
        case
            when order_history.n_orders >= 2
                then (order_history.last_ordered_on - order_history.first_ordered_on)
                / (order_history.n_orders - 1)
        end as avg_days_between_orders__raw,
        cast(coalesce(order_history.n_orders_prev_90d, 0) as double) as n_orders_prev_90d__raw,
        (coalesce(order_history.n_orders_90d, 0) / least(population.tenure_days, 90))
            / (order_history.n_orders / population.tenure_days) as order_rate_trend_90d__raw,
        case
            when order_history.n_orders >= 2
                and order_history.last_ordered_on > order_history.first_ordered_on
                then (population.snapshot_on - order_history.last_ordered_on)
                * (order_history.n_orders - 1)
                / (order_history.last_ordered_on - order_history.first_ordered_on)
        end as recency_to_gap_ratio__raw,
        order_history.n_units / nullif(order_history.n_orders_with_items, 0)
            as avg_items_per_order__raw,
        cast(coalesce(category_history.n_distinct_categories, 0) as double)
            as n_distinct_categories__raw,
        category_history.top_category_share as top_category_share__raw,
        cast(
            order_history.discount_value
            / nullif(order_history.revenue + order_history.discount_value, 0) as double
        ) as discount_share__raw,
        order_history.n_settled_cancelled / nullif(order_history.n_settled_orders, 0)
            as cancel_rate__raw,
        order_history.n_settled_returned / nullif(order_history.n_settled_orders, 0)
            as return_rate__raw,
        cast(coalesce(session_history.n_sessions_90d, 0) as double) as n_sessions_90d__raw,
        cast(coalesce(visit_history.n_product_views_90d, 0) as double)
            as n_product_views_90d__raw,
        cast(coalesce(visit_history.n_add_to_cart_90d, 0) as double) as n_add_to_cart_90d__raw,
        case
            when visit_history.n_add_to_cart_90d > 0 then least(
                1.0, coalesce(order_history.n_orders_90d, 0) / visit_history.n_add_to_cart_90d
            )
        end as cart_to_order_rate_90d__raw,
        cast(population.snapshot_on - visit_history.last_visited_on as double)
            as days_since_last_visit__raw,
        cast(coalesce(touch_history.n_touches_90d, 0) as double) as n_touches_90d__raw,
        case
            when touch_history.n_touches_90d > 0
                then least(1.0, touch_history.n_opened_90d / touch_history.n_touches_90d)
        end as open_rate_90d__raw,
        case
            when touch_history.n_touches_90d > 0
                then least(1.0, touch_history.n_clicked_90d / touch_history.n_touches_90d)
        end as click_rate_90d__raw,
        cast(datesub('year', population.birth_date, population.snapshot_on) as double)
            as age_years__raw,
        population.income as income__raw,
        coalesce(population.gender, 'unknown') as gender__raw,
        coalesce(population.region, 'unknown') as region__raw,
        coalesce(population.acquisition_channel, 'unknown') as acquisition_channel__raw,
        population.is_marketing_opt_in as is_marketing_opt_in__raw,
    from population
    left join order_history
        on population.customer_id = order_history.customer_id
        and population.snapshot_on = order_history.snapshot_on
    left join category_history
        on population.customer_id = category_history.customer_id
        and population.snapshot_on = category_history.snapshot_on
    left join visit_history
        on population.customer_id = visit_history.customer_id
        and population.snapshot_on = visit_history.snapshot_on
    left join session_history
        on population.customer_id = session_history.customer_id
        and population.snapshot_on = session_history.snapshot_on
    left join touch_history
        on population.customer_id = touch_history.customer_id
        and population.snapshot_on = touch_history.snapshot_on
    left join label_history
        on population.customer_id = label_history.customer_id
        and population.snapshot_on = label_history.snapshot_on

),

-- Imputation, log1p and z-score are fitted on the training rows, applied to every row.
impute_values as (

    select
        coalesce(avg(days_since_last_order__raw), 0) as days_since_last_order,
        coalesce(avg(n_orders__raw), 0) as n_orders,
        coalesce(avg(n_orders_30d__raw), 0) as n_orders_30d,
        coalesce(avg(n_orders_90d__raw), 0) as n_orders_90d,
        coalesce(avg(n_orders_365d__raw), 0) as n_orders_365d,
        coalesce(avg(revenue__raw), 0) as revenue,
        coalesce(avg(revenue_90d__raw), 0) as revenue_90d,
        coalesce(avg(avg_order_value__raw), 0) as avg_order_value,
        coalesce(avg(tenure_days__raw), 0) as tenure_days,
        coalesce(avg(avg_days_between_orders__raw), 0) as avg_days_between_orders,
        coalesce(avg(n_orders_prev_90d__raw), 0) as n_orders_prev_90d,
        coalesce(avg(order_rate_trend_90d__raw), 0) as order_rate_trend_90d,
        coalesce(avg(recency_to_gap_ratio__raw), 0) as recency_to_gap_ratio,
        coalesce(avg(avg_items_per_order__raw), 0) as avg_items_per_order,
        coalesce(avg(n_distinct_categories__raw), 0) as n_distinct_categories,
        coalesce(avg(top_category_share__raw), 0) as top_category_share,
        coalesce(avg(discount_share__raw), 0) as discount_share,
        coalesce(avg(cancel_rate__raw), 0) as cancel_rate,
        coalesce(avg(return_rate__raw), 0) as return_rate,
        coalesce(avg(n_sessions_90d__raw), 0) as n_sessions_90d,
        coalesce(avg(n_product_views_90d__raw), 0) as n_product_views_90d,
        coalesce(avg(n_add_to_cart_90d__raw), 0) as n_add_to_cart_90d,
        coalesce(avg(cart_to_order_rate_90d__raw), 0) as cart_to_order_rate_90d,
        coalesce(avg(days_since_last_visit__raw), 0) as days_since_last_visit,
        coalesce(avg(n_touches_90d__raw), 0) as n_touches_90d,
        coalesce(avg(open_rate_90d__raw), 0) as open_rate_90d,
        coalesce(avg(click_rate_90d__raw), 0) as click_rate_90d,
        coalesce(avg(age_years__raw), 0) as age_years,
        coalesce(avg(income__raw), 0) as income,
    from featurized
    where is_training

),

imputed as (

    select
        featurized.*,
        coalesce(days_since_last_order__raw, impute_values.days_since_last_order)
            as days_since_last_order,
        coalesce(n_orders__raw, impute_values.n_orders) as n_orders,
        coalesce(n_orders_30d__raw, impute_values.n_orders_30d) as n_orders_30d,
        coalesce(n_orders_90d__raw, impute_values.n_orders_90d) as n_orders_90d,
        coalesce(n_orders_365d__raw, impute_values.n_orders_365d) as n_orders_365d,
        coalesce(revenue__raw, impute_values.revenue) as revenue,
        coalesce(revenue_90d__raw, impute_values.revenue_90d) as revenue_90d,
        coalesce(avg_order_value__raw, impute_values.avg_order_value) as avg_order_value,
        coalesce(tenure_days__raw, impute_values.tenure_days) as tenure_days,
        coalesce(avg_days_between_orders__raw, impute_values.avg_days_between_orders)
            as avg_days_between_orders,
        coalesce(n_orders_prev_90d__raw, impute_values.n_orders_prev_90d) as n_orders_prev_90d,
        coalesce(order_rate_trend_90d__raw, impute_values.order_rate_trend_90d)
            as order_rate_trend_90d,
        coalesce(recency_to_gap_ratio__raw, impute_values.recency_to_gap_ratio)
            as recency_to_gap_ratio,
        coalesce(avg_items_per_order__raw, impute_values.avg_items_per_order)
            as avg_items_per_order,
        coalesce(n_distinct_categories__raw, impute_values.n_distinct_categories)
            as n_distinct_categories,
        coalesce(top_category_share__raw, impute_values.top_category_share) as top_category_share,
        coalesce(discount_share__raw, impute_values.discount_share) as discount_share,
        coalesce(cancel_rate__raw, impute_values.cancel_rate) as cancel_rate,
        coalesce(return_rate__raw, impute_values.return_rate) as return_rate,
        coalesce(n_sessions_90d__raw, impute_values.n_sessions_90d) as n_sessions_90d,
        coalesce(n_product_views_90d__raw, impute_values.n_product_views_90d)
            as n_product_views_90d,
        coalesce(n_add_to_cart_90d__raw, impute_values.n_add_to_cart_90d) as n_add_to_cart_90d,
        coalesce(cart_to_order_rate_90d__raw, impute_values.cart_to_order_rate_90d)
            as cart_to_order_rate_90d,
        coalesce(days_since_last_visit__raw, impute_values.days_since_last_visit)
            as days_since_last_visit,
        coalesce(n_touches_90d__raw, impute_values.n_touches_90d) as n_touches_90d,
        coalesce(open_rate_90d__raw, impute_values.open_rate_90d) as open_rate_90d,
        coalesce(click_rate_90d__raw, impute_values.click_rate_90d) as click_rate_90d,
        coalesce(age_years__raw, impute_values.age_years) as age_years,
        coalesce(income__raw, impute_values.income) as income,
    from featurized
    cross join impute_values

),

transformed as (

    select
        *,
        days_since_last_order as days_since_last_order__t,
        ln(1 + n_orders) as n_orders__t,
        ln(1 + n_orders_30d) as n_orders_30d__t,
        ln(1 + n_orders_90d) as n_orders_90d__t,
        ln(1 + n_orders_365d) as n_orders_365d__t,
        ln(1 + revenue) as revenue__t,
        ln(1 + revenue_90d) as revenue_90d__t,
        ln(1 + avg_order_value) as avg_order_value__t,
        tenure_days as tenure_days__t,
        avg_days_between_orders as avg_days_between_orders__t,
        ln(1 + n_orders_prev_90d) as n_orders_prev_90d__t,
        ln(1 + order_rate_trend_90d) as order_rate_trend_90d__t,
        ln(1 + recency_to_gap_ratio) as recency_to_gap_ratio__t,
        ln(1 + avg_items_per_order) as avg_items_per_order__t,
        n_distinct_categories as n_distinct_categories__t,
        top_category_share as top_category_share__t,
        discount_share as discount_share__t,
        cancel_rate as cancel_rate__t,
        return_rate as return_rate__t,
        ln(1 + n_sessions_90d) as n_sessions_90d__t,
        ln(1 + n_product_views_90d) as n_product_views_90d__t,
        ln(1 + n_add_to_cart_90d) as n_add_to_cart_90d__t,
        cart_to_order_rate_90d as cart_to_order_rate_90d__t,
        days_since_last_visit as days_since_last_visit__t,
        ln(1 + n_touches_90d) as n_touches_90d__t,
        open_rate_90d as open_rate_90d__t,
        click_rate_90d as click_rate_90d__t,
        age_years as age_years__t,
        ln(1 + income) as income__t,
    from imputed

),

moments as (

    select
        avg(days_since_last_order__t) as days_since_last_order__mean,
        coalesce(nullif(stddev_pop(days_since_last_order__t), 0), 1)
            as days_since_last_order__scale,
        avg(n_orders__t) as n_orders__mean,
        coalesce(nullif(stddev_pop(n_orders__t), 0), 1) as n_orders__scale,
        avg(n_orders_30d__t) as n_orders_30d__mean,
        coalesce(nullif(stddev_pop(n_orders_30d__t), 0), 1) as n_orders_30d__scale,
        avg(n_orders_90d__t) as n_orders_90d__mean,
        coalesce(nullif(stddev_pop(n_orders_90d__t), 0), 1) as n_orders_90d__scale,
        avg(n_orders_365d__t) as n_orders_365d__mean,
        coalesce(nullif(stddev_pop(n_orders_365d__t), 0), 1) as n_orders_365d__scale,
        avg(revenue__t) as revenue__mean,
        coalesce(nullif(stddev_pop(revenue__t), 0), 1) as revenue__scale,
        avg(revenue_90d__t) as revenue_90d__mean,
        coalesce(nullif(stddev_pop(revenue_90d__t), 0), 1) as revenue_90d__scale,
        avg(avg_order_value__t) as avg_order_value__mean,
        coalesce(nullif(stddev_pop(avg_order_value__t), 0), 1) as avg_order_value__scale,
        avg(tenure_days__t) as tenure_days__mean,
        coalesce(nullif(stddev_pop(tenure_days__t), 0), 1) as tenure_days__scale,
        avg(avg_days_between_orders__t) as avg_days_between_orders__mean,
        coalesce(nullif(stddev_pop(avg_days_between_orders__t), 0), 1)
            as avg_days_between_orders__scale,
        avg(n_orders_prev_90d__t) as n_orders_prev_90d__mean,
        coalesce(nullif(stddev_pop(n_orders_prev_90d__t), 0), 1) as n_orders_prev_90d__scale,
        avg(order_rate_trend_90d__t) as order_rate_trend_90d__mean,
        coalesce(nullif(stddev_pop(order_rate_trend_90d__t), 0), 1)
            as order_rate_trend_90d__scale,
        avg(recency_to_gap_ratio__t) as recency_to_gap_ratio__mean,
        coalesce(nullif(stddev_pop(recency_to_gap_ratio__t), 0), 1)
            as recency_to_gap_ratio__scale,
        avg(avg_items_per_order__t) as avg_items_per_order__mean,
        coalesce(nullif(stddev_pop(avg_items_per_order__t), 0), 1) as avg_items_per_order__scale,
        avg(n_distinct_categories__t) as n_distinct_categories__mean,
        coalesce(nullif(stddev_pop(n_distinct_categories__t), 0), 1)
            as n_distinct_categories__scale,
        avg(top_category_share__t) as top_category_share__mean,
        coalesce(nullif(stddev_pop(top_category_share__t), 0), 1) as top_category_share__scale,
        avg(discount_share__t) as discount_share__mean,
        coalesce(nullif(stddev_pop(discount_share__t), 0), 1) as discount_share__scale,
        avg(cancel_rate__t) as cancel_rate__mean,
        coalesce(nullif(stddev_pop(cancel_rate__t), 0), 1) as cancel_rate__scale,
        avg(return_rate__t) as return_rate__mean,
        coalesce(nullif(stddev_pop(return_rate__t), 0), 1) as return_rate__scale,
        avg(n_sessions_90d__t) as n_sessions_90d__mean,
        coalesce(nullif(stddev_pop(n_sessions_90d__t), 0), 1) as n_sessions_90d__scale,
        avg(n_product_views_90d__t) as n_product_views_90d__mean,
        coalesce(nullif(stddev_pop(n_product_views_90d__t), 0), 1) as n_product_views_90d__scale,
        avg(n_add_to_cart_90d__t) as n_add_to_cart_90d__mean,
        coalesce(nullif(stddev_pop(n_add_to_cart_90d__t), 0), 1) as n_add_to_cart_90d__scale,
        avg(cart_to_order_rate_90d__t) as cart_to_order_rate_90d__mean,
        coalesce(nullif(stddev_pop(cart_to_order_rate_90d__t), 0), 1)
            as cart_to_order_rate_90d__scale,
        avg(days_since_last_visit__t) as days_since_last_visit__mean,
        coalesce(nullif(stddev_pop(days_since_last_visit__t), 0), 1)
            as days_since_last_visit__scale,
        avg(n_touches_90d__t) as n_touches_90d__mean,
        coalesce(nullif(stddev_pop(n_touches_90d__t), 0), 1) as n_touches_90d__scale,
        avg(open_rate_90d__t) as open_rate_90d__mean,
        coalesce(nullif(stddev_pop(open_rate_90d__t), 0), 1) as open_rate_90d__scale,
        avg(click_rate_90d__t) as click_rate_90d__mean,
        coalesce(nullif(stddev_pop(click_rate_90d__t), 0), 1) as click_rate_90d__scale,
        avg(age_years__t) as age_years__mean,
        coalesce(nullif(stddev_pop(age_years__t), 0), 1) as age_years__scale,
        avg(income__t) as income__mean,
        coalesce(nullif(stddev_pop(income__t), 0), 1) as income__scale,
    from transformed
    where is_training

),

-- One-hot levels learned from the training rows: at least 1% of them (onehot_min_share), the 8
-- most frequent (onehot_max_levels), ties to the level later in code-point order.
level_counts as (

    select 'gender' as categorical, gender__raw as level, count(*) as n_level_rows
    from transformed
    where is_training
    group by all
    union all
    select 'region', region__raw, count(*)
    from transformed
    where is_training
    group by all
    union all
    select 'acquisition_channel', acquisition_channel__raw, count(*)
    from transformed
    where is_training
    group by all

),

learned_levels as (

    select
        level_counts.categorical,
        level_counts.level,
        row_number() over (
            partition by level_counts.categorical
            order by level_counts.n_level_rows desc, level_counts.level desc
        ) as slot,
    from level_counts
    where level_counts.n_level_rows >= 0.01::double * (
        select count(*) from transformed where is_training
    )
    qualify slot <= 8

),

level_slots as (

    select
        map_from_entries(list((level, slot)) filter (where categorical = 'gender'))
            as gender__slots,
        map_from_entries(list((level, slot)) filter (where categorical = 'region'))
            as region__slots,
        map_from_entries(list((level, slot)) filter (where categorical = 'acquisition_channel'))
            as acquisition_channel__slots,
    from learned_levels

),

preprocessed as (

    select
        transformed.customer_id,
        transformed.snapshot_on,
        transformed.is_training,
        transformed.label_ends_on,
        transformed.purchased_in_horizon,
        transformed.revenue_in_horizon,
        transformed.days_since_last_order__raw,
        transformed.n_orders__raw,
        transformed.n_orders_30d__raw,
        transformed.n_orders_90d__raw,
        transformed.n_orders_365d__raw,
        transformed.revenue__raw,
        transformed.revenue_90d__raw,
        transformed.avg_order_value__raw,
        transformed.tenure_days__raw,
        transformed.avg_days_between_orders__raw,
        transformed.n_orders_prev_90d__raw,
        transformed.order_rate_trend_90d__raw,
        transformed.recency_to_gap_ratio__raw,
        transformed.avg_items_per_order__raw,
        transformed.n_distinct_categories__raw,
        transformed.top_category_share__raw,
        transformed.discount_share__raw,
        transformed.cancel_rate__raw,
        transformed.return_rate__raw,
        transformed.n_sessions_90d__raw,
        transformed.n_product_views_90d__raw,
        transformed.n_add_to_cart_90d__raw,
        transformed.cart_to_order_rate_90d__raw,
        transformed.days_since_last_visit__raw,
        transformed.n_touches_90d__raw,
        transformed.open_rate_90d__raw,
        transformed.click_rate_90d__raw,
        transformed.age_years__raw,
        transformed.income__raw,
        transformed.gender__raw,
        transformed.region__raw,
        transformed.acquisition_channel__raw,
        transformed.is_marketing_opt_in__raw,
        transformed.days_since_last_order,
        (transformed.days_since_last_order__t - moments.days_since_last_order__mean)
            / moments.days_since_last_order__scale as days_since_last_order__scaled,
        transformed.days_since_last_order__raw is null as days_since_last_order_was_missing,
        transformed.n_orders,
        (transformed.n_orders__t - moments.n_orders__mean)
            / moments.n_orders__scale as n_orders__scaled,
        transformed.n_orders_30d,
        (transformed.n_orders_30d__t - moments.n_orders_30d__mean)
            / moments.n_orders_30d__scale as n_orders_30d__scaled,
        transformed.n_orders_90d,
        (transformed.n_orders_90d__t - moments.n_orders_90d__mean)
            / moments.n_orders_90d__scale as n_orders_90d__scaled,
        transformed.n_orders_365d,
        (transformed.n_orders_365d__t - moments.n_orders_365d__mean)
            / moments.n_orders_365d__scale as n_orders_365d__scaled,
        transformed.revenue,
        (transformed.revenue__t - moments.revenue__mean)
            / moments.revenue__scale as revenue__scaled,
        transformed.revenue__raw is null as revenue_was_missing,
        transformed.revenue_90d,
        (transformed.revenue_90d__t - moments.revenue_90d__mean)
            / moments.revenue_90d__scale as revenue_90d__scaled,
        transformed.revenue_90d__raw is null as revenue_90d_was_missing,
        transformed.avg_order_value,
        (transformed.avg_order_value__t - moments.avg_order_value__mean)
            / moments.avg_order_value__scale as avg_order_value__scaled,
        transformed.avg_order_value__raw is null as avg_order_value_was_missing,
        transformed.tenure_days,
        (transformed.tenure_days__t - moments.tenure_days__mean)
            / moments.tenure_days__scale as tenure_days__scaled,
        transformed.avg_days_between_orders,
        (transformed.avg_days_between_orders__t - moments.avg_days_between_orders__mean)
            / moments.avg_days_between_orders__scale as avg_days_between_orders__scaled,
        transformed.avg_days_between_orders__raw is null as avg_days_between_orders_was_missing,
        transformed.n_orders_prev_90d,
        (transformed.n_orders_prev_90d__t - moments.n_orders_prev_90d__mean)
            / moments.n_orders_prev_90d__scale as n_orders_prev_90d__scaled,
        transformed.order_rate_trend_90d,
        (transformed.order_rate_trend_90d__t - moments.order_rate_trend_90d__mean)
            / moments.order_rate_trend_90d__scale as order_rate_trend_90d__scaled,
        transformed.order_rate_trend_90d__raw is null as order_rate_trend_90d_was_missing,
        transformed.recency_to_gap_ratio,
        (transformed.recency_to_gap_ratio__t - moments.recency_to_gap_ratio__mean)
            / moments.recency_to_gap_ratio__scale as recency_to_gap_ratio__scaled,
        transformed.recency_to_gap_ratio__raw is null as recency_to_gap_ratio_was_missing,
        transformed.avg_items_per_order,
        (transformed.avg_items_per_order__t - moments.avg_items_per_order__mean)
            / moments.avg_items_per_order__scale as avg_items_per_order__scaled,
        transformed.avg_items_per_order__raw is null as avg_items_per_order_was_missing,
        transformed.n_distinct_categories,
        (transformed.n_distinct_categories__t - moments.n_distinct_categories__mean)
            / moments.n_distinct_categories__scale as n_distinct_categories__scaled,
        transformed.top_category_share,
        (transformed.top_category_share__t - moments.top_category_share__mean)
            / moments.top_category_share__scale as top_category_share__scaled,
        transformed.top_category_share__raw is null as top_category_share_was_missing,
        transformed.discount_share,
        (transformed.discount_share__t - moments.discount_share__mean)
            / moments.discount_share__scale as discount_share__scaled,
        transformed.discount_share__raw is null as discount_share_was_missing,
        transformed.cancel_rate,
        (transformed.cancel_rate__t - moments.cancel_rate__mean)
            / moments.cancel_rate__scale as cancel_rate__scaled,
        transformed.cancel_rate__raw is null as cancel_rate_was_missing,
        transformed.return_rate,
        (transformed.return_rate__t - moments.return_rate__mean)
            / moments.return_rate__scale as return_rate__scaled,
        transformed.return_rate__raw is null as return_rate_was_missing,
        transformed.n_sessions_90d,
        (transformed.n_sessions_90d__t - moments.n_sessions_90d__mean)
            / moments.n_sessions_90d__scale as n_sessions_90d__scaled,
        transformed.n_product_views_90d,
        (transformed.n_product_views_90d__t - moments.n_product_views_90d__mean)
            / moments.n_product_views_90d__scale as n_product_views_90d__scaled,
        transformed.n_add_to_cart_90d,
        (transformed.n_add_to_cart_90d__t - moments.n_add_to_cart_90d__mean)
            / moments.n_add_to_cart_90d__scale as n_add_to_cart_90d__scaled,
        transformed.cart_to_order_rate_90d,
        (transformed.cart_to_order_rate_90d__t - moments.cart_to_order_rate_90d__mean)
            / moments.cart_to_order_rate_90d__scale as cart_to_order_rate_90d__scaled,
        transformed.cart_to_order_rate_90d__raw is null as cart_to_order_rate_90d_was_missing,
        transformed.days_since_last_visit,
        (transformed.days_since_last_visit__t - moments.days_since_last_visit__mean)
            / moments.days_since_last_visit__scale as days_since_last_visit__scaled,
        transformed.days_since_last_visit__raw is null as days_since_last_visit_was_missing,
        transformed.n_touches_90d,
        (transformed.n_touches_90d__t - moments.n_touches_90d__mean)
            / moments.n_touches_90d__scale as n_touches_90d__scaled,
        transformed.open_rate_90d,
        (transformed.open_rate_90d__t - moments.open_rate_90d__mean)
            / moments.open_rate_90d__scale as open_rate_90d__scaled,
        transformed.open_rate_90d__raw is null as open_rate_90d_was_missing,
        transformed.click_rate_90d,
        (transformed.click_rate_90d__t - moments.click_rate_90d__mean)
            / moments.click_rate_90d__scale as click_rate_90d__scaled,
        transformed.click_rate_90d__raw is null as click_rate_90d_was_missing,
        transformed.age_years,
        (transformed.age_years__t - moments.age_years__mean)
            / moments.age_years__scale as age_years__scaled,
        transformed.age_years__raw is null as age_years_was_missing,
        transformed.income,
        (transformed.income__t - moments.income__mean)
            / moments.income__scale as income__scaled,
        transformed.income__raw is null as income_was_missing,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 1 as integer)
            as gender__level_1,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 2 as integer)
            as gender__level_2,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 3 as integer)
            as gender__level_3,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 4 as integer)
            as gender__level_4,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 5 as integer)
            as gender__level_5,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 6 as integer)
            as gender__level_6,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 7 as integer)
            as gender__level_7,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 8 as integer)
            as gender__level_8,
        cast(coalesce(level_slots.gender__slots[transformed.gender__raw], 0) = 0 as integer)
            as gender__other,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 1 as integer)
            as region__level_1,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 2 as integer)
            as region__level_2,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 3 as integer)
            as region__level_3,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 4 as integer)
            as region__level_4,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 5 as integer)
            as region__level_5,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 6 as integer)
            as region__level_6,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 7 as integer)
            as region__level_7,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 8 as integer)
            as region__level_8,
        cast(coalesce(level_slots.region__slots[transformed.region__raw], 0) = 0 as integer)
            as region__other,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 1 as integer)
            as acquisition_channel__level_1,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 2 as integer)
            as acquisition_channel__level_2,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 3 as integer)
            as acquisition_channel__level_3,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 4 as integer)
            as acquisition_channel__level_4,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 5 as integer)
            as acquisition_channel__level_5,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 6 as integer)
            as acquisition_channel__level_6,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 7 as integer)
            as acquisition_channel__level_7,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 8 as integer)
            as acquisition_channel__level_8,
        cast(coalesce(level_slots.acquisition_channel__slots[transformed.acquisition_channel__raw], 0) = 0 as integer)
            as acquisition_channel__other,
        cast(transformed.is_marketing_opt_in__raw as integer) as is_marketing_opt_in,
    from transformed
    cross join moments
    cross join level_slots

)

select * from preprocessed
