with

featurized as (

    select * from {{ ref('int_customer_snapshots_featurized') }}

),

labels as (

    select * from {{ ref('int_customer_snapshots_labelled') }}

),

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}

),

feature_stats as (

    select * from {{ ref('feature_stats') }}

),

training_features as (

    select * from featurized
    where is_training

),

fitted_stats as (

    select * from feature_stats
    where fitted_as_of = {{ selected_stats_as_of('snapshot_dates') }}

),

stats as (

    {{ feature_stats_wide('fitted_stats') }}

),

preprocessed as (

    select
        training_features.customer_id,
        training_features.snapshot_on,
        snapshot_dates.label_ends_on,
        coalesce(labels.n_purchases_in_horizon, 0) > 0 as purchased_in_horizon,
        cast(coalesce(labels.revenue_in_horizon, 0) as double) as revenue_in_horizon,
        stats.fitted_as_of as feature_stats_fitted_as_of,
        stats.feature_stats_id,
        {{ preprocessed_feature_columns('training_features', 'stats') }}
    from training_features
    inner join snapshot_dates
        on training_features.snapshot_on = snapshot_dates.snapshot_on
    left join labels
        on training_features.customer_id = labels.customer_id
        and training_features.snapshot_on = labels.snapshot_on
    cross join stats

)

select * from preprocessed
