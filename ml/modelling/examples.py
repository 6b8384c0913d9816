"""Training examples: read from `ml.training_examples`, split by time and by customer.

`read_examples` samples whole customers deterministically and tags each with a fold;
`Examples` holds them as model-ready columns; `split_for_validation` decides which rows fit,
which validate and which calibrate (see `Split`); `check_trainable` refuses too little data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml import warehouse
from ml.errors import SegmartError
from ml.modelling.features import LABEL, model_input_columns, model_matrix, raw_feature_columns

TRAINING_TABLE = "ml.training_examples"
MIN_EXAMPLES_PER_CLASS = 100
# Training samples customers by the top bits of md5(customer_id); Spark makes the same buckets.
SAMPLE_HASH_BITS = 20


@dataclass(frozen=True)
class Examples:
    """Training examples as model-ready columns.

    `features` holds the model inputs and the raw feature columns (all float64); `inputs`
    names the model inputs among them. `fold` (0 or 1) splits customers in two by a hash of
    their id, the same in every snapshot.
    """

    features: pd.DataFrame
    inputs: tuple[str, ...]
    label: np.ndarray
    value: np.ndarray
    customer_id: np.ndarray
    snapshot_on: np.ndarray
    fold: np.ndarray

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Examples:
        """Examples from rows of `ml.training_examples` plus a `customer_fold` column."""
        inputs = model_input_columns(table.column_names)
        columns = [*inputs, *raw_feature_columns(table.column_names)]
        return cls(
            features=model_matrix(table, columns),
            inputs=inputs,
            label=table.column(LABEL).to_numpy(zero_copy_only=False).astype(np.int64),
            value=table.column("revenue_in_horizon").to_numpy(zero_copy_only=False),
            customer_id=table.column("customer_id").to_numpy(zero_copy_only=False),
            snapshot_on=table.column("snapshot_on").to_numpy(zero_copy_only=False),
            fold=table.column("customer_fold").to_numpy(zero_copy_only=False).astype(np.int8),
        )

    @property
    def X(self) -> pd.DataFrame:  # noqa: N802 - scikit-learn's name
        """The model inputs."""
        return self.features[list(self.inputs)]

    def without(self, inputs: Iterable[str]) -> Examples:
        """The same examples with some model inputs left out (their columns stay)."""
        left_out = set(inputs)
        return replace(self, inputs=tuple(c for c in self.inputs if c not in left_out))

    def take(self, mask: np.ndarray) -> Examples:
        """The examples where `mask` is true."""
        return Examples(
            features=self.features[mask].reset_index(drop=True),
            inputs=self.inputs,
            label=self.label[mask],
            value=self.value[mask],
            customer_id=self.customer_id[mask],
            snapshot_on=self.snapshot_on[mask],
            fold=self.fold[mask],
        )


@dataclass(frozen=True)
class Split:
    """How the examples are used: time-aware validation, then cross-fitted final models.

    Consecutive snapshots are 30 days apart but their label windows last 90, so a customer's
    label in one snapshot largely *is* their label in the next: validating on customers the
    model was fitted on rewards memorising them (a flexible model scored 0.02 AUC better on
    such a validation and 0.005 worse out of time). So candidates are fitted on the earlier
    snapshots of fold-0 customers and compared on the latest snapshot of fold-1 customers:
    later in time, and never seen.
    """

    fit: Examples
    validation: Examples
    folds: tuple[Examples, Examples]
    latest: Examples

    def latest_of(self, fold: int) -> Examples:
        """The latest snapshot of one fold's customers."""
        return self.latest.take(self.latest.fold == fold)


def split_for_validation(examples: Examples) -> Split:
    """Split by time and by customer (see `Split`).

    Raises
    ------
    SegmartError
        No examples, or a single snapshot.
    """
    if len(examples.label) == 0:
        raise SegmartError(
            f"{TRAINING_TABLE} is empty: load raw data and run `segmart build` first"
        )
    is_latest = examples.snapshot_on == examples.snapshot_on.max()
    if is_latest.all():
        raise SegmartError(
            f"{TRAINING_TABLE} holds a single snapshot ({_day(examples)}); time-aware "
            "validation needs at least two: build with the dbt var n_snapshots >= 2"
        )
    return Split(
        fit=examples.take(~is_latest & (examples.fold == 0)),
        validation=examples.take(is_latest & (examples.fold == 1)),
        folds=(examples.take(examples.fold == 0), examples.take(examples.fold == 1)),
        latest=examples.take(is_latest),
    )


