"""Score the feature mart batch by batch into a spool on disk: scores, BG/NBD columns, drift.

Customers stream through in Arrow record batches, so memory stays flat whatever their number:
each scored batch is appended to a temporary Parquet file while drift counts accumulate.
Batches are scored on one thread per core, each predicting single-threaded (see
`_scored_batches`). `Spooled.ranked` then adds the deciles over the whole spool. Shared by
`segmart score` (`ml.serving.scoring`) and the dbt Python model `customer_scores`
(`ml.serving.champion_scoring`), so both score alike.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from ml import warehouse
from ml.modelling.features import model_matrix
from ml.registry import LoadedModel
from ml.serving.compatibility import scorer_columns
from ml.serving.drift import add_counts
from ml.value.customer_value import (
    SCORED_VALUE_COLUMNS,
    VALUE_INPUTS_TABLE,
    ValueModels,
    fit_value_models,
    read_collapsed_inputs,
    scored_value,
)
from ml.value.revenue import predicted_revenue
from ml.value.seasonality import for_scoring

# customer_scores as `Spooled.ranked` gives it.
SCORES_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("as_of", pa.date32()),
        ("model_id", pa.string()),
        ("purchase_probability", pa.float64()),
        ("propensity_decile", pa.int32()),
        ("segment_id", pa.int32()),
        ("segment_name", pa.string()),
        ("reason_1", pa.string()),
        ("reason_2", pa.string()),
        ("reason_3", pa.string()),
        ("expected_orders", pa.float64()),
        ("probability_alive", pa.float64()),
        ("predicted_revenue", pa.float64()),
        ("predicted_revenue_decile", pa.int32()),
        ("predicted_clv", pa.float64()),
    ]
)

# What each batch writes to the spool: the scores without the columns that need every batch
# (deciles) or the BG/NBD fit (value columns), in the order `score_batch` builds them.
_SPOOL_SCHEMA = pa.schema(
    SCORES_SCHEMA.field(name)
    for name in (
        "customer_id",
        "as_of",
        "model_id",
        "purchase_probability",
        "predicted_revenue",
        "segment_id",
        "segment_name",
        "reason_1",
        "reason_2",
        "reason_3",
    )
)

_VALUE_SCHEMA = pa.schema(
    [("customer_id", pa.string()), *((column, pa.float64()) for column in SCORED_VALUE_COLUMNS)]
)

# Customers without a predicted revenue (no spend model) have no revenue decile; the others
# are ranked among themselves. predicted_clv scales the horizon's predicted revenue by BG/NBD's
# expected purchases over the CLV horizon relative to the label horizon (see
# ml.value.customer_value.CLV_METHOD). Two steps, so that only narrow rows are ranked and no
# hash table is held while the wide rows are sorted: the deciles and value columns of each
# spooled row go to a file in spool order, then the spool and that file are joined by position
# and sorted by customer. Ranking the wide rows (reasons and all) instead spilled 2 GB at 1M
# customers under the score job's memory cap (ml.serving.scoring.SCORING_MEMORY_CAP) and took
# 38 CPU seconds at 3M against 24; joining the deciles back by a hash join ran out of the cap
# at 3M.
_RANKS_SQL = """
select
    scores.file_row_number,
    cast(
        ntile(10) over (order by scores.purchase_probability desc, scores.customer_id)
        as integer
    ) as propensity_decile,
    case when scores.predicted_revenue is not null then cast(
        ntile(10) over (
            partition by scores.predicted_revenue is null
            order by scores.predicted_revenue desc, scores.customer_id
        ) as integer
    ) end as predicted_revenue_decile,
    value.expected_orders,
    value.probability_alive,
    value.clv_ratio
