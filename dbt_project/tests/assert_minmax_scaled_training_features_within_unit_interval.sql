{#- With scaler minmax, every scaled feature of the population the parameters were fitted on
    (training_examples of a run that fitted them) lies in [0, 1]. Passes trivially for the
    other scalers and when the marts apply an older fit (stats_as_of before as_of). -#}

with

training_examples as (

    select * from {{ ref('training_examples') }}

),

feature_stats as (

    select * from {{ ref('feature_stats') }}

),

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}

),

fitted_on_this_population as (

    select training_examples.* from training_examples
    where
        training_examples.feature_stats_fitted_as_of
        = (select max(snapshot_dates.as_of_on) from snapshot_dates)
        and exists (
            select 1 from feature_stats
            where feature_stats.fitted_as_of = training_examples.feature_stats_fitted_as_of
                and feature_stats.scaler = 'minmax'
        )

),

out_of_range as (

    {% for feature in feature_catalog() -%}
    select
        customer_id,
        snapshot_on,
        '{{ feature.name }}' as feature,
        {{ feature.name }}__scaled as scaled_value
    from fitted_on_this_population
    where {{ feature.name }}__scaled not between 0 and 1
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from out_of_range
