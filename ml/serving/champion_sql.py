"""The champion's scoring SQL where dbt reads it when it runs: `predictions.champion_scoring_sql`.

Promotion (`ml.promotion.promote`) compiles the new champion to one SQL select
(`ml.serving.sql_export.scoring_sql`) and leaves it in three places:
`<models_dir>/<id>/scoring.sql` for people to read, the table `predictions.champion_scoring_sql` of
the DuckDB warehouse, and `<models_dir>/champion_scoring_sql.parquet`, the file Spark's table of
that name is defined over (dbt_project/macros/champion_scoring.sql). The dbt model
`customer_scores_sql` reads the table with `run_query` at execution time: dbt cannot read the
registry when it compiles.

The SQL reads `FEATURES_RELATION`, which the dbt model replaces with its champion_features. A
champion the export cannot compile (a random forest, say) gets a row without SQL and with the
reason, and the SQL scorer builds no row and says why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ml import warehouse
from ml.errors import SegmartError
from ml.registry import LoadedModel
from ml.serving.sql_export import scoring_sql

TABLE = "predictions.champion_scoring_sql"
SPARK_FILE = "champion_scoring_sql.parquet"
SCORING_FILE = "scoring.sql"
FEATURES_RELATION = "__champion_features__"
SCHEMA = pa.schema(
    [
        ("model_id", pa.string()),
        ("feature_stats_fitted_as_of", pa.date32()),
        ("scoring_sql", pa.string()),
        ("note", pa.string()),
    ]
)


@dataclass(frozen=True)
class ChampionScoring:
    """A model's scoring SQL, or why it has none."""

    model_id: str
    feature_stats_fitted_as_of: date
    sql: str | None
    note: str | None = None

    def as_table(self) -> pa.Table:
        """The one row of `predictions.champion_scoring_sql`."""
        row = {
            "model_id": self.model_id,
            "feature_stats_fitted_as_of": self.feature_stats_fitted_as_of,
            "scoring_sql": self.sql,
            "note": self.note,
        }
        return pa.Table.from_pylist([row], schema=SCHEMA)


def compile_model(model: LoadedModel) -> ChampionScoring:
    """The scoring SQL of a model loaded (and so checked) through the registry."""
    metadata = model.metadata
    fitted_as_of = date.fromisoformat(metadata.feature_stats_fitted_as_of)
    try:
        sql = scoring_sql(model, FEATURES_RELATION, with_segment_names=True)
    except (SegmartError, ValueError) as error:
        return ChampionScoring(metadata.model_id, fitted_as_of, None, str(error))
    return ChampionScoring(metadata.model_id, fitted_as_of, sql)


def publish(
    models_dir: Path,
    con: duckdb.DuckDBPyConnection,
    scoring: ChampionScoring,
    appends: dict[str, pa.Table] | None = None,
) -> None:
    """Write the champion's SQL next to its artifact, into the warehouse and for Spark.

    Each is replaced whole (a renamed draft, one transaction): a reader sees the previous
    champion's SQL or the new one, never a mix. `appends` join the warehouse's transaction
    (the promotions row that records this champion).
    """
    if scoring.sql is not None:
        _replace_file(models_dir / scoring.model_id / SCORING_FILE, scoring.sql.encode())
    warehouse.replace_tables(con, {TABLE: scoring.as_table()}, appends=appends)
    draft = models_dir / f".{SPARK_FILE}.{os.getpid()}.tmp"
    try:
        pq.write_table(scoring.as_table(), draft)
        os.replace(draft, models_dir / SPARK_FILE)
    finally:
        draft.unlink(missing_ok=True)


def _replace_file(path: Path, content: bytes) -> None:
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        draft.write_bytes(content)
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)