from read_parquet(?, file_row_number = true) as scores
left join read_parquet(?) as value on scores.customer_id = value.customer_id
order by scores.file_row_number
"""

_RANKED_SCORES_SQL = """
select
    scores.customer_id,
    scores.as_of,
    scores.model_id,
    scores.purchase_probability,
    ranks.propensity_decile,
    scores.segment_id,
    scores.segment_name,
    scores.reason_1,
    scores.reason_2,
    scores.reason_3,
    ranks.expected_orders,
    ranks.probability_alive,
    scores.predicted_revenue,
    ranks.predicted_revenue_decile,
    scores.predicted_revenue * ranks.clv_ratio as predicted_clv
from read_parquet(?) as scores
positional join read_parquet(?) as ranks
order by scores.customer_id
"""


def score_batch(model: LoadedModel, batch: pa.RecordBatch) -> tuple[pa.Table, pd.DataFrame]:
    """Score one batch of the feature mart.

    Returns
    -------
    pyarrow.Table, pandas.DataFrame
        The scores (without deciles, which need every batch) and the float64 frame of model
        inputs and raw features they were computed from.
    """
    frame = model_matrix(batch, scorer_columns(model.metadata))
    proba = model.propensity.predict_proba(frame).to_numpy()
    revenue = None
    if model.spend is not None:
        revenue = predicted_revenue(proba, model.spend.predict(frame))
    segment_ids = model.segmenter.predict(frame)
    reasons = model.reasons.reasons(frame)
    # Indexed by segment id; stable ids (ml.segments.match_segments) may leave gaps.
    names = np.full(max(model.segment_names) + 1, "", dtype=object)
    for segment, (name, _) in model.segment_names.items():
        names[segment] = name
    scores = pa.table(
        {
            "customer_id": batch.column("customer_id"),
            "as_of": batch.column("as_of"),
            "model_id": pa.array([model.metadata.model_id] * batch.num_rows, pa.string()),
            "purchase_probability": pa.array(proba, pa.float64()),
            "predicted_revenue": pa.array(revenue, pa.float64())
            if revenue is not None
            else pa.nulls(batch.num_rows, pa.float64()),
            "segment_id": pa.array(segment_ids, pa.int32()),
            "segment_name": pa.array(names[segment_ids], pa.string()),
            **{c: pa.array(reasons[c], pa.string()) for c in reasons.columns},
        }
    )
    return scores, frame


@dataclass
class _Accumulated:
    n_customers: int
    as_of: date
    drift_counts: dict[str, np.ndarray]


@dataclass(frozen=True)
class Spooled:
    """One scoring's results on disk: the scores, the BG/NBD columns, and the drift counts."""

    scores: Path
    value: Path
    n_customers: int
    as_of: date
    drift_counts: dict[str, np.ndarray]
    # Set when the BG/NBD columns are null, saying why.
    null_value: str | None

    def ranked(self, con: duckdb.DuckDBPyConnection) -> pa.RecordBatchReader:
        """The scores with their deciles and value columns, as `customer_scores` holds them."""
        ranks = self.scores.with_name("ranks.parquet")
        with con.cursor() as cursor:
            cursor.sql(_RANKS_SQL, params=[str(self.scores), str(self.value)]).to_parquet(
                str(ranks)
            )
        return warehouse.stream_query(con, _RANKED_SCORES_SQL, [str(self.scores), str(ranks)])


def spool_scores(
    con: duckdb.DuckDBPyConnection,
    model: LoadedModel,
    batches: Iterator[pa.RecordBatch],
    spool_dir: Path,
    batch_size: int,
    n_threads: int | None = None,
) -> Spooled:
    """Score the feature batches and spool the results in `spool_dir` (the caller's to delete).

    `n_threads` batches are scored at once (None: one per core).
    """
    scores, value = spool_dir / "scores.parquet", spool_dir / "value.parquet"
    model = for_scoring(con, model)  # the seasonal factor of this as_of, in the spend model
    n_workers = n_threads or joblib.cpu_count()
    # Restores on exit whatever the workers' scikit-learn calls changed.
    with threadpool_limits(limits=n_threads):
        done = _score_to_spool(model, batches, scores, n_workers)
        null_value = _value_to_spool(con, model, done.as_of, value, batch_size)
    return Spooled(scores, value, done.n_customers, done.as_of, done.drift_counts, null_value)


