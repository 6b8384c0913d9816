{#- Every feature of a (customer, snapshot) is computed from activity strictly before the
    snapshot date. Each daily aggregate is scanned once for all snapshots at a time. -#}

with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

customer_versions as (

    select * from {{ ref('stg_shop__customer_versions') }}

),

-- A scoring build (var scoring_only) features the as_of snapshot alone: five times less work.
snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}
    {%- if var('scoring_only') %}
    where not is_training
    {%- endif %}

),

order_days as (

    select * from {{ ref('int_orders_aggregated_to_customer_days') }}

),

category_days as (

    select * from {{ ref('int_order_items_aggregated_to_customer_day_categories') }}

),

visit_days as (

    select * from {{ ref('int_web_events_aggregated_to_customer_days') }}

),

touch_days as (

    select * from {{ ref('int_campaign_touches_aggregated_to_customer_days') }}

),

-- Customers created on or after a snapshot are not in its population. The profile is the version
-- in force before the snapshot: a re-load written later must not reach back into older
-- snapshots (no version yet: the profile is missing, and imputed like any gap).
population as (

    select
        customers.customer_id,
        snapshot_dates.snapshot_on,
        snapshot_dates.is_training,
        customers.created_at,
        {{ days_between('cast(customers.created_at as date)', 'snapshot_dates.snapshot_on') }}
            as tenure_days,
        profiles.birth_date,
        profiles.income,
        profiles.gender,
        profiles.region,
        profiles.acquisition_channel,
        coalesce(profiles.is_marketing_opt_in, false) as is_marketing_opt_in
    from customers
    cross join snapshot_dates
    left join customer_versions as profiles
        on customers.customer_id = profiles.customer_id
        and snapshot_dates.snapshot_on > profiles.valid_from
        and (profiles.valid_to is null or snapshot_dates.snapshot_on <= profiles.valid_to)
    where customers.created_at < snapshot_dates.snapshot_on

),

order_history as (

    select
        order_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(order_days.n_orders) as n_orders,
        sum(order_days.n_orders) filter (
            where order_days.activity_on >= snapshot_dates.snapshot_on - 30
        ) as n_orders_30d,
        sum(order_days.n_orders) filter (
            where order_days.activity_on >= snapshot_dates.snapshot_on - 90
        ) as n_orders_90d,
        sum(order_days.n_orders) filter (
            where order_days.activity_on >= snapshot_dates.snapshot_on - 365
        ) as n_orders_365d,
        sum(order_days.n_orders) filter (
            where order_days.activity_on >= snapshot_dates.snapshot_on - 180
            and order_days.activity_on < snapshot_dates.snapshot_on - 90
        ) as n_orders_prev_90d,
        sum(order_days.order_value) as revenue,
        sum(order_days.order_value) filter (
            where order_days.activity_on >= snapshot_dates.snapshot_on - 90
        ) as revenue_90d,
        sum(order_days.discount_value) as discount_value,
        sum(order_days.n_units) as n_units,
        sum(order_days.n_orders_with_items) as n_orders_with_items,
        -- A status is only trusted once the order is older than the return window.
        sum(order_days.n_orders) filter (
            where order_days.activity_on < snapshot_dates.snapshot_on - 30
        ) as n_settled_orders,
        sum(order_days.n_cancelled) filter (
            where order_days.activity_on < snapshot_dates.snapshot_on - 30
        ) as n_settled_cancelled,
        sum(order_days.n_returned) filter (
            where order_days.activity_on < snapshot_dates.snapshot_on - 30
        ) as n_settled_returned,
        min(order_days.activity_on) as first_ordered_on,
        max(order_days.activity_on) as last_ordered_on
    from order_days
    inner join snapshot_dates
        on order_days.activity_on < snapshot_dates.snapshot_on
    group by order_days.customer_id, snapshot_dates.snapshot_on

),

-- Category features only add up: the category days are first summed per customer, category and
-- the first snapshot that sees them, and these periods (not the days) join the snapshots.
category_activity_days as (

    select distinct activity_on from category_days

),

