"""The promoted model (models/champion.json of the warehouse's workspace): one row, or none.

Read through segmart's registry, which refuses a champion that is gone or was changed after its
promotion. Everything the predictions models compute follows from this row.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from ml.serving.champion_scoring import champion_row

    return champion_row(session)
