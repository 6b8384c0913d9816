with

campaign_touches as (

    select * from {{ ref('stg_shop__campaign_touches') }}

),

-- Control touches were never delivered: they are not exposure.
delivered as (

    select * from campaign_touches
    where not is_control

),

-- Opens and clicks count on the day they happened, not the day of sending: a touch sent before
-- a snapshot but opened after it must not reveal the open.
activity as (

    select
        customer_id,
        sent_on as activity_on,
        1 as n_touches,
        0 as n_opened,
        0 as n_clicked
    from delivered

    union all

    select
        customer_id,
        cast(opened_at as date) as activity_on,
        0 as n_touches,
        1 as n_opened,
        0 as n_clicked
    from delivered
    where opened_at is not null

    union all

    select
        customer_id,
        cast(clicked_at as date) as activity_on,
        0 as n_touches,
        0 as n_opened,
        1 as n_clicked
    from delivered
    where clicked_at is not null

),

aggregated_to_customer_days as (

    select
        customer_id,
        activity_on,
        sum(n_touches) as n_touches,
        sum(n_opened) as n_opened,
        sum(n_clicked) as n_clicked
    from activity
    group by customer_id, activity_on

)

select * from aggregated_to_customer_days
