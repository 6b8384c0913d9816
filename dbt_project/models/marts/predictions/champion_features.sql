{#- ml.customer_features, preprocessed with the champion's fitted statistics instead of those
    of the build's as_of, so that a plain `dbt build` scores the champion without train/serve
    skew (`segmart run` gets the same by building with --stats-as-of). No champion: no row. -#}
with

featurized as (

    select * from {{ ref('int_customer_snapshots_featurized') }}

),

feature_stats as (

    select * from {{ ref('feature_stats') }}

),

champion as (

    select * from {{ champion_relation() }}

),

as_of_features as (

    select * from featurized
    where not is_training

),

champion_stats as (

    select feature_stats.*
    from feature_stats
    inner join champion
        on feature_stats.fitted_as_of = champion.feature_stats_fitted_as_of

),

stats as (

    {{ feature_stats_wide('champion_stats') }}

),

preprocessed as (

    select
        as_of_features.customer_id,
        as_of_features.snapshot_on as as_of,
        stats.fitted_as_of as feature_stats_fitted_as_of,
        stats.feature_stats_id,
        {{ preprocessed_feature_columns('as_of_features', 'stats') }}
    from as_of_features
    cross join stats
    where stats.n_stats > 0

)

select * from preprocessed
