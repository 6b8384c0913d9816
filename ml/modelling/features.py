"""Which mart columns feed the model, and turning Arrow data into model matrices.

The marts `ml.training_examples` and `ml.customer_features` share one naming scheme: for each
numeric feature `f` there is `f` (imputed, raw units), `f__scaled` (preprocessed in SQL) and,
for imputable ones, `f_was_missing`; categoricals are one-hot integers in fixed slots,
`<categorical>__level_<i>` for the i-th most frequent level learned in training (which level
that is lives in `ml.feature_stats`, see `one_hot_levels`) and `<categorical>__other`;
`is_marketing_opt_in` is an integer flag. The model reads the preprocessed columns only; the raw
ones are for profiles and reason codes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

SCALED_SUFFIX = "__scaled"
MISSING_SUFFIX = "_was_missing"
CATEGORICALS = ("gender", "region", "acquisition_channel")
"""macros/feature_catalog.sql onehot_categoricals()."""
ONE_HOT_PREFIXES = tuple(f"{categorical}__" for categorical in CATEGORICALS)
OTHER_SUFFIX = "__other"
OPT_IN = "is_marketing_opt_in"
LABEL = "purchased_in_horizon"

ArrowData = pa.Table | pa.RecordBatch


def model_input_columns(columns: Iterable[str]) -> tuple[str, ...]:
    """The model inputs among a mart's columns, in mart order.

    Parameters
    ----------
    columns : iterable of str
        Column names of `ml.training_examples` or `ml.customer_features`.

    Returns
    -------
    tuple of str
        The `__scaled` columns, the `_was_missing` flags, the one-hot columns and
        `is_marketing_opt_in`.
    """
    return tuple(
        column
        for column in columns
        if column.endswith((SCALED_SUFFIX, MISSING_SUFFIX))
        or column.startswith(ONE_HOT_PREFIXES)
        or column == OPT_IN
    )


def scaled_columns(columns: Iterable[str]) -> tuple[str, ...]:
    """The `__scaled` numeric columns, in order."""
    return tuple(column for column in columns if column.endswith(SCALED_SUFFIX))


def raw_feature_columns(columns: Iterable[str]) -> tuple[str, ...]:
    """The raw (imputed, unscaled) numeric feature columns: `f` for every `f__scaled`."""
    return tuple(column.removesuffix(SCALED_SUFFIX) for column in scaled_columns(columns))


def feature_groups(inputs: Iterable[str]) -> dict[str, list[str]]:
    """Model inputs grouped by the feature they encode, for grouped permutation importance.

    `f__scaled` and `f_was_missing` form group `f`; the one-hot columns of a categorical form
    its group; `is_marketing_opt_in` is its own group.
    """
    groups: dict[str, list[str]] = {}
    for column in inputs:
        if column.endswith(SCALED_SUFFIX):
            name = column.removesuffix(SCALED_SUFFIX)
        elif column.endswith(MISSING_SUFFIX):
            name = column.removesuffix(MISSING_SUFFIX)
        elif column.startswith(ONE_HOT_PREFIXES):
            name = column.split("__")[0]
        else:
            name = column
        groups.setdefault(name, []).append(column)
    return groups


def one_hot_levels(rows: Iterable[tuple[str, int, str]]) -> dict[str, str]:
    """The level each one-hot slot column stands for, from `ml.feature_stats`.

    Parameters
    ----------
    rows : iterable of (str, int, str)
        `(feature, slot, level)` of the fit's `onehot_level` rows with a slot.

    Returns
    -------
    dict of str to str
        `{"region__level_1": "bavaria", ...}`; slots without a learned level are absent.
    """
    return {f"{feature}__level_{slot}": level for feature, slot, level in rows}


def input_label(column: str, levels: dict[str, str]) -> str:
    """How a model input reads for people: `region is bavaria`, not `region__level_3`.

    Parameters
    ----------
    column : str
        A model input column.
    levels : dict of str to str
        Slot column -> learned level (`one_hot_levels`).

    Returns
    -------
    str
        For a one-hot slot column "<categorical> is <level>" ("<categorical>: no level learned"
        for an empty slot); for `<categorical>__other` "<categorical> is another value"; any
        other column unchanged.
    """
    if not column.startswith(ONE_HOT_PREFIXES):
        return column
    categorical = column.split("__")[0]
    if column.endswith(OTHER_SUFFIX):
        return f"{categorical} is another value"
    if column in levels:
        return f"{categorical} is {levels[column]}"
    return f"{categorical}: no level learned ({column})"


def model_matrix(data: ArrowData | pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Select the given columns as float64, booleans and integers becoming 0.0/1.0.

    Parameters
    ----------
    data : pyarrow.Table, pyarrow.RecordBatch or pandas.DataFrame
        Rows of a feature mart.
    columns : iterable of str
        The model input columns (see `model_input_columns`).

    Returns
    -------
    pandas.DataFrame
        One float64 column per input; nulls become NaN.
    """
    columns = list(columns)
    if isinstance(data, pd.DataFrame):
        return data[columns].astype(np.float64)
    # One column-major float64 block filled straight from Arrow and handed to pandas without a
    # copy: cheaper than going through mixed-dtype pandas.
    matrix = np.empty((data.num_rows, len(columns)), dtype=np.float64, order="F")
    for position, name in enumerate(columns):
        matrix[:, position] = data.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return pd.DataFrame(matrix, columns=columns, copy=False)


def to_frame(data: ArrowData, columns: Iterable[str]) -> pd.DataFrame:
    """Select columns from Arrow into pandas with NumPy dtypes (dates stay datetime64).

    Parameters
    ----------
    data : pyarrow.Table or pyarrow.RecordBatch
        Arrow rows.
    columns : iterable of str
        Columns to keep, in this order.

    Returns
    -------
    pandas.DataFrame
    """
    return data.select(list(columns)).to_pandas(types_mapper=None)