days_seen_by_snapshots as (

    select
        category_activity_days.activity_on,
        min(snapshot_dates.snapshot_on) as seen_from_on
    from category_activity_days
    inner join snapshot_dates
        on category_activity_days.activity_on < snapshot_dates.snapshot_on
    group by category_activity_days.activity_on

),

category_periods as (

    select
        category_days.customer_id,
        category_days.category,
        days_seen_by_snapshots.seen_from_on,
        sum(category_days.n_units) as n_units
    from category_days
    inner join days_seen_by_snapshots
        on category_days.activity_on = days_seen_by_snapshots.activity_on
    group by
        category_days.customer_id,
        category_days.category,
        days_seen_by_snapshots.seen_from_on

),

-- Units are at least 1 (tested on the daily aggregate), so a category's units to date only
-- grow: the most that any category had reached in the periods a snapshot sees are the units of
-- its top category.
category_periods_to_date as (

    select
        customer_id,
        seen_from_on,
        n_units,
        row_number() over (
            partition by customer_id, category order by seen_from_on
        ) as nth_period_of_category,
        sum(n_units) over (
            partition by customer_id, category
            order by seen_from_on
            rows between unbounded preceding and current row
        ) as n_units_in_category_to_date
    from category_periods

),

customer_category_periods as (

    select
        customer_id,
        seen_from_on,
        sum(n_units) as n_units,
        count(*) filter (where nth_period_of_category = 1) as n_new_categories,
        max(n_units_in_category_to_date) as n_units_in_top_category_to_date
    from category_periods_to_date
    group by customer_id, seen_from_on

),

category_history as (

    select
        customer_category_periods.customer_id,
        snapshot_dates.snapshot_on,
        sum(customer_category_periods.n_new_categories) as n_distinct_categories,
        max(customer_category_periods.n_units_in_top_category_to_date)
        / nullif(sum(customer_category_periods.n_units), 0) as top_category_share
    from customer_category_periods
    inner join snapshot_dates
        on customer_category_periods.seen_from_on <= snapshot_dates.snapshot_on
    group by customer_category_periods.customer_id, snapshot_dates.snapshot_on

),

visit_history as (

    select
        visit_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(visit_days.n_sessions) filter (
            where visit_days.activity_on >= snapshot_dates.snapshot_on - 90
        ) as n_sessions_90d,
        sum(visit_days.n_product_views) filter (
            where visit_days.activity_on >= snapshot_dates.snapshot_on - 90
        ) as n_product_views_90d,
        sum(visit_days.n_add_to_cart) filter (
            where visit_days.activity_on >= snapshot_dates.snapshot_on - 90
        ) as n_add_to_cart_90d,
        max(visit_days.activity_on) as last_visited_on
    from visit_days
    inner join snapshot_dates
        on visit_days.activity_on < snapshot_dates.snapshot_on
    group by visit_days.customer_id, snapshot_dates.snapshot_on

),

touch_history as (

    select
        touch_days.customer_id,
        snapshot_dates.snapshot_on,
        sum(touch_days.n_touches) as n_touches_90d,
        sum(touch_days.n_opened) as n_opened_90d,
        sum(touch_days.n_clicked) as n_clicked_90d
    from touch_days
    inner join snapshot_dates
        on touch_days.activity_on < snapshot_dates.snapshot_on
        and touch_days.activity_on >= snapshot_dates.snapshot_on - 90
    group by touch_days.customer_id, snapshot_dates.snapshot_on

),

