{%- set as_of = date_var('as_of') -%}
{%- set horizon_days = int_var('horizon_days') -%}
{%- set step_days = int_var('snapshot_step_days') -%}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

web_events as (

    select * from {{ ref('stg_shop__web_events') }}

),

latest_activity as (

    select max(activity_on) as latest_activity_on
    from (
        select max(ordered_on) as activity_on from orders
        union all
        select max(event_on) as activity_on from web_events
    ) as latest_per_source

),

as_of as (

    select
        {{ as_of if as_of is not none else 'latest_activity_on + 1' }} as as_of_on
    from latest_activity

),

-- The scoring snapshot (as_of itself, no label) and the training snapshots: the latest ends its
-- label window at as_of, so every training label is fully observed before as_of.
snapshots as (

    select
        as_of_on as snapshot_on,
        false as is_training
    from as_of

    union all

    select
        as_of.as_of_on - cast({{ horizon_days }} + {{ step_days }} * step.step_index as integer)
            as snapshot_on,
        true as is_training
    from as_of
    cross join {{ integer_series(int_var('n_snapshots')) }} as step

),

final as (

    select
        snapshot_on,
        is_training,
        cast(snapshot_on + {{ horizon_days }} as date) as label_ends_on,
        (select as_of.as_of_on from as_of) as as_of_on
    from snapshots

)

select * from final
