"""Crashes: a score job killed with SIGKILL while it writes the scores back, and a run killed
while dbt builds, leave BI on the last good tables and the next run completes.

Kill points are detected from the outside, without hooks in the code:

- scoring is under way while its spool directory (`.<warehouse>.score-spool-*`, next to the
  warehouse) exists: it is created after the model is loaded and removed after the
  predictions.* tables were replaced, in one transaction (a killed job's spool is cleared by
  the next score);
- dbt is building models when it writes their compiled SQL under its target directory
  (`<workspace>/dbt-target/run/`), which happens as each model starts.

DuckDB's WAL is never touched by hand: the next open replays or discards it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.reliability.conftest import (
    NEW_MODEL,
    RUN_OPTIONS,
    Workspace,
    assert_clean_success,
    digests,
    kill_group,
)
from tests.reliability.published import snapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT_SECONDS = 600


def _wait_for(condition: Callable[[], bool], process, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _dbt_started_models(workspace: Workspace, since: float) -> bool:
    run_dir = workspace.root / "dbt-target" / "run"
    return run_dir.exists() and any(
        path.stat().st_mtime >= since for path in run_dir.rglob("*.sql")
    )


def test_killed_scoring_and_a_killed_build_leave_bi_whole_and_the_next_run_completes(
    last_good: Workspace, tmp_path: Path
) -> None:
    published = last_good.published
    before_bytes, before = published.read_bytes(), digests(published)
    wal = last_good.warehouse.with_name(last_good.warehouse.name + ".wal")
    assert not wal.exists()
    with duckdb.connect(str(published), read_only=True) as con:
        old_model = snapshot(con).score_model

    # 1. SIGKILL while `segmart score` scores and replaces the predictions.* tables. The tables
    # are marked first, so that old and new differ even though the model is the same.
    predictions = ("customer_scores", "segment_profiles", "feature_drift")
    with duckdb.connect(str(last_good.warehouse)) as con:
        for table in predictions:
            con.execute(f"update predictions.{table} set model_id = 'before-the-kill'")
    spools = f".{last_good.warehouse.name}.score-spool-*"
    score = last_good.popen("score", "--model", "latest", log=tmp_path / "kill-in-scoring.log")
    _wait_for(lambda: any(last_good.root.glob(spools)), score, "scoring")
    kill_group(score)
    assert published.read_bytes() == before_bytes
    with duckdb.connect(str(last_good.warehouse), read_only=True) as con:
        seen = {
            table: {
                m
                for (m,) in con.execute(
                    f"select distinct model_id from predictions.{table}"
                ).fetchall()
            }
            for table in predictions
        }
    # all three as before the kill, or (had the kill come after the commit) all three new
    assert list(seen.values()) in ([{"before-the-kill"}] * 3, [{old_model}] * 3), seen

    # 2. SIGKILL while dbt builds the models of the next run
    started = time.time()
    run = last_good.popen("run", *RUN_OPTIONS, log=tmp_path / "kill-in-dbt.log")
    _wait_for(lambda: _dbt_started_models(last_good, started), run, "dbt started models")
    time.sleep(1.0)
    kill_group(run)
    assert published.read_bytes() == before_bytes
    assert digests(published) == before

    # 3. the next run completes and publishes a whole new set of tables
    assert_clean_success(last_good.cli("run", *RUN_OPTIONS, *NEW_MODEL))
    with duckdb.connect(str(published), read_only=True) as con:
        after = snapshot(con)
    assert after.is_one_publication
    assert after.score_model != old_model
    assert digests(published) != before
    # and nothing the killed jobs left behind remains: no score spool, no half-published copy
    assert not list(last_good.root.glob(spools))
    assert not list(published.parent.glob(f".{published.name}.*.tmp"))
