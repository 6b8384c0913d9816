"""Scoring with the champion inside dbt's graph: what the Python models of
`dbt_project/models/marts/predictions/` call, so that a plain `dbt build` scores too.

`segmart score` writes the same tables itself (any model, with progress); these functions give dbt
the champion's scores through the same code (`ml.serving.spool.spool_scores`), so lineage runs
raw -> features -> champion -> scores -> marketing in dbt's own graph. Each receives dbt's DuckDB
connection inside dbt's transaction (nothing here begins or commits) and its refs as DuckDB
relations. Without a champion every table is built empty with a warning: a missing model degrades
the marts, it never fails the build.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from ml import registry
from ml.config import Settings
from ml.errors import SegmartError
from ml.modelling.features import model_matrix
from ml.registry import LoadedModel
from ml.run.lifecycle import stats_gone
from ml.segments import SegmentSums, describe_segments
from ml.serving.compatibility import check_compatible, scorer_columns
from ml.serving.drift import add_counts
from ml.serving.scoring import score_warnings, with_run_columns
from ml.serving.spool import SCORES_SCHEMA, spool_scores

BATCH_SIZE = 50_000

CHAMPION_SCHEMA = pa.schema(
    [
        ("model_id", pa.string()),
        ("promoted_at", pa.string()),
        ("trained_as_of", pa.date32()),
        ("horizon_days", pa.int32()),
        ("feature_stats_id", pa.string()),
        ("feature_stats_fitted_as_of", pa.date32()),
        ("artifact_sha256", pa.string()),
    ]
)

DRIFT_SCHEMA = pa.schema(
    [
        ("feature", pa.string()),
        ("psi", pa.float64()),
        ("is_drifted", pa.bool_()),
        ("model_id", pa.string()),
        ("as_of", pa.date32()),
    ]
)
_PROFILE_TYPES = {
    "segment_name": pa.string(),
    "description": pa.string(),
    "model_id": pa.string(),
    "as_of": pa.date32(),
}


def warn(message: str) -> None:
    """A warning line in dbt's output (Python models have no logger of dbt's own)."""
    print(f"segmart warning: {message}", file=sys.stderr)


def workspace_settings(con: duckdb.DuckDBPyConnection) -> Settings:
    """The settings of the warehouse dbt has open: its registry is the workspace's."""
    # fetchall, not fetchone: a half-read result would block dbt's connection (duckdb 2.x).
    [(path,)] = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()
    return Settings(warehouse=Path(path).resolve())


def load_champion(con: duckdb.DuckDBPyConnection) -> LoadedModel | None:
    """The champion through the registry's safe loader, or None (with a warning) if none.

    Raises
    ------
    SegmartError
        The champion is gone or was changed after its promotion (the registry's message).
    """
    models_dir = workspace_settings(con).models_dir
    if registry.read_champion(models_dir) is None:
        warn(
            f"no champion in {models_dir}: predictions and marketing marts are empty"
            " (promote a model with `segmart models promote ID`, or run `segmart run`)"
        )
        return None
    return registry.load_model(models_dir, registry.CHAMPION)


