"""The score job: check the feature mart against the model, score it, write back.

The batches are scored into a spool on disk (`ml.serving.spool`), so memory stays flat
whatever the number of customers. DuckDB then sums the segment profiles over the spool and
ranks it for the deciles (ties broken by customer_id) while the three result tables are
replaced, and this run's slice of the score history written, in one transaction.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ml import registry, warehouse
from ml.config import Settings
from ml.errors import SegmartError
from ml.modelling.evaluate import markdown_table
from ml.registry import LoadedModel
from ml.segments import SegmentSums, describe_segments, segments_markdown
from ml.serving.compatibility import FEATURES_TABLE, check_compatible, scorer_columns
from ml.serving.spool import spool_scores

SCORES_TABLE = "predictions.customer_scores"
PROFILES_TABLE = "predictions.segment_profiles"
DRIFT_TABLE = "predictions.feature_drift"
HISTORY_TABLE = "predictions.customer_score_history"
# DuckDB only streams the mart and ranks the narrow scores here. Peak RSS at 1M vs 3M customers
# grew with its cap (1GB: 1.31 -> 1.52 GB; 512MB: 0.95 -> 1.18 GB) and is flat at 256MB (0.89
# -> 0.93 GB), at about the same speed: the ranking spills to disk.
SCORING_MEMORY_CAP = "256MB"

# Each run's slice of the history, copied from the scores just written in the same transaction.
_HISTORY_SQL = f"""
select
    customer_id,
    as_of,
    model_id,
    cast(? as timestamp) as scored_at,
    purchase_probability,
    predicted_revenue,
    segment_id,
    segment_name
from {SCORES_TABLE}
"""


@dataclass(frozen=True)
class ScoreReport:
    """What a scoring run wrote; `to_markdown()` is the readable version."""

    model_id: str
    as_of: date
    n_customers: int
    segments: pd.DataFrame
    drift: pd.DataFrame
    deciles: pd.DataFrame
    warnings: tuple[str, ...] = ()
    elapsed_seconds: float = 0.0

    @property
    def drifted_features(self) -> list[str]:
        """Model inputs whose PSI exceeds the drift threshold."""
        return self.drift.loc[self.drift["is_drifted"], "feature"].tolist()

    def to_markdown(self) -> str:
        """The report: deciles, segments, drift."""
        sections = [
            f"# Scores as of {self.as_of} (model {self.model_id})",
            f"{self.n_customers:,} customers scored in {self.elapsed_seconds:.1f} s into "
            f"{SCORES_TABLE}, {PROFILES_TABLE}, {DRIFT_TABLE} and {HISTORY_TABLE}.",
            "## Propensity deciles",
            markdown_table(self.deciles, index=False),
            "## Segments",
            segments_markdown(self.segments.set_index("segment_id")),
            "## Feature drift (PSI against training, top 10)",
            markdown_table(self.drift.head(10), index=False),
        ]
        if self.warnings:
            sections += ["## Warnings", *(f"- {warning}" for warning in self.warnings)]
        return "\n\n".join(sections) + "\n"


def score_warnings(model: LoadedModel, drift: pd.DataFrame, null_value: str | None) -> tuple:
    """One line per drifted feature, and for null value or revenue columns."""
    warnings = tuple(
        f"feature {row.feature} drifted since training (PSI {row.psi:.2f} > 0.25)"
        for row in drift.itertuples()
        if row.is_drifted
    )
    if null_value is not None:
        warnings += (null_value,)
    if model.spend is None:
        warnings += (
            "predicted_revenue and predicted_clv are null: model"
            f" {model.metadata.model_id} has no spend model (see its train report)",
        )
    return warnings


def with_run_columns(table: pd.DataFrame, model_id: str, as_of: date) -> pa.Table:
    stamped = table.assign(model_id=model_id, as_of=as_of)
    return pa.Table.from_pandas(stamped, preserve_index=False)


def _history_slice(model_id: str, as_of: date) -> warehouse.SliceReplacement:
    """This run's rows of the score history: re-scoring an as_of with a model replaces them."""
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    return warehouse.SliceReplacement(
        HISTORY_TABLE, {"as_of": as_of, "model_id": model_id}, _HISTORY_SQL, [scored_at]
    )