def check_trainable(split: Split, n_segments: int | None) -> None:
    """Refuse to train on too little data, with a one-line reason.

    Raises
    ------
    SegmartError
        A part of the split has a single class or fewer than 100 examples of a class, or
        there are fewer customers to segment than segments asked for.
    """
    day = _day(split.latest)
    parts = {
        "the earlier snapshots of half the customers": split.fit,
        f"the latest snapshot ({day}) of one half of the customers": split.latest_of(0),
        f"the latest snapshot ({day}) of the other half": split.latest_of(1),
    }
    for name, part in parts.items():
        positives = int(part.label.sum())
        negatives = len(part.label) - positives
        if positives == 0 or negatives == 0:
            kind = "bought" if negatives == 0 else "did not buy"
            raise SegmartError(
                f"cannot train: every example in {name} {kind} in the horizon (a single class);"
                " the data needs both buyers and non-buyers"
            )
        if min(positives, negatives) < MIN_EXAMPLES_PER_CLASS:
            raise SegmartError(
                f"cannot train: {name}: {positives} buyers and {negatives} non-buyers; "
                f"at least {MIN_EXAMPLES_PER_CLASS} of each are needed: load more customers"
            )
    needed = n_segments or 3
    if len(split.latest.label) < needed:
        raise SegmartError(
            f"cannot segment {len(split.latest.label)} customers into {needed} segments: "
            "ask for fewer segments (--segments) or load more customers"
        )


def _day(examples: Examples) -> str:
    return str(np.datetime64(examples.snapshot_on.max(), "D"))


def customer_sample(n_rows: int, max_rows: int) -> tuple[str, list[int]]:
    """A where clause (and its parameter) keeping about `max_rows` rows by customer hash.

    Whole customers: the top bits of md5(customer_id) pick them, the same in every table,
    snapshot and run. Empty when all rows fit.
    """
    if n_rows <= max_rows:
        return "", []
    where = f"where md5_number(customer_id) >> {128 - SAMPLE_HASH_BITS} < ?"
    return where, [int(2**SAMPLE_HASH_BITS * max_rows / n_rows)]


def read_examples(
    con: duckdb.DuckDBPyConnection, max_rows: int
) -> tuple[pa.Table, dict[str, str]]:
    warehouse.require_table(con, TRAINING_TABLE)
    column_dtypes = warehouse.table_schema(con, TRAINING_TABLE)
    count = warehouse.query(con, f"select count(*) as n from {TRAINING_TABLE}")
    n_rows = count.column("n")[0].as_py()
    # A customer's md5 decides both their sample bucket (the top 20 bits) and their fold (the
    # lowest bit, independent of the bucket): the same in every snapshot and every run. Shifts
    # and masks, because a modulo of the 128-bit md5_number is 40x slower than the md5 itself.
    where, params = customer_sample(n_rows, max_rows)
    fold = "cast(md5_number(customer_id) & 1 as tinyint) as customer_fold"
    sql = f"select *, {fold} from {TRAINING_TABLE} {where} order by snapshot_on, customer_id"
    return warehouse.query(con, sql, params), column_dtypes


def training_data_sha256(examples: Examples) -> str:
    """sha256 over the exact numbers trained on: ids, snapshots, labels and features."""
    digest = hashlib.sha256()
    digest.update("\n".join(map(str, examples.customer_id)).encode())
    digest.update(np.asarray(examples.snapshot_on, "datetime64[D]").astype(np.int64).tobytes())
    digest.update(examples.label.tobytes())
    digest.update(",".join(examples.features.columns).encode())
    digest.update(np.ascontiguousarray(examples.features.to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


def built_as_of(table: pa.Table) -> date:
    """The as_of the examples were built for: the end of the latest label window."""
    return pc.max(table.column("label_ends_on")).as_py()


def built_horizon_days(table: pa.Table) -> int:
    """The label horizon the examples were built with."""
    first = table.slice(0, 1).to_pylist()[0]
    return (first["label_ends_on"] - first["snapshot_on"]).days
