with

featurized as (

    select * from {{ ref('int_customer_snapshots_featurized') }}

),

snapshot_dates as (

    select * from {{ ref('int_snapshot_dates') }}

),

feature_stats as (

    select * from {{ ref('feature_stats') }}

),

as_of_features as (

    select * from featurized
    where not is_training

),

fitted_stats as (

    select * from feature_stats
    where fitted_as_of = {{ selected_stats_as_of('snapshot_dates') }}

),

stats as (

    {{ feature_stats_wide('fitted_stats') }}

),

-- Refuse to score with parameters that were never fitted rather than emit null features.
checked_stats as (

    -- A filter, not a column: DuckDB prunes unused columns, and the check must always run.
    select * from stats
    where
        n_stats > 0
        or {{ raise_error(
            "'feature_stats holds no parameters fitted as of '"
            ~ " || cast(" ~ selected_stats_as_of('snapshot_dates') ~ " as " ~ dbt.type_string() ~ ")"
            ~ " || ': build with that as_of first (segmart build --as-of ...)'"
        ) }}

),

preprocessed as (

    select
        as_of_features.customer_id,
        as_of_features.snapshot_on as as_of,
        checked_stats.fitted_as_of as feature_stats_fitted_as_of,
        checked_stats.feature_stats_id,
        {{ preprocessed_feature_columns('as_of_features', 'checked_stats') }}
    from as_of_features
    cross join checked_stats

)

select * from preprocessed
