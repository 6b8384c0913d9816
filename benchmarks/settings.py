"""What the harness measures and against which targets: sizes, stages, paths, floors."""

from __future__ import annotations

from pathlib import Path

from ml.config import dbt_var_defaults

# The training snapshots dbt builds by default (its one home: dbt_project.yml).
N_SNAPSHOTS: int = dbt_var_defaults()["n_snapshots"]
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SINGLE_QUERY_SQL = Path(__file__).resolve().parent / "single_query.sql"
VOCABULARY_CSV = PROJECT_ROOT / "dbt_project" / "seeds" / "controlled_vocabulary.csv"
DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_DOCS = PROJECT_ROOT / "docs" / "benchmarks.md"
DEFAULT_DATA_ROOT = Path("/tmp/segmart-bench")

SIZES: dict[str, int] = {"XS": 2_000, "S": 100_000, "M": 1_000_000}
DEFAULT_REPETITIONS: dict[str, int] = {"XS": 1, "S": 3, "M": 2}
FIXED_COST_SIZE = "XS"
"""The size whose `segmart build` time stands for dbt's fixed cost (start-up, parse, hooks,
per-node and per-test overhead): its data is so small that the work itself is negligible."""
SEED = 42

STAGES = (
    "generate",
    "dbt_parse",
    "scan_floor",
    "build",
    "single_query",
    "pandas",
    "train",
    "score",
    "run",
    "incremental",
)
ML_STAGES = ("train", "score", "run", "incremental")
STAGE_LABELS = {
    "generate": "generate (`scripts.generate`)",
    "dbt_parse": "dbt parse, cold (no partial-parse cache)",
    "scan_floor": "scan floor (every raw value read once)",
    "build": "`segmart build` (dbt build + tests)",
    "single_query": "single DuckDB query (floor)",
    "pandas": "pandas reference",
    "train": "`segmart train`",
    "score": "`segmart score` (with write-back)",
    "score_scaled": "`segmart score`, customers x{scale}",
    "run": "`segmart run` (end to end)",
    "incremental_build": "`segmart build`, a weekly drop added to the built history",
    "incremental_run": "`segmart run`, a weekly drop (champion scores, no retrain)",
}
# Columns of the marts that describe the fit rather than the customer.
METADATA_COLUMNS = frozenset({"feature_stats_fitted_as_of", "feature_stats_id"})
RTOL = 1e-6
ATOL = 1e-9

# Targets of issue #15 (speed) and #13 (training with the value models), 2 cores.
TARGET_BUILD_VS_FLOOR = 1.3
TARGET_QUERY_VS_SCAN = 5.0
TARGET_FIXED_COST_SECONDS = 10.0
TARGET_SPEEDUP_VS_PANDAS = 2.5
TARGET_MEMORY_VS_PANDAS = 0.25
TARGET_TRAIN_SECONDS = 45.0
TARGET_SCORE_SECONDS = 10.0
TARGET_SCORE_MEMORY_GROWTH = 1.2
TARGET_RUN: dict[str, tuple[float, int | None]] = {"S": (45.0, None), "M": (240.0, 3 * 1024**3)}
"""Per size: the end-to-end `segmart run`'s wall seconds and peak RSS (None: no memory target)."""
TARGET_INCREMENTAL_RUN_SECONDS = 60.0
