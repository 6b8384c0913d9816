"""Reproducibility: two `segmart run`s on the same raw files with the same seed, in two fresh
workspaces, produce identical tables.

Compared: every table of schemas core, ml, predictions and marketing in the working warehouse,
every table of the published BI file and every exported audience file, as (row count, md5 of
the sorted rows). Left out, because they identify the run rather than describe the data:

- `model_id`: the registry id embeds the training timestamp (two runs are two models);
- `trained_at`: when the model was trained (predictions.model_runs);
- `model_dir`: where the run's registry lives (a path under each workspace);
- `artifact_sha256`: the skops artifact is a zip whose entries record when they were written,
  so the same fitted objects give different bytes (`training_data_sha256` must still match).

Everything else - features, fitted preprocessing statistics, labels, scores, segments, reason
codes, drift, metrics, audiences with their hashed control groups - must match exactly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ml.config import HASH_KEY_FILE
from tests.reliability.conftest import RUN_OPTIONS, Workspace, assert_clean_success, digests

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN_SPECIFIC = frozenset(
    {"model_id", "trained_at", "model_dir", "artifact_sha256", "promoted_at", "scored_at"}
)
SCHEMAS = ("core", "ml", "predictions", "marketing")


def _exports(workspace: Workspace) -> dict[str, tuple[int, list[str]]]:
    found = {}
    for path in sorted(workspace.exports_dir.rglob("*.parquet")):
        table = pq.read_table(path)
        table = table.drop_columns([c for c in table.column_names if c in RUN_SPECIFIC])
        rows = sorted(str(row) for row in table.to_pylist())
        found[str(path.relative_to(workspace.exports_dir))] = (table.num_rows, rows)
    return found


def test_two_runs_on_the_same_inputs_and_seed_produce_identical_tables(
    good_run: Workspace, tmp_path: Path
) -> None:
    second = Workspace(root=tmp_path / "second", raw_dir=good_run.raw_dir)
    second.root.mkdir()
    # The same inputs include the same key of the published email hash (a workspace's secret).
    shutil.copy(good_run.root / HASH_KEY_FILE, second.root / HASH_KEY_FILE)
    assert_clean_success(second.cli("run", *RUN_OPTIONS, "--random-state", "42"))

    first_tables = digests(good_run.warehouse, SCHEMAS, RUN_SPECIFIC)
    second_tables = digests(second.warehouse, SCHEMAS, RUN_SPECIFIC)
    assert set(first_tables) == set(second_tables)
    assert {"core.customers", "ml.customer_features", "predictions.customer_scores"} <= set(
        first_tables
    )
    differing = [name for name in first_tables if first_tables[name] != second_tables[name]]
    assert differing == []

    assert digests(good_run.published, exclude=RUN_SPECIFIC) == digests(
        second.published, exclude=RUN_SPECIFIC
    )
    assert _exports(good_run) == _exports(second)
