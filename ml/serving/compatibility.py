"""Whether a feature mart can be scored by a model: the same columns, types and preprocessing.

A model scores correctly only the columns it was trained on, preprocessed with the statistics
it was trained with; anything else would score silently wrong, so it is refused with what
differs and how to rebuild.
"""

from __future__ import annotations

from datetime import date

from ml.errors import SegmartError
from ml.modelling.features import model_input_columns, raw_feature_columns
from ml.registry import ModelMetadata

FEATURES_TABLE = "ml.customer_features"


def scorer_columns(metadata: ModelMetadata) -> list[str]:
    """Mart columns the scorer reads: the model inputs and the raw features."""
    return [*metadata.feature_columns, *raw_feature_columns(metadata.feature_columns)]


def schema_differences(metadata: ModelMetadata, mart_dtypes: dict[str, str]) -> list[str]:
    """How the feature mart's columns differ from what the model was trained on.

    Parameters
    ----------
    metadata : ModelMetadata
        The model's metadata (`column_dtypes` of its training examples).
    mart_dtypes : dict of str to str
        Column -> DuckDB type of `ml.customer_features`.

    Returns
    -------
    list of str
        One readable item per difference; empty when the mart fits the model.
    """
    expected = {c: metadata.column_dtypes[c] for c in scorer_columns(metadata)}
    missing = sorted(set(expected) - set(mart_dtypes))
    # Inputs training left out on purpose (metadata.dropped_inputs) are not new.
    known = set(expected) | set(metadata.dropped_inputs)
    new_inputs = sorted(set(model_input_columns(mart_dtypes)) - known)
    changed = sorted(
        f"{c} {expected[c]} -> {mart_dtypes[c]}"
        for c in set(expected) & set(mart_dtypes)
        if expected[c] != mart_dtypes[c]
    )
    differences = []
    if missing:
        differences.append(f"missing columns {missing}")
    if new_inputs:
        differences.append(f"input columns the model never saw {new_inputs}")
    if changed:
        differences.append(f"changed types {changed}")
    return differences


def check_compatible(
    metadata: ModelMetadata, mart_dtypes: dict[str, str], stats: list[tuple[str, date]]
) -> None:
    """Refuse a feature mart the model cannot score correctly.

    Parameters
    ----------
    metadata : ModelMetadata
        The model to score with.
    mart_dtypes : dict of str to str
        Column -> DuckDB type of `ml.customer_features`.
    stats : list of (str, date)
        Distinct (feature_stats_id, feature_stats_fitted_as_of) in the mart.

    Raises
    ------
    SegmartError
        Columns or types differ, or the mart was preprocessed with other fitted parameters;
        the message says what differs and how to rebuild.
    """
    rebuild = f"segmart build --stats-as-of {metadata.feature_stats_fitted_as_of}"
    differences = schema_differences(metadata, mart_dtypes)
    if differences:
        raise SegmartError(
            f"{FEATURES_TABLE} does not match model {metadata.model_id}: "
            f"{'; '.join(differences)}. Rebuild the marts with the model's preprocessing "
            f"(`{rebuild}`) or train a new model (`segmart train`)"
        )
    expected = (metadata.feature_stats_id, metadata.feature_stats_fitted_as_of)
    found = [(stats_id, str(fitted)) for stats_id, fitted in stats]
    if found != [expected]:
        shown = ", ".join(f"{stats_id} fitted as of {fitted}" for stats_id, fitted in found)
        raise SegmartError(
            f"{FEATURES_TABLE} was preprocessed with feature stats {shown or 'none'}, but model "
            f"{metadata.model_id} was trained with {expected[0]} fitted as of {expected[1]}: "
            f"rebuild with `{rebuild}` so training and scoring share preprocessing"
        )
