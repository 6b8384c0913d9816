{#- Control share of playbook rows that leave control_share empty. -#}
{%- set default_control_share = var('audience_control_share') | float -%}
{#- Contact cap: this many contacts in the cap's days before as_of and a customer rests. -#}
{%- set max_contacts = var('contact_cap_max_contacts') | int -%}
{%- set cap_days = var('contact_cap_days') | int -%}
{#- Scores older than the features fail the query with this message. -#}
{%- set stale_scores_message -%}
    'predictions.customer_scores is as of '
    || cast(customer_scores.as_of as {{ dbt.type_string() }})
    || ' but the features are as of ' || cast(rfm_scores.as_of as {{ dbt.type_string() }})
    || ': run `segmart score` after `segmart build`'
{%- endset -%}

with

playbook as (

    select * from {{ ref('audience_playbook') }}

),

customer_scores as (

    select * from {{ ref('customer_scores') }}

),

rfm_scores as (

    select * from {{ ref('rfm_scores') }}

),

customers as (

    select * from {{ ref('customers') }}

),

customer_features as (

    select * from {{ ref('customer_features') }}

),

staged_customers as (

    select * from {{ ref('stg_shop__customers') }}

),

campaign_touches as (

    select * from {{ ref('stg_shop__campaign_touches') }}

),

exported_audience_members as (

    select * from {{ source('activation', 'exported_audience_members') }}

),

playbook_channels as (

    select distinct channel from playbook

),

-- Consent per channel, from the current customer record (it may have been withdrawn after
-- as_of). A channel without its own consent column needs the general opt-in.
channel_consents as (

    select
        staged_customers.customer_id,
        channels.channel,
        case channels.channel
            when 'email' then staged_customers.has_email_consent
            when 'sms' then staged_customers.has_sms_consent
            when 'push' then staged_customers.has_push_consent
            else staged_customers.is_marketing_opt_in
        end as has_consent
    from staged_customers
    cross join playbook_channels as channels

),

scoring_as_of as (

    select max(as_of) as as_of from customer_scores

),

-- A contact is a treated touch or a treated export member. A touch naming an export's
-- campaign_key is that export's contact, counted once; control groups were never contacted.
recent_contacts as (

    select
        campaign_touches.customer_id,
        coalesce(campaign_touches.campaign_key, 'touch:' || campaign_touches.touch_id)
            as contact_key
    from campaign_touches
    cross join scoring_as_of
    where
        not campaign_touches.is_control
        and campaign_touches.sent_at < cast(scoring_as_of.as_of as timestamp)
        and campaign_touches.sent_at >= cast(
            {{ days_after('scoring_as_of.as_of', -cap_days) }} as timestamp
        )

    union all

    select
        exported_audience_members.customer_id,
        exported_audience_members.campaign_key as contact_key
    from exported_audience_members
    cross join scoring_as_of
    where
        not exported_audience_members.is_control
        and exported_audience_members.exported_on < scoring_as_of.as_of
        and exported_audience_members.exported_on
        >= cast({{ days_after('scoring_as_of.as_of', -cap_days) }} as date)

),

contacts_per_customer as (

    select
        customer_id,
        count(distinct contact_key) as n_recent_contacts
    from recent_contacts
    group by customer_id

),

-- Each rule is a set of allowed values per column (empty: any), never SQL text: the playbook is
-- data, so an edit can change who is selected but cannot change the query.
rules as (

    select
        audience,
        priority,
        channel,
        offer,
        max_size,
        coalesce(control_share, {{ default_control_share }}) as control_share,
        {{ pipe_list("nullif(trim(segment_names), '')") }} as segment_names,
        {{ pipe_list("nullif(trim(rfm_groups), '')") }} as rfm_groups,
        {{ pipe_list("nullif(trim(lifecycle_stages), '')") }} as lifecycle_stages,
        coalesce(min_decile, 1) as min_decile,
        coalesce(max_decile, 10) as max_decile
    from playbook

),

-- Scores and RFM must describe the same point in time: a stale scoring run is refused.
scored_customers as (

    select
        customer_scores.customer_id,
        customer_scores.as_of,
        customer_scores.model_id,
        customer_scores.segment_name,
        rfm_scores.rfm_group,
        rfm_scores.lifecycle_stage,
        cast(customer_scores.propensity_decile as integer) as propensity_decile,
        cast(customer_scores.purchase_probability as double) as purchase_probability,
        cast(customer_features.avg_order_value as double) as predicted_order_value,
        cast(customer_scores.predicted_revenue as double) as predicted_revenue,
        coalesce(contacts_per_customer.n_recent_contacts, 0) as n_recent_contacts
    from customer_scores
    inner join rfm_scores
        on customer_scores.customer_id = rfm_scores.customer_id
    inner join customer_features
        on customer_scores.customer_id = customer_features.customer_id
    inner join customers
        on customer_scores.customer_id = customers.customer_id
    left join contacts_per_customer
        on customer_scores.customer_id = contacts_per_customer.customer_id
    -- A check in the where clause, not the select list, so the optimizer cannot prune it away.
    where
        customer_scores.as_of = rfm_scores.as_of
        or {{ raise_error(stale_scores_message) }}

),

matched as (

    select
        scored_customers.*,
        rules.audience,
        rules.priority,
        rules.channel,
        rules.offer,
        rules.max_size,
        rules.control_share
    from scored_customers
    inner join rules
        on (
            rules.segment_names is null
            or {{ list_has('rules.segment_names', 'scored_customers.segment_name') }}
        )
        and (
            rules.rfm_groups is null
            or {{ list_has('rules.rfm_groups', 'scored_customers.rfm_group') }}
        )
        and (
            rules.lifecycle_stages is null
            or {{ list_has('rules.lifecycle_stages', 'scored_customers.lifecycle_stage') }}
        )
        and scored_customers.propensity_decile between rules.min_decile and rules.max_decile
    -- Only customers who consent to the audience's channel match it.
    inner join channel_consents
        on scored_customers.customer_id = channel_consents.customer_id
        and rules.channel = channel_consents.channel
        and channel_consents.has_consent

),

-- Expected value: the predicted revenue in the horizon (purchase probability x the spend
-- model); probability x usual order value where a model without a spend model scored. It ranks
-- customers for size caps; it is not an uplift estimate.
valued as (

    select
        *,
        coalesce(predicted_revenue, purchase_probability * predicted_order_value)
            as expected_value,
        row_number() over (partition by customer_id order by priority) as priority_rank,
        n_recent_contacts >= {{ max_contacts }} as is_over_contact_cap
    from matched

),

ranked as (

    select
        *,
        row_number() over (
            partition by audience, priority_rank = 1 and not is_over_contact_cap
            order by expected_value desc, customer_id asc
        ) as rank_within_assignment
    from valued

),

-- Customers cut by a size cap are not offered to a lower-priority audience in the same run, so
-- each audience's reach depends on its own rule and cap only.
selected as (

    select
        *,
        -- Ranked among the customers the audience gets after priorities; null for the others.
        case
            when priority_rank = 1 and not is_over_contact_cap then rank_within_assignment
        end as audience_rank,
        case
            when priority_rank > 1 then 'higher_priority_audience'
            when is_over_contact_cap then 'contact_cap'
            when max_size is not null and rank_within_assignment > max_size then 'over_max_size'
            else 'selected'
        end as selection
    from ranked

),

-- The control group is a pure function of (customer_id, audience): the first 32 bits of an md5
-- as a uniform number in [0, 1), so a rerun or any other tool reproduces it exactly.
drawn as (

    select
        *,
        {{ hex_to_number("substr(md5(customer_id || '|' || audience), 1, 8)") }}
        / 4294967296.0 as control_draw
    from selected

),

final as (

    select
        -- ids
        customer_id,
        audience,
        model_id,

        -- strings
        channel,
        offer,
        selection,
        segment_name,
        rfm_group,
        lifecycle_stage,

        -- numerics
        cast(priority as integer) as priority,
        cast(audience_rank as integer) as audience_rank,
        propensity_decile,
        purchase_probability,
        cast(predicted_order_value as decimal(18, 2)) as predicted_order_value,
        cast(expected_value as decimal(18, 2)) as expected_value,
        cast(control_share as double) as control_share,
        control_draw,
        cast(n_recent_contacts as integer) as n_recent_contacts,

        -- booleans
        selection = 'selected' as is_selected,
        control_draw < control_share as is_control,

        -- dates
        as_of

    from drawn

)

select * from final
