"""BI readers during `segmart run`: the run succeeds, readers see the old publication or the new
one, never a mix, a half-written file or a missing table.

Two kinds of reader poll the published file while a real `segmart run` (a subprocess) rebuilds,
retrains, rescores and republishes: one read-only connection opened before the run and held to
the end (in its own process, as a BI tool would), and a fresh read-only connection per poll
(opened mid-run). DuckDB shares one database instance per path within a process, so the held
reader must live in another process for the fresh ones to really reopen the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import duckdb
import pytest

from ml.config import PROJECT_ROOT
from tests.reliability.conftest import CLI_TIMEOUT, NEW_MODEL, RUN_OPTIONS, Workspace
from tests.reliability.published import Snapshot, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLL_SECONDS = 0.5

HELD_READER = textwrap.dedent(
    """
    import json, sys, time
    from dataclasses import asdict
    from pathlib import Path

    import duckdb

    from tests.reliability.published import snapshot

    published, out, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    con = duckdb.connect(str(published), read_only=True)
    with out.open("w") as handle:
        while True:
            try:
                line = {"snapshot": asdict(snapshot(con))}
            except Exception as error:  # a missing table would land here
                line = {"error": f"{type(error).__name__}: {error}"}
            handle.write(json.dumps(line) + "\\n")
            handle.flush()
            if stop.exists():
                break
            time.sleep(float(sys.argv[4]))
    """
)


def _fresh_snapshot(published: Path) -> Snapshot | str:
    try:
        with duckdb.connect(str(published), read_only=True) as con:
            return snapshot(con)
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def _read_lines(path: Path) -> list[Snapshot | str]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [
        Snapshot(**line["snapshot"]) if "snapshot" in line else line["error"] for line in lines
    ]


def test_readers_see_the_old_or_the_new_publication_never_a_mix(
    last_good: Workspace, tmp_path: Path
) -> None:
    old = snapshot_of(last_good.published)
    assert old.is_one_publication
    held_out, stop = tmp_path / "held.jsonl", tmp_path / "stop"
    held = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HELD_READER,
            str(last_good.published),
            str(held_out),
            str(stop),
            str(POLL_SECONDS),
        ],
        cwd=PROJECT_ROOT,
    )
    try:
        while not (held_out.exists() and held_out.read_text()):
            assert held.poll() is None, "the held reader died before the run"
            time.sleep(0.1)

        run = last_good.popen("run", *RUN_OPTIONS, *NEW_MODEL, log=tmp_path / "run.log")
        fresh: list[Snapshot | str] = []
        deadline = time.monotonic() + CLI_TIMEOUT
        while run.poll() is None and time.monotonic() < deadline:
            fresh.append(_fresh_snapshot(last_good.published))
            time.sleep(POLL_SECONDS)
        assert run.wait(timeout=5) == 0, (tmp_path / "run.log").read_text()
        fresh.append(_fresh_snapshot(last_good.published))
    finally:
        stop.touch()
        held.wait(timeout=60)
    held_seen = _read_lines(held_out)

    errors = [s for s in [*held_seen, *fresh] if isinstance(s, str)]
    assert not errors, errors[:3]
    assert all(s.is_one_publication for s in [*held_seen, *fresh]), [
        asdict(s) for s in [*held_seen, *fresh] if not s.is_one_publication
    ][:3]
    new = fresh[-1]
    assert new.score_model != old.score_model
    assert {s.score_model for s in fresh} <= {old.score_model, new.score_model}
    assert fresh[0] == old  # the run is long enough for mid-run readers to see the old one
    # the connection opened before the run reads the file it opened, whole, to the end
    assert len(held_seen) >= 2 and set(held_seen) == {old}


def snapshot_of(published: Path) -> Snapshot:
    with duckdb.connect(str(published), read_only=True) as con:
        return snapshot(con)
