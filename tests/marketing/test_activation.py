"""Audience exports: one CSV and one Parquet file per audience, controls apart, written whole."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import ml.delivery.activation
from ml.config import Settings
from ml.delivery.activation import (
    AUDIENCE_COLUMNS,
    HOLDOUT_NAME,
    MANIFEST_NAME,
    export_audiences,
    split_audiences,
    write_export,
)
from ml.errors import SegmartError
from tests.marketing.scored import private_settings

# One xdist worker runs these modules, so their module fixtures (export, report) run once.
pytestmark = pytest.mark.xdist_group("marketing")


@pytest.fixture(scope="module")
def exported_settings(
    marketing_dir: Path, generated_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A private copy of the shared warehouse: an export records its members in it."""
    root = tmp_path_factory.mktemp("exported")
    return private_settings(marketing_dir, generated_data, root)


@pytest.fixture(scope="module")
def exported(exported_settings: Settings) -> Path:
    return export_audiences(exported_settings)


def test_export_writes_a_csv_and_a_parquet_file_per_playbook_audience(
    exported: Path, con: duckdb.DuckDBPyConnection
) -> None:
    audiences = [
        name
        for (name,) in con.execute(
            "select audience from marketing.audience_summary order by priority"
        ).fetchall()
    ]
    [(as_of,)] = con.execute("select max(as_of) from marketing.campaign_audiences").fetchall()
    assert exported.name == as_of.isoformat()
    expected = {
        f"{name}.{suffix}" for name in [*audiences, HOLDOUT_NAME] for suffix in ("csv", "parquet")
    }
    assert {path.name for path in exported.iterdir()} == expected | {MANIFEST_NAME}
    for name in audiences:
        from_csv = pa_csv.read_csv(exported / f"{name}.csv")
        from_parquet = pq.read_table(exported / f"{name}.parquet")
        assert from_parquet.column_names == list(AUDIENCE_COLUMNS)
        assert from_csv.num_rows == from_parquet.num_rows
        assert from_csv["customer_id"].to_pylist() == from_parquet["customer_id"].to_pylist()
        assert set(from_parquet["audience_id"].to_pylist()) <= {name}
        assert set(from_parquet["campaign_key"].to_pylist()) <= {f"{name}-{as_of.isoformat()}"}
    holdout = pq.read_table(exported / f"{HOLDOUT_NAME}.parquet").to_pylist()
    assert holdout
    assert all(row["campaign_key"] == f"{row['audience']}-{as_of.isoformat()}" for row in holdout)


def test_audience_files_hold_no_control_and_the_holdout_file_every_control(
    exported: Path, con: duckdb.DuckDBPyConnection
) -> None:
    rows = con.execute(
        "select audience, customer_id, is_control from marketing.campaign_audiences"
    ).fetchall()
    treatment = {(a, c) for a, c, is_control in rows if not is_control}
    controls = {(a, c) for a, c, is_control in rows if is_control}
    files = pq.ParquetDataset([p for p in exported.glob("*.parquet") if p.stem != HOLDOUT_NAME])
    exported_treatment = {
        (row["audience"], row["customer_id"]) for row in files.read().to_pylist()
    }
    holdout = pq.read_table(exported / f"{HOLDOUT_NAME}.parquet").to_pylist()
    assert exported_treatment == treatment
    assert {(row["audience"], row["customer_id"]) for row in holdout} == controls
    manifest = json.loads((exported / MANIFEST_NAME).read_text())
    assert manifest["holdout"]["n_customers"] == len(controls)
    assert sum(a["n_customers"] for a in manifest["audiences"].values()) == len(treatment)


def _one_run(n: int = 3) -> pa.Table:
    return pa.table(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "audience": ["vip"] * n,
            "channel": ["email"] * n,
            "offer": ["o"] * n,
            "expected_value": [1.0] * n,
            "purchase_probability": [0.5] * n,
            "propensity_decile": [1] * n,
            "segment_name": ["s"] * n,
            "rfm_group": ["Loyal"] * n,
            "lifecycle_stage": ["active"] * n,
            "recommended_category_1": ["a"] * n,
            "recommended_category_2": ["b"] * n,
            "recommended_category_3": [None] * n,
            "audience_rank": list(range(n, 0, -1)),
            "model_id": ["m"] * n,
            "as_of": [date(2025, 10, 1)] * n,
            "is_control": [False] * (n - 1) + [True],
        }
    )


