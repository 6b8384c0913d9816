"""Smoke tests of the benchmark harness, so it never rots between `make bench` runs.

A full XS run of the harness builds with dbt twice and takes minutes on two cores, so the suite
checks the parts separately: the references against the shared dbt-built warehouse (the check the
harness runs before it compares any time), the check failing on a wrong value, and the harness's
own command line on the stages that need no dbt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import pandas_reference
from benchmarks.compare import check_equivalence
from benchmarks.measure import BenchmarkError
from benchmarks.references import run_single_query
from benchmarks.run import main, summarize
from tests.conftest import AS_OF, HORIZON_DAYS


@pytest.fixture
def warehouse(built_warehouse_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shared warehouse, with its write-ahead log: the worker that built
    it may still hold it open with the last tables only in the log."""
    for name in ("segmart.duckdb", "segmart.duckdb.wal"):
        if (built_warehouse_dir / name).exists():
            shutil.copy(built_warehouse_dir / name, tmp_path / name)
    return tmp_path / "segmart.duckdb"


@pytest.fixture(scope="module")
def reference_outputs(
    generated_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Both references computed on the shared generated shop, at the shared warehouse's as_of."""
    out = tmp_path_factory.mktemp("references")
    pandas_out = out / "pandas.parquet"
    pandas_reference.compute(
        generated_data / "raw", as_of=AS_OF, horizon_days=HORIZON_DAYS
    ).to_parquet(pandas_out, index=False)
    single_query_out = out / "single_query.duckdb"
    run_single_query(
        generated_data / "raw", single_query_out, as_of=AS_OF, horizon_days=HORIZON_DAYS
    )
    return pandas_out, single_query_out


@pytest.mark.integration
def test_both_references_compute_the_warehouse_features_and_preprocessing(
    warehouse: Path, reference_outputs: tuple[Path, Path]
) -> None:
    pandas_out, single_query_out = reference_outputs

    comparisons = check_equivalence(warehouse, pandas_out, single_query_out)

    assert len(comparisons) == 6
    assert all(c.ok and c.n_rows > 0 for c in comparisons)


@pytest.mark.integration
def test_a_reference_that_differs_stops_the_harness(
    warehouse: Path, reference_outputs: tuple[Path, Path], tmp_path: Path
) -> None:
    pandas_out, _ = reference_outputs
    wrong = pd.read_parquet(pandas_out)
    wrong.loc[0, "revenue__raw"] += 0.01
    wrong = wrong.drop(index=1)
    wrong_out = tmp_path / "wrong_reference.parquet"
    wrong.to_parquet(wrong_out, index=False)

    expected = r"(?s)featurized.*only in the warehouse: 1,.*revenue: 1 rows differ"
    with pytest.raises(BenchmarkError, match=expected):
        check_equivalence(warehouse, wrong_out, None)


def test_the_harness_times_each_stage_and_writes_results_and_summary(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"

    exit_code = main(
        [
            "--sizes",
            "XS",
            "--repetitions",
            "1",
            "--stages",
            "generate",
            "scan_floor",
            "single_query",
            "pandas",
            "--data-root",
            str(tmp_path / "data"),
            "--results-dir",
            str(tmp_path / "results"),
            "--docs",
            str(docs),
        ]
    )

    assert exit_code == 0
    (results_file,) = (tmp_path / "results").glob("*.json")
    results = json.loads(results_file.read_text())
    stages = results["sizes"]["XS"]["stages"]
    assert set(stages) == {"generate", "scan_floor", "single_query", "pandas"}
    for stage in stages.values():
        assert stage["median_seconds"] > 0
        assert stage["peak_rss_bytes"] > 10 * 1024**2
    assert results["machine"]["cores"] >= 1
    summary = docs.read_text()
    assert "| single DuckDB query (floor) |" in summary
    assert not (tmp_path / "data" / "XS").exists(), "generated data is removed unless kept"


def test_summarize_merges_invocations_and_a_later_skip_never_hides_a_measurement(
    tmp_path: Path,
) -> None:
    def results(name: str, stages: dict) -> Path:
        size = {"n_customers": 100_000, "stages": stages}
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"sizes": {"S": size}, "notes": [name]}))
        return path

    run = {"runs": [{"seconds": 10.0}]}
    first = results("first", {"train": run, "pandas": {"skipped": "12 GiB cap"}})
    second = results("second", {"train": {"skipped": "no model"}, "pandas": {"skipped": "20"}})
    merged = summarize([first, second])
    stages = merged["sizes"]["S"]["stages"]
    assert stages["train"] == run  # the measurement stays
    assert stages["pandas"] == {"skipped": "20"}  # the later skip wins
    assert merged["notes"] == ["first", "second"]