def _read_mart_state(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, str], list[tuple[str, date]], int]:
    warehouse.require_table(con, FEATURES_TABLE)
    stats = warehouse.query(
        con,
        "select feature_stats_id, feature_stats_fitted_as_of, count(*) as n"
        f" from {FEATURES_TABLE} group by all order by all",
    ).to_pylist()
    n_customers = sum(row["n"] for row in stats)
    pairs = [(row["feature_stats_id"], row["feature_stats_fitted_as_of"]) for row in stats]
    return warehouse.table_schema(con, FEATURES_TABLE), pairs, n_customers


def score(
    settings: Settings,
    model_ref: str | LoadedModel = "latest",
    progress: Callable[[str], None] = lambda s: None,
    batch_size: int = 50_000,
    n_threads: int | None = None,
) -> ScoreReport:
    """Score every customer of `ml.customer_features` and write the three result tables.

    Parameters
    ----------
    settings : Settings
        Warehouse and models directory.
    model_ref : str or LoadedModel
        A model id, "latest", or a model the caller has loaded already (`segmart run`'s
        champion: loading it again cost 0.45-0.9 s at M).
    progress : callable
        Receives one line per step, and a warning line per drifted feature.
    batch_size : int
        Customers per Arrow record batch.
    n_threads : int or None
        Batches scored at once, each on one thread; None uses every core.

    Returns
    -------
    ScoreReport

    Raises
    ------
    SegmartError
        Unknown or tampered model, missing or empty mart, or a mart that does not match the
        model; nothing is written then.
    """
    started = time.perf_counter()
    model = (
        model_ref
        if isinstance(model_ref, LoadedModel)
        else registry.load_model(settings.models_dir, model_ref)
    )
    meta = model.metadata
    progress(f"scoring {FEATURES_TABLE} with model {meta.model_id}")
    with warehouse.connect(settings.warehouse, memory_cap=SCORING_MEMORY_CAP) as con:
        mart_dtypes, stats, n_rows = _read_mart_state(con)
        if n_rows == 0:
            raise SegmartError(f"{FEATURES_TABLE} is empty: load customers and rebuild")
        check_compatible(meta, mart_dtypes, stats)
        columns = ["customer_id", "as_of", *scorer_columns(meta)]
        # In storage order, not sorted: sorting the wide mart would hold it all. Nothing
        # depends on the order: drift counts are integers and segment sums exact decimals.
        batches = warehouse.iter_batches(con, FEATURES_TABLE, batch_size, columns=columns)
        # A score job killed mid-way leaves its spool behind. This one holds the warehouse's
        # write lock, so no other job of this warehouse is using one: clear them.
        spool_prefix = f".{settings.warehouse.name}.score-spool-"
        for stale in settings.warehouse.parent.glob(f"{spool_prefix}*"):
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(
            dir=settings.warehouse.parent, prefix=spool_prefix
        ) as spool_dir:
            done = spool_scores(con, model, batches, Path(spool_dir), batch_size, n_threads)
            sums = SegmentSums.of_relation(
                con,
                f"read_parquet(?) join {FEATURES_TABLE} using (customer_id)",
                [str(done.scores)],
            )
            segments = describe_segments(sums.profiles(), model.segment_names)
            drift = model.drift.psi(done.drift_counts)
            progress(f"writing {done.n_customers:,} scores")
            warehouse.replace_tables(
                con,
                {
                    SCORES_TABLE: done.ranked(con),
                    PROFILES_TABLE: with_run_columns(
                        segments.reset_index(), meta.model_id, done.as_of
                    ),
                    DRIFT_TABLE: with_run_columns(drift, meta.model_id, done.as_of),
                },
                slices=[_history_slice(meta.model_id, done.as_of)],
            )
        deciles = warehouse.query(
            con,
            "select propensity_decile, count(*) as n_customers,"
            " avg(purchase_probability) as mean_probability,"
            " min(purchase_probability) as min_probability"
            f" from {SCORES_TABLE} group by all order by all",
        ).to_pandas()
    warnings = score_warnings(model, drift, done.null_value)
    for warning in warnings:
        progress(f"warning: {warning}")
    return ScoreReport(
        model_id=meta.model_id,
        as_of=done.as_of,
        n_customers=done.n_customers,
        segments=segments.reset_index(),
        drift=drift,
        deciles=deciles,
        warnings=warnings,
        elapsed_seconds=time.perf_counter() - started,
    )
