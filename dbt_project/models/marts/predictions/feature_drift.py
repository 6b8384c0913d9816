"""PSI of every champion input between its training examples and the as_of snapshot."""


def model(dbt, session):
    dbt.config(materialized="table")
    features = dbt.ref("champion_features")
    from ml.serving.champion_scoring import feature_drift

    return feature_drift(session, features)