def champion_row(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """`predictions.champion_model`: the promoted model and its statistics, or no row."""
    models_dir = workspace_settings(con).models_dir
    marker = registry.read_champion(models_dir)
    if marker is None:
        return CHAMPION_SCHEMA.empty_table()
    meta = registry.load_metadata(models_dir, registry.CHAMPION)
    row = {
        "model_id": meta.model_id,
        "promoted_at": marker.promoted_at,
        "trained_as_of": date.fromisoformat(meta.as_of),
        "horizon_days": meta.horizon_days,
        "feature_stats_id": meta.feature_stats_id,
        "feature_stats_fitted_as_of": date.fromisoformat(meta.feature_stats_fitted_as_of),
        "artifact_sha256": meta.artifact_sha256,
    }
    return pa.Table.from_pylist([row], schema=CHAMPION_SCHEMA)


def _mart_state(
    con: duckdb.DuckDBPyConnection, features: duckdb.DuckDBPyRelation
) -> tuple[dict[str, str], list[tuple[str, date]], int]:
    dtypes = dict(zip(features.columns, (str(t) for t in features.types), strict=True))
    rows = con.sql(
        "select feature_stats_id, feature_stats_fitted_as_of, count(*)"
        f" from ({features.sql_query()}) group by all order by all"
    ).fetchall()
    return dtypes, [(stats_id, fitted) for stats_id, fitted, _ in rows], sum(r[2] for r in rows)


def _stats_missing(con: duckdb.DuckDBPyConnection, model: LoadedModel) -> SegmartError | None:
    """`segmart run`'s error (ml.run.lifecycle): the champion's statistics are not in the mart."""
    [(n_rows,)] = con.execute(
        "select count(*) from ml.feature_stats where fitted_as_of = ?",
        [date.fromisoformat(model.metadata.feature_stats_fitted_as_of)],
    ).fetchall()
    return None if n_rows else stats_gone(workspace_settings(con), model.metadata)


def scores(con: duckdb.DuckDBPyConnection, features: duckdb.DuckDBPyRelation) -> pa.Table:
    """`predictions.customer_scores` from the champion, as `segmart score` writes it.

    Raises
    ------
    SegmartError
        The champion's statistics are gone, or the mart does not match the champion.
    """
    model = load_champion(con)
    if model is None:
        return SCORES_SCHEMA.empty_table()
    dtypes, stats, n_rows = _mart_state(con, features)
    if n_rows == 0:
        missing = _stats_missing(con, model)
        if missing is not None:
            raise missing
        warn("no customer to score at as_of: predictions.customer_scores is empty")
        return SCORES_SCHEMA.empty_table()
    check_compatible(model.metadata, dtypes, stats)
    columns = ["customer_id", "as_of", *scorer_columns(model.metadata)]
    batches = features.select(*(duckdb.ColumnExpression(c) for c in columns))
    with tempfile.TemporaryDirectory(prefix="segmart-dbt-scores-") as spool_dir:
        done = spool_scores(
            con, model, batches.to_arrow_reader(BATCH_SIZE), Path(spool_dir), BATCH_SIZE
        )
        drift = model.drift.psi(done.drift_counts)
        for warning in score_warnings(model, drift, done.null_value):
            warn(warning)
        return done.ranked(con).read_all().cast(SCORES_SCHEMA)


def segment_profiles(
    con: duckdb.DuckDBPyConnection,
    scores_relation: duckdb.DuckDBPyRelation,
    features: duckdb.DuckDBPyRelation,
) -> pa.Table:
    """`predictions.segment_profiles` of the champion's scores (no row when there are none)."""
    model = load_champion(con)
    joined = (
        f"({scores_relation.sql_query()}) as scores"
        f" join ({features.sql_query()}) as features using (customer_id)"
    )
    sums = SegmentSums.of_relation(con, joined)
    names = model.segment_names if model is not None else {}
    segments = describe_segments(sums.profiles(), names)
    [(as_of,)] = scores_relation.aggregate("max(as_of)").fetchall()
    model_id = model.metadata.model_id if model is not None else None
    return _typed(with_run_columns(segments.reset_index(), model_id, as_of))


def feature_drift(con: duckdb.DuckDBPyConnection, features: duckdb.DuckDBPyRelation) -> pa.Table:
    """`predictions.feature_drift` of the champion on the mart (no row when nothing is scored)."""
    model = load_champion(con)
    if model is None:
        return DRIFT_SCHEMA.empty_table()
    columns = list(model.drift.feature_names_in_)
    counts, as_of = None, None
    selected = features.select(*(duckdb.ColumnExpression(c) for c in ["as_of", *columns]))
    for batch in selected.to_arrow_reader(BATCH_SIZE):
        counts = add_counts(counts, model.drift.count(model_matrix(batch, columns)))
        as_of = as_of or batch.column("as_of")[0].as_py()
    if counts is None:
        return DRIFT_SCHEMA.empty_table()
    drift = model.drift.psi(counts)
    return with_run_columns(drift, model.metadata.model_id, as_of).cast(DRIFT_SCHEMA)


def _typed(profiles: pa.Table) -> pa.Table:
    """The text and date columns typed even when there is no row (pandas leaves them null)."""
    fields = [pa.field(f.name, _PROFILE_TYPES.get(f.name, f.type)) for f in profiles.schema]
    return profiles.cast(pa.schema(fields))
