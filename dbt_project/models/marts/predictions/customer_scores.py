"""Every customer of the as_of snapshot scored by the champion, as `segmart score` writes it."""


def model(dbt, session):
    dbt.config(materialized="table")
    features = dbt.ref("champion_features")
    # Read by name inside the scorer (BG/NBD's inputs, the seasonal factor's daily revenue);
    # referenced here for the lineage and so that they are built first.
    dbt.ref("customer_value_inputs")
    dbt.ref("daily_revenue")
    from ml.serving.champion_scoring import scores

    return scores(session, features)
