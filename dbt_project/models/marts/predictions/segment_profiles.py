"""One row per segment of the champion's scores: size, value, profile and a description."""


def model(dbt, session):
    dbt.config(materialized="table")
    scores = dbt.ref("customer_scores")
    features = dbt.ref("champion_features")
    from ml.serving.champion_scoring import segment_profiles

    return segment_profiles(session, scores, features)