def _score_to_spool(
    model: LoadedModel, batches: Iterator[pa.RecordBatch], spool: Path, n_workers: int
) -> _Accumulated:
    counts, n_customers, as_of = None, 0, None
    with pq.ParquetWriter(spool, _SPOOL_SCHEMA) as writer:
        for scores, batch_counts in _scored_batches(model, batches, n_workers):
            writer.write_table(scores)
            counts = add_counts(counts, batch_counts)
            n_customers += scores.num_rows
            as_of = as_of or scores.column("as_of")[0].as_py()
    return _Accumulated(n_customers, as_of, counts)


def _scored_batches(
    model: LoadedModel, batches: Iterator[pa.RecordBatch], n_workers: int
) -> Iterator[tuple[pa.Table, dict[str, np.ndarray]]]:
    """The spooled scores and drift counts of each batch, in order, `n_workers` at a time.

    Gradient boosting predicts tree by tree, each tree an OpenMP region over the rows: on a
    busy 2-core machine two OpenMP threads spun at every tree's barrier, and scoring 1M
    customers took 65 CPU seconds instead of 39 with one. So each batch predicts on one
    thread, and the cores share the batches instead (the prediction releases the GIL). At
    most `n_workers` batches are held at once: memory stays flat.
    """
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(_score_and_count, model, batch))
            if len(pending) >= n_workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _score_and_count(
    model: LoadedModel, batch: pa.RecordBatch
) -> tuple[pa.Table, dict[str, np.ndarray]]:
    with threadpool_limits(limits=1, user_api="openmp"):
        scores, frame = score_batch(model, batch)
    counts = model.drift.count(frame[list(model.drift.feature_names_in_)])
    return scores.cast(_SPOOL_SCHEMA), counts


def _value_to_spool(
    con: duckdb.DuckDBPyConnection,
    model: LoadedModel,
    as_of: date,
    spool: Path,
    batch_size: int,
) -> str | None:
    """Spool the BG/NBD columns of the as_of customers; return a warning if they are null.

    BG/NBD is fitted without labels on the history before as_of, so a model scoring a later
    as_of than it was trained at (the champion, week after week) refits it there: the same
    fit training would make, from the same mart. Streams `ml.customer_value_inputs` at as_of
    in batches, like the features.
    """
    reason = None
    if not warehouse.table_exists(con, VALUE_INPUTS_TABLE):
        reason = f"{VALUE_INPUTS_TABLE} is missing: rebuild with `segmart build`"
    else:
        value = _value_models_at(con, model, as_of)
        if value.purchases is None:
            reason = f"BG/NBD could not be fitted as of {as_of} ({value.reason})"
    with pq.ParquetWriter(spool, _VALUE_SCHEMA) as writer:
        if reason is not None:
            return f"expected_orders, probability_alive and predicted_clv are null: {reason}"
        batches = warehouse.stream_query(
            con,
            "select customer_id, frequency, recency_days, t_days, mean_repeat_spend"
            f" from {VALUE_INPUTS_TABLE} where snapshot_on = ?",
            [as_of],
            batch_size,
        )
        for batch in batches:
            inputs = batch.to_pandas()
            predicted = scored_value(value, inputs)
            predicted.insert(0, "customer_id", inputs["customer_id"])
            writer.write_table(
                pa.Table.from_pandas(predicted, schema=_VALUE_SCHEMA, preserve_index=False)
            )
    return None


def _value_models_at(
    con: duckdb.DuckDBPyConnection, model: LoadedModel, as_of: date
) -> ValueModels:
    """The model's BG/NBD fit if it was made at as_of, else a fresh one there."""
    if model.value is not None and model.value.snapshot_on == str(as_of):
        return model.value
    return fit_value_models(
        *read_collapsed_inputs(con, as_of),
        snapshot_on=str(as_of),
        horizon_days=model.metadata.horizon_days,
    )
