"""The published files open in the DuckDB clients BI tools ship today, and read the same there.

Both the plain-table file and the live views are read by a DuckDB 1.x client in its own venv
and by this process's DuckDB 2.x, every table compared by row count and an md5 of its sorted
rows. The README's CLI command runs as written with the `duckdb` the project installs.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ml.config import Settings
from ml.delivery.publish import live_warehouse, publish
from ml.errors import SegmartError
from tests.integration.bi_readers import digests_with, duckdb1_python
from tests.marketing.scored import marketing_dir, private_settings

__all__ = ["marketing_dir"]

pytestmark = pytest.mark.integration

# The storage versions DuckDB 1.x reads (its error names the file format numbers 64 to 68).
FORMAT_OF = {"v1.0.0": 64, "v1.2.0": 65, "v1.4.0": 67}
README = Path(__file__).resolve().parents[2] / "README.md"
DUCKDB_CLI = Path(sys.executable).with_name("duckdb")


def _format_number(path: Path) -> int:
    # A DuckDB file starts with a checksum, then "DUCK" and the format number (uint64 LE).
    header = path.read_bytes()[:20]
    assert header[8:12] == b"DUCK", header
    return int.from_bytes(header[12:20], "little")


@pytest.fixture(scope="module")
def settings(
    marketing_dir: Path, generated_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    settings = private_settings(marketing_dir, generated_data, tmp_path_factory.mktemp("compat"))
    publish(settings)
    return settings


@pytest.fixture(scope="module")
def python_1x(shared_root: Path) -> Path:
    return duckdb1_python(shared_root)


def test_the_published_files_are_in_the_oldest_format_that_1x_clients_read(
    settings: Settings,
) -> None:
    assert settings.bi_storage_version == "v1.0.0"
    assert _format_number(settings.published_warehouse) == FORMAT_OF["v1.0.0"]
    assert _format_number(live_warehouse(settings)) == FORMAT_OF["v1.0.0"]


@pytest.mark.parametrize("which", ["plain tables", "live views"])
def test_a_duckdb_1x_client_reads_every_published_table_as_duckdb_2x_does(
    settings: Settings, python_1x: Path, which: str
) -> None:
    path = settings.published_warehouse if which == "plain tables" else live_warehouse(settings)
    old = digests_with(python_1x, path)
    new = digests_with(sys.executable, path)
    assert old.pop("duckdb").startswith("1."), "the venv does not hold DuckDB 1.x"
    assert new.pop("duckdb") == duckdb.__version__
    assert len(new) >= 10, f"too few tables published: {sorted(new)}"
    assert sum(n_rows for n_rows, _ in new.values()) > 0
    assert old == new


def test_the_views_read_what_the_plain_tables_hold(settings: Settings) -> None:
    assert digests_with(sys.executable, live_warehouse(settings)) == digests_with(
        sys.executable, settings.published_warehouse
    )


def test_the_readme_cli_command_runs_as_written(settings: Settings) -> None:
    assert DUCKDB_CLI.exists(), "no duckdb command in the venv: `make install` (duckdb-cli)"
    (line,) = [
        line for line in README.read_text().splitlines() if line.startswith(".venv/bin/duckdb ")
    ]
    args = shlex.split(line)
    assert args[0] == ".venv/bin/duckdb" and "warehouse/segmart_bi.duckdb" in args
    args[0] = str(DUCKDB_CLI)
    args[args.index("warehouse/segmart_bi.duckdb")] = str(settings.published_warehouse)
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(settings.published_warehouse), read_only=True) as con:
        segments = [
            name
            for (name,) in con.execute(
                "select segment_name from marketing.segment_summary"
            ).fetchall()
        ]
    assert segments and all(name in result.stdout for name in segments), result.stdout


@pytest.mark.parametrize("version", ["v1.4.0", "v1.0.0"])
def test_the_storage_version_follows_the_setting(
    settings: Settings, tmp_path: Path, version: str
) -> None:
    private = settings.with_overrides(published_dir=tmp_path, bi_storage_version=version)
    publish(private)
    assert _format_number(private.published_warehouse) == FORMAT_OF[version]


def test_a_storage_version_that_is_not_one_is_refused(settings: Settings, tmp_path: Path) -> None:
    bad = settings.with_overrides(
        published_dir=tmp_path, bi_storage_version="v1'); drop table x; --"
    )
    with pytest.raises(SegmartError, match="SEGMART_BI_STORAGE_VERSION"):
        publish(bad)
    assert not any(tmp_path.iterdir())
