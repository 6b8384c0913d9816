with

playbook as (

    select * from {{ ref('audience_playbook') }}

),

audience_candidates as (

    select * from {{ ref('audience_candidates') }}

),

segment_profiles as (

    select * from {{ ref('segment_profiles') }}

),

customer_scores as (

    select * from {{ ref('customer_scores') }}

),

-- The run every audience belongs to, also for an audience that selected nobody.
scoring_run as (

    select
        any_value(model_id) as model_id,
        max(as_of) as as_of
    from customer_scores

),

aggregated_to_audiences as (

    select
        audience,
        count(*) as n_matching,
        count(*) filter (where selection = 'contact_cap') as n_over_contact_cap,
        count(*) filter (
            where selection not in ('higher_priority_audience', 'contact_cap')
        ) as n_assigned,
        count(*) filter (where is_selected) as n_customers,
        count(*) filter (where is_selected and not is_control) as n_treatment,
        count(*) filter (where is_selected and is_control) as n_control,
        sum(expected_value) filter (where is_selected and not is_control)
            as expected_value_treatment,
        {{ exact_mean('case when is_selected then purchase_probability end') }}
            as mean_purchase_probability
    from audience_candidates
    group by audience

),

-- Segment names are the ML step's and can change with a retrained model: a playbook row naming
-- a segment that no longer exists silently matches nobody, so it is counted here and tested.
listed_segment_names as (

    select
        audience,
        {{ list_items(pipe_list("nullif(trim(segment_names), '')")) }} as segment_name
    from playbook

),

unmatched_segment_names as (

    select
        listed_segment_names.audience,
        count(*) filter (where segment_profiles.segment_name is null) as n_unmatched
    from listed_segment_names
    left join segment_profiles
        on listed_segment_names.segment_name = segment_profiles.segment_name
    group by listed_segment_names.audience

),

final as (

    select
        -- ids
        playbook.audience,
        scoring_run.model_id,

        -- strings
        playbook.description,
        playbook.channel,
        playbook.offer,

        -- numerics
        cast(playbook.priority as integer) as priority,
        cast(playbook.max_size as integer) as max_size,
        cast(
            coalesce(playbook.control_share, {{ var('audience_control_share') | float }})
            as double
        ) as control_share,
        cast(coalesce(aggregated_to_audiences.n_matching, 0) as integer) as n_matching,
        cast(coalesce(aggregated_to_audiences.n_over_contact_cap, 0) as integer)
            as n_over_contact_cap,
        cast(coalesce(aggregated_to_audiences.n_assigned, 0) as integer) as n_assigned,
        cast(coalesce(aggregated_to_audiences.n_customers, 0) as integer) as n_customers,
        cast(coalesce(aggregated_to_audiences.n_treatment, 0) as integer) as n_treatment,
        cast(coalesce(aggregated_to_audiences.n_control, 0) as integer) as n_control,
        cast(
            aggregated_to_audiences.n_control / nullif(aggregated_to_audiences.n_customers, 0)
            as double
        ) as observed_control_share,
        cast(coalesce(aggregated_to_audiences.expected_value_treatment, 0) as decimal(18, 2))
            as expected_value_treatment,
        cast(aggregated_to_audiences.mean_purchase_probability as double)
            as mean_purchase_probability,
        cast(coalesce(unmatched_segment_names.n_unmatched, 0) as integer)
            as n_unmatched_segment_names,

        -- booleans
        coalesce(aggregated_to_audiences.n_assigned > playbook.max_size, false) as is_capped,

        -- dates
        scoring_run.as_of

    from playbook
    cross join scoring_run
    left join aggregated_to_audiences
        on playbook.audience = aggregated_to_audiences.audience
    left join unmatched_segment_names
        on playbook.audience = unmatched_segment_names.audience

)

select * from final
