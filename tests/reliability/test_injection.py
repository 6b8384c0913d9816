"""Injection: every CLI value that reaches SQL is validated or bound.

Dates, numbers and the algorithm are parsed by typer before anything runs (exit code 2, usage
error); model ids are looked up in the registry, never spliced; customer ids for `forget` must
match a strict pattern and are bound parameters; paths are escaped where DuckDB needs them as
literals (landing's raw dir, publish's ATTACH), so a quote in a path works.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.reliability.conftest import (
    Workspace,
    assert_clean_success,
    assert_one_line_error,
    digests,
)

pytestmark = pytest.mark.integration

DROP = "'; drop table core.customers; --"

# (arguments, exit code, what stderr must say)
ATTEMPTS = {
    "as_of": (["build", "--as-of", f"2024-01-01{DROP}"], 2, "Invalid value for '--as-of'"),
    "stats_as_of": (
        ["build", "--stats-as-of", "2024-01-01' or '1'='1"],
        2,
        "Invalid value for '--stats-as-of'",
    ),
    "horizon_days": (
        ["run", "--horizon-days", "90; drop table core.orders"],
        2,
        "Invalid value for '--horizon-days'",
    ),
    "algorithm": (["run", "--algorithm", f"x{DROP}"], 2, "Invalid value for '--algorithm'"),
    "segments": (["train", "--segments", "3; drop table ml.feature_stats"], 2, "--segments"),
    "model_id": (["score", "--model", f"x{DROP}"], 1, "unknown model id"),
    "model_path": (["score", "--model", "../../../etc/passwd"], 1, "unknown model id"),
    "models_show": (["models", "show", f"x{DROP}"], 1, "unknown model id"),
    "forget": (["forget", f"x{DROP}"], 1, "not a customer id"),
    "forget_tautology": (["forget", "C0000001' or '1'='1"], 1, "not a customer id"),
}


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_sql_in_a_cli_value_is_rejected_and_nothing_changes(
    last_good: Workspace, attempt: str
) -> None:
    args, exit_code, expected = ATTEMPTS[attempt]
    warehouse_before = digests(last_good.warehouse)
    published_before = digests(last_good.published)

    result = last_good.cli(*args)

    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    if exit_code == 1:
        assert_one_line_error(result, expected)
    else:  # a typer usage error, printed before any command code runs
        assert expected in result.stderr
    assert digests(last_good.warehouse) == warehouse_before
    assert digests(last_good.published) == published_before


def test_a_raw_dir_whose_path_holds_quotes_and_sql_is_landed_as_a_path(
    dirty_build: Workspace,
) -> None:
    # The dirty shop lives in "o'brien's shop'); drop table raw.files; --/raw".
    assert "'" in str(dirty_build.raw_dir) and "drop table" in str(dirty_build.raw_dir)
    with duckdb.connect(str(dirty_build.warehouse), read_only=True) as con:
        landed = con.execute("select table_name, file_path from raw.files").fetchall()
        n_customers = con.execute("select count(*) from core.customers").fetchall()[0][0]
    assert len(landed) == 6
    assert all(path.startswith(str(dirty_build.raw_dir)) for _, path in landed)
    assert n_customers == 20


def test_a_workspace_whose_paths_hold_quotes_works(good_run: Workspace, tmp_path: Path) -> None:
    # warehouse, models, published file and exports all under a quoted directory
    workspace = good_run.copy(tmp_path / "it's \"quoted\" ws')")
    with duckdb.connect(str(workspace.warehouse), read_only=True) as con:
        (customer,) = con.execute("select min(customer_id) from core.customers").fetchall()[0]

    assert_clean_success(workspace.cli("score", "--model", "latest"))
    assert_clean_success(workspace.cli("forget", customer))

    with duckdb.connect(str(workspace.published), read_only=True) as con:
        assert con.execute(
            "select count(*) from core.customers where customer_id = ?", [customer]
        ).fetchall() == [(0,)]