def test_audience_names_that_are_not_file_names_are_refused() -> None:
    with pytest.raises(SegmartError, match="cannot be a file name"):
        split_audiences(_one_run(), ["../vip"])


def test_audience_files_are_ordered_by_rank() -> None:
    files = split_audiences(_one_run(), ["vip", "empty"])
    assert files.audiences["vip"]["audience_rank"].to_pylist() == [2, 3]
    assert files.audiences["empty"].num_rows == 0
    assert files.holdout["customer_id"].to_pylist() == ["C2"]


def test_a_failed_export_leaves_the_previous_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = split_audiences(_one_run(), ["vip"])
    first = write_export(files, tmp_path)
    before = {path.name: path.read_bytes() for path in first.iterdir()}
    bigger = replace(files, audiences={"vip": files.audiences["vip"], "other": files.holdout})

    def fail_on_parquet(table: pa.Table, where: Path, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ml.delivery.activation.pq, "write_table", fail_on_parquet)
    with pytest.raises(OSError, match="disk full"):
        write_export(bigger, tmp_path)
    assert {path.name: path.read_bytes() for path in first.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == [first.name]  # no leftovers


def test_a_new_export_of_the_same_as_of_replaces_the_old_one_whole(tmp_path: Path) -> None:
    files = split_audiences(_one_run(), ["vip", "gone"])
    write_export(files, tmp_path)
    (tmp_path / ".2025-10-01.tmp-999").mkdir()  # left by a killed run
    target = write_export(split_audiences(_one_run(), ["vip"]), tmp_path)
    assert not (target / "gone.csv").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2025-10-01"]


def test_an_empty_selection_keeps_the_run_given_for_it() -> None:
    empty = _one_run().slice(0, 0)
    files = split_audiences(empty, ["vip"], run=(date(2025, 10, 1), "m"))
    assert (files.as_of, files.model_id) == (date(2025, 10, 1), "m")
    assert files.audiences["vip"].num_rows == 0 and files.holdout.num_rows == 0
    assert files.audiences["vip"].column_names == list(AUDIENCE_COLUMNS)
    with pytest.raises(SegmartError, match="holds 0 runs"):
        split_audiences(empty, ["vip"])


def _without_audiences(settings: Settings, consent: bool) -> Settings:
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("delete from marketing.campaign_audiences")
        if not consent:
            con.execute("update core.customers set is_marketing_opt_in = false")
    return settings


def test_without_any_consent_the_export_is_empty_files_and_a_note(
    marketing_dir: Path, generated_data: Path, tmp_path: Path
) -> None:
    settings = _without_audiences(
        private_settings(marketing_dir, generated_data, tmp_path), consent=False
    )
    exported = export_audiences(settings)
    manifest = json.loads((exported / MANIFEST_NAME).read_text())
    # The shop has a consent column; nobody in it said yes.
    assert manifest["note"] == (
        "No customer has marketing consent (marketing_opt_in is false or empty for every"
        " customer), so no audience was selected: check the marketing_opt_in values to select"
        " audiences."
    )
    assert len(manifest["audiences"]) >= 3
    for name in [*manifest["audiences"], HOLDOUT_NAME]:
        assert pq.read_table(exported / f"{name}.parquet").num_rows == 0
        assert pa_csv.read_csv(exported / f"{name}.csv").column_names[0] == "customer_id"


def test_an_empty_selection_despite_consent_is_refused(
    marketing_dir: Path, generated_data: Path, tmp_path: Path
) -> None:
    settings = _without_audiences(
        private_settings(marketing_dir, generated_data, tmp_path), consent=True
    )
    with pytest.raises(SegmartError, match="is empty: no opted-in customer matches"):
        export_audiences(settings)
    assert not settings.exports_dir.exists()
