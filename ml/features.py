"""Which mart columns feed the model, and turning Arrow data into model matrices.

The marts `ml.training_examples` and `ml.customer_features` share one naming scheme: for each
numeric feature `f` there is `f` (imputed, raw units), `f__scaled` (preprocessed in SQL) and,
for imputable ones, `f_was_missing`; categoricals are one-hot `<categorical>__<level>` integers;
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
ONE_HOT_PREFIXES = ("gender__", "region__", "acquisition_channel__")
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
