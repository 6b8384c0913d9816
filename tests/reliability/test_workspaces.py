"""A warehouse is a workspace: two shops run from one checkout never share an output.

The first shop is the shared good run, laid out as its warehouse derives it (models, reports,
exports and the BI copies beside `segmart.duckdb`). The second is a `segmart run --warehouse`
on another folder with no `SEGMART_*_DIR` set, the way the issue saw a run replace the demo's BI
copy and report: it must write its own and leave the first shop's untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.reliability.conftest import (
    CLI_TIMEOUT,
    RUN_OPTIONS,
    SEGMART,
    Workspace,
    assert_clean_success,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _fingerprints(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _first_shop(good_run: Workspace, root: Path) -> Path:
    """The good run's outputs where its warehouse derives them (no explicit directories)."""
    shutil.copytree(good_run.root, root, symlinks=True)
    for path in (root / "published").iterdir():
        path.rename(root / path.name)
    (root / "published").rmdir()
    return root / "segmart.duckdb"


def test_two_warehouses_from_one_checkout_keep_separate_bi_copies_reports_and_registries(
    good_run: Workspace, tmp_path: Path
) -> None:
    first = _first_shop(good_run, tmp_path / "shop_a")
    before = _fingerprints(first.parent)
    assert {"segmart_bi.duckdb", "reports/segmart_report.html"} <= set(before)
    second = tmp_path / "shop_b" / "segmart.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMART_")} | {
        "SEGMART_RAW_DIR": str(good_run.raw_dir),
        # the default points at the first shop; the option must move every output with it
        "SEGMART_WAREHOUSE": str(first),
        "COLUMNS": "400",
        "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
    }
    result = subprocess.run(
        [str(SEGMART), "run", "--warehouse", str(second), *RUN_OPTIONS],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert_clean_success(result)

    assert _fingerprints(first.parent) == before
    shop_b = second.parent
    assert (shop_b / "segmart_bi.duckdb").is_file()
    assert (shop_b / "segmart_bi_live.duckdb").is_file()
    assert (shop_b / "reports" / "segmart_report.html").is_file()
    assert list((shop_b / "models").glob("*/metadata.json"))
    assert list((shop_b / "exports").rglob("*.parquet"))
    assert {p.name for p in (shop_b / "models").iterdir() if p.is_dir()}.isdisjoint(
        p.name for p in (first.parent / "models").iterdir() if p.is_dir()
    )
    # nothing landed in the working directory the command ran from
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dbt-target", "shop_a", "shop_b"]
    # each shop's email hash is keyed with its own secret
    keys = {(root / ".segmart_hash_key").read_text() for root in (first.parent, shop_b)}
    assert len(keys) == 2
    with duckdb.connect(str(shop_b / "segmart_bi.duckdb"), read_only=True) as con:
        (n_customers,) = con.execute("select count(*) from core.customers").fetchone()
    assert n_customers > 0