featurized as (

    select
        -- ids
        population.customer_id,
        population.snapshot_on,
        population.is_training,

        -- recency, frequency, monetary
        {{ days_between('order_history.last_ordered_on', 'population.snapshot_on') }}
            as days_since_last_order,
        coalesce(order_history.n_orders, 0) as n_orders,
        coalesce(order_history.n_orders_30d, 0) as n_orders_30d,
        coalesce(order_history.n_orders_90d, 0) as n_orders_90d,
        coalesce(order_history.n_orders_365d, 0) as n_orders_365d,
        -- No order: no revenue. Orders whose amounts the export lacks: unknown, imputed.
        case
            when order_history.customer_id is null then 0
            when order_history.revenue is not null
                then cast(order_history.revenue as double)
        end as revenue,
        case
            when order_history.customer_id is null then 0
            when order_history.revenue is not null
                then cast(coalesce(order_history.revenue_90d, 0) as double)
        end as revenue_90d,
        -- Money divides as double: a decimal quotient's scale differs between engines.
        cast(order_history.revenue as double) / nullif(order_history.n_orders, 0)
            as avg_order_value,
        population.tenure_days,
        case
            when order_history.n_orders >= 2
                then {{ days_between(
                        'order_history.first_ordered_on', 'order_history.last_ordered_on'
                    ) }}
                    / (order_history.n_orders - 1)
        end as avg_days_between_orders,

        -- trend: is the customer slowing down?
        coalesce(order_history.n_orders_prev_90d, 0) as n_orders_prev_90d,
        -- orders per day in the last 90 days (or the tenure, when shorter) over the lifetime rate
        cast(
            coalesce(order_history.n_orders_90d, 0) / least(population.tenure_days, 90)
            / nullif(order_history.n_orders / population.tenure_days, 0) as double
        ) as order_rate_trend_90d,
        -- days since the last order in units of the customer's usual gap between orders
        case
            when order_history.n_orders >= 2
                and order_history.last_ordered_on > order_history.first_ordered_on
                then {{ days_between('order_history.last_ordered_on', 'population.snapshot_on') }}
                    * (order_history.n_orders - 1)
                    / {{ days_between(
                        'order_history.first_ordered_on', 'order_history.last_ordered_on'
                    ) }}
        end as recency_to_gap_ratio,

        -- basket and catalogue
        order_history.n_units / nullif(order_history.n_orders_with_items, 0)
            as avg_items_per_order,
        coalesce(category_history.n_distinct_categories, 0) as n_distinct_categories,
        category_history.top_category_share,
        cast(order_history.discount_value as double)
        / nullif(cast(order_history.revenue + order_history.discount_value as double), 0)
            as discount_share,
        order_history.n_settled_cancelled / nullif(order_history.n_settled_orders, 0)
            as cancel_rate,
        order_history.n_settled_returned / nullif(order_history.n_settled_orders, 0)
            as return_rate,

        -- browsing
        coalesce(visit_history.n_sessions_90d, 0) as n_sessions_90d,
        coalesce(visit_history.n_product_views_90d, 0) as n_product_views_90d,
        coalesce(visit_history.n_add_to_cart_90d, 0) as n_add_to_cart_90d,
        -- least() skips nulls (least(1.0, null) is 1.0): cap only where the rate is defined.
        case
            when visit_history.n_add_to_cart_90d > 0
                then least(
                        1.0,
                        coalesce(order_history.n_orders_90d, 0) / visit_history.n_add_to_cart_90d
                    )
        end as cart_to_order_rate_90d,
        {{ days_between('visit_history.last_visited_on', 'population.snapshot_on') }}
            as days_since_last_visit,

        -- campaigns
        coalesce(touch_history.n_touches_90d, 0) as n_touches_90d,
        case
            when touch_history.n_touches_90d > 0
                then least(1.0, touch_history.n_opened_90d / touch_history.n_touches_90d)
        end as open_rate_90d,
        case
            when touch_history.n_touches_90d > 0
                then least(1.0, touch_history.n_clicked_90d / touch_history.n_touches_90d)
        end as click_rate_90d,

        -- profile
        {{ full_years_between('population.birth_date', 'population.snapshot_on') }} as age_years,
        population.income,
        coalesce(population.gender, 'unknown') as gender,
        coalesce(population.region, 'unknown') as region,
        coalesce(population.acquisition_channel, 'unknown') as acquisition_channel,
        population.is_marketing_opt_in

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
    left join touch_history
        on population.customer_id = touch_history.customer_id
        and population.snapshot_on = touch_history.snapshot_on

),

-- Every numeric feature as double: one type for imputation, scaling and the ML step.
typed as (

    select
        customer_id,
        snapshot_on,
        is_training,
        {% for feature in feature_catalog() -%}
        cast({{ feature.name }} as double) as {{ feature.name }},
        {% endfor -%}
        gender,
        region,
        acquisition_channel,
        is_marketing_opt_in
    from featurized

)

select * from typed
