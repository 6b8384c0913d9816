"""Settings: a warehouse is a workspace, and the email hash key stays out of the repository."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ml.config import DBT_HASH_KEY_VARIABLE, PROJECT_ROOT, Settings
from ml.errors import SegmartError

DIRS = ("models_dir", "published_dir", "reports_dir", "exports_dir")


@pytest.fixture(autouse=True)
def no_segmart_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SEGMART_"):
            monkeypatch.delenv(name)


def _dirs(settings: Settings) -> dict[str, Path]:
    return {name: getattr(settings, name) for name in DIRS}


def test_the_demo_keeps_its_outputs_where_they_always_were() -> None:
    settings = Settings()
    demo = PROJECT_ROOT / "warehouse"
    assert settings.is_demo
    assert settings.warehouse == demo / "segmart.duckdb"
    assert settings.published_warehouse == demo / "segmart_bi.duckdb"
    assert _dirs(settings) == {
        "models_dir": PROJECT_ROOT / "models",
        "published_dir": demo,
        "reports_dir": PROJECT_ROOT / "reports",
        "exports_dir": PROJECT_ROOT / "exports",
    }
    assert settings.landing_dir == demo / "landing" / "segmart"


def test_another_warehouse_takes_every_derived_path_with_it(tmp_path: Path) -> None:
    settings = Settings().with_overrides(warehouse=tmp_path / "shop" / "segmart.duckdb")
    shop = tmp_path / "shop"
    assert _dirs(settings) == {
        "models_dir": shop / "models",
        "published_dir": shop,
        "reports_dir": shop / "reports",
        "exports_dir": shop / "exports",
    }
    assert settings.hash_key_file.parent == shop


def test_two_warehouses_in_one_folder_do_not_share_outputs(tmp_path: Path) -> None:
    first = Settings(warehouse=tmp_path / "segmart.duckdb")
    second = Settings(warehouse=tmp_path / "other.duckdb")
    assert second.workspace == tmp_path / "other"
    for name in DIRS:
        assert getattr(first, name) != getattr(second, name)
    assert first.published_warehouse != second.published_warehouse
    assert first.hash_key_file != second.hash_key_file


def test_explicit_directories_win_over_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMART_REPORTS_DIR", str(tmp_path / "env_reports"))
    settings = Settings(models_dir=tmp_path / "given_models").with_overrides(
        warehouse=tmp_path / "elsewhere" / "segmart.duckdb"
    )
    assert settings.models_dir == tmp_path / "given_models"
    assert settings.reports_dir == tmp_path / "env_reports"
    assert settings.exports_dir == tmp_path / "elsewhere" / "exports"
    moved = settings.with_overrides(exports_dir=tmp_path / "exports_option")
    assert moved.exports_dir == tmp_path / "exports_option"
    assert moved.with_overrides(warehouse=tmp_path / "w.duckdb").exports_dir == (
        tmp_path / "exports_option"
    )


def test_a_workdir_holds_the_warehouse_and_every_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMART_WORKDIR", str(tmp_path / "work"))
    settings = Settings()
    assert settings.warehouse == tmp_path / "work" / "segmart.duckdb"
    assert all(path.is_relative_to(tmp_path / "work") for path in _dirs(settings).values())
    # a warehouse elsewhere still writes its outputs into the one workdir
    elsewhere = settings.with_overrides(warehouse=tmp_path / "w" / "segmart.duckdb")
    assert elsewhere.reports_dir == tmp_path / "work" / "reports"


def test_the_hash_key_is_made_once_private_to_its_owner_and_reaches_dbt_as_a_secret(
    tmp_path: Path,
) -> None:
    settings = Settings(warehouse=tmp_path / "segmart.duckdb")
    key = settings.hash_key()
    assert len(key) == 64
    assert stat.S_IMODE(settings.hash_key_file.stat().st_mode) == 0o600
    assert Settings(warehouse=tmp_path / "segmart.duckdb").hash_key() == key
    assert settings.dbt_env()[DBT_HASH_KEY_VARIABLE] == key
    assert DBT_HASH_KEY_VARIABLE.startswith("DBT_ENV_SECRET_")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_environment_key_wins_and_an_empty_key_file_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(warehouse=tmp_path / "segmart.duckdb")
    settings.hash_key_file.write_text("")
    with pytest.raises(SegmartError, match="is empty"):
        settings.hash_key()
    monkeypatch.setenv("SEGMART_HASH_KEY", "from-the-environment")
    assert settings.hash_key() == "from-the-environment"


def test_dbt_builds_two_nodes_at_once_for_a_small_shop_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "raw"
    (raw / "orders").mkdir(parents=True)
    (raw / "customers.csv").write_bytes(b"x" * 600)
    (raw / "orders" / "2026-01-07.csv").write_bytes(b"x" * 500)
    settings = Settings(raw_dir=raw, warehouse=tmp_path / "segmart.duckdb")
    assert settings.dbt_env()["SEGMART_DBT_THREADS"] == "2"
    # Every file counts, in folders of drops too: 1,100 bytes is no longer small.
    monkeypatch.setattr("ml.config.SMALL_SHOP_BYTES", 1_100)
    assert settings.dbt_env()["SEGMART_DBT_THREADS"] == "1"
    monkeypatch.setenv("SEGMART_DBT_THREADS", "3")
    assert settings.dbt_env()["SEGMART_DBT_THREADS"] == "3"
    for bad in ("two", "0"):
        monkeypatch.setenv("SEGMART_DBT_THREADS", bad)
        with pytest.raises(SegmartError, match=r"SEGMART_DBT_THREADS=.* is not a number"):
            settings.dbt_env()
