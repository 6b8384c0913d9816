"""Publish the BI-facing tables where readers never block the pipeline.

DuckDB allows one writer or many readers, never both, so BI tools do not open the working
warehouse. After a good run the BI tables are published twice, from one read of the warehouse:

- `segmart_bi.duckdb`, plain tables in a fresh DuckDB file renamed over the published one. A
  connection reads the file it opened, whole, until it closes; a new connection gets the new one.
  It is self-contained (copy it, mount it anywhere) and written in the oldest storage format
  that holds our types (`SEGMART_BI_STORAGE_VERSION`), so DuckDB 1.x clients open it too.
- `segmart_bi/publication-<key>/<schema>.<table>.parquet`, one immutable folder per
  publication, and `segmart_bi_live.duckdb`, whose views read the publication in effect when
  the query's transaction began: the newest folder whose time `T` (epoch microseconds, encoded
  in the key, see `folder_name`) is at or before DuckDB's `current_timestamp`. A pooled
  connection therefore sees the next run on its next query. Every table a query reads comes
  from the same publication: a folder is renamed into place complete, `T` lies a moment after
  the rename and publishing waits until `T` has passed, so a folder in effect for a transaction
  is visible to every file listing the transaction makes. Superseded folders are deleted by a
  later publish, once a grace period has passed since their successor took effect.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

import duckdb

from ml.config import Settings
from ml.errors import SegmartError
from ml.warehouse import connect, table_exists

# Facts and dimensions BI reads; everything in schema `marketing` is published too. Staging,
# quarantine (raw records hold PII) and the ML marts stay in the working warehouse.
BI_TABLES = (
    "core.customers",
    "core.orders",
    "core.data_reconciliation",
    "predictions.customer_scores",
    "predictions.segment_profiles",
    "predictions.feature_drift",
    "predictions.model_runs",
)
BI_SCHEMAS = ("marketing",)

LIVE_NAME = "segmart_bi_live.duckdb"
PUBLICATIONS_NAME = "segmart_bi"
MARKER = "_publication.json"
# How long a superseded publication stays readable for queries that began before its successor
# took effect; `segmart forget` passes zero so that no copy of a forgotten customer remains.
GRACE = timedelta(minutes=10)
# A publication takes effect this long after its folder is renamed into place.
EFFECT_DELAY_US = 1_000_000

_STORAGE_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
_PUBLICATION = re.compile(r"^publication-(\d{16})$")
_KEY_BASE = 10**16 - 1


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def live_warehouse(settings: Settings) -> Path:
    """The DuckDB file of views over the newest Parquet publication."""
    return settings.published_dir / LIVE_NAME


def publications_dir(settings: Settings) -> Path:
    """The folder holding one `publication-<T>` folder of Parquet files per publication."""
    return settings.published_dir / PUBLICATIONS_NAME


def bi_tables(settings: Settings) -> list[str]:
    """The BI-facing tables present in the working warehouse."""
    with connect(settings.warehouse, read_only=True) as con:
        present = [name for name in BI_TABLES if table_exists(con, name)]
        rows = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema in (select unnest(?)) and table_type = 'BASE TABLE'"
            " order by 1",
            [list(BI_SCHEMAS)],
        ).fetchall()
    return present + [name for (name,) in rows]


def storage_version(settings: Settings) -> str:
    """The DuckDB storage version the published files are written in, checked."""
    version = settings.bi_storage_version
    if not _STORAGE_VERSION.match(version):
        raise SegmartError(
            f"SEGMART_BI_STORAGE_VERSION={version!r} is not a DuckDB storage version:"
            " use one such as v1.0.0 (the default, read by DuckDB 1.0 and later)"
        )
    return version


def _attach(con: duckdb.DuckDBPyConnection, path: Path, version: str) -> None:
    try:
        con.execute(f"attach {_sql_string(str(path))} as bi (storage_version '{version}')")
    except duckdb.Error as error:
        raise SegmartError(
            f"cannot write the BI file with SEGMART_BI_STORAGE_VERSION={version}: {error}"
            " (unset it to use v1.0.0)"
        ) from error


def _write_tables(
    con: duckdb.DuckDBPyConnection, path: Path, tables: list[str], version: str
) -> None:
    _attach(con, path, version)
    for name in tables:
        con.execute(f"create schema if not exists bi.{name.split('.')[0]}")
        con.execute(f"create table bi.{name} as select * from {name}")
    con.execute("detach bi")


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in con.execute(f"describe {relation}").fetchall()}


def _write_parquet(
    con: duckdb.DuckDBPyConnection, folder: Path, tables: list[str]
) -> dict[str, dict[str, str]]:
    """Write one Parquet file per table; return the casts that give the views the table types.

    Parquet has no 128-bit integer: a HUGEINT (what `sum` of integers gives) would come back as
    DOUBLE, so it is written as DECIMAL(38,0), exact, and the view casts it back.
    """
    folder.mkdir(parents=True)
    rows, casts = {}, {}
    for name in tables:
        types = _columns(con, name)
        exact = [f'cast("{c}" as decimal(38,0)) as "{c}"' for c in types if types[c] == "HUGEINT"]
        replace = f" replace ({', '.join(exact)})" if exact else ""
        path = _sql_string(str(folder / f"{name}.parquet"))
        con.execute(f"copy (select *{replace} from {name}) to {path} (format parquet)")
        written = _columns(con, f"select * from read_parquet({path})")
        casts[name] = {c: t for c, t in types.items() if written[c] != t}
        (rows[name],) = con.execute(f"select count(*) from {name}").fetchone()
    # Written last: a folder with its marker is complete, and only such folders are read.
    (folder / MARKER).write_text(json.dumps({"tables": rows}, indent=2))
    return casts


def _now_us() -> int:
    return time.time_ns() // 1_000


def folder_name(effective: int) -> str:
    """The folder of the publication taking effect at `effective` (epoch microseconds).

    Keys count down (10^16 - 1 - effective, 16 digits), so the newest publication sorts first.
    DuckDB takes a glob's column types from its first file: that file must be one no publish is
    about to delete, and the newest is never deleted.
    """
    return f"publication-{_KEY_BASE - effective:016d}"


def publications(root: Path) -> list[tuple[int, Path]]:
    """Complete publication folders, oldest first, with the time each takes effect."""
    found = []
    for path in root.glob("publication-*"):
        match = _PUBLICATION.match(path.name)
        if match and (path / MARKER).exists():
            found.append((_KEY_BASE - int(match.group(1)), path))
    return sorted(found)


def _take_effect(staging: Path, root: Path) -> Path:
    """Rename a complete folder into place and return once it is the one in effect."""
    newest = max((effective for effective, _ in publications(root)), default=0)
    effective = max(_now_us() + EFFECT_DELAY_US, newest + 1)
    folder = root / folder_name(effective)
    staging.rename(folder)
    while (wait := effective - _now_us()) >= 0:
        time.sleep(wait / 1e6 + 0.001)
    return folder


def view_sql(root: Path, name: str, casts: dict[str, str] | None = None) -> str:
    """A view reading table `name` from the publication in effect when the transaction began.

    `casts` maps columns to the type the view gives them where Parquet stores another.
    """
    base = str(root.resolve())
    markers = _sql_string(f"{base}/publication-*/{MARKER}")
    key = "regexp_extract(file, 'publication-([0-9]{16})/_publication[.]json$', 1)"
    # the newest publication (smallest key) whose time has come
    in_effect = (
        f"(select min({key}) from glob({markers})"
        f" where {_KEY_BASE} - try_cast({key} as bigint)"
        " <= epoch_us(current_timestamp))"
    )
    prefix = _sql_string(f"{base}/publication-")
    suffix = _sql_string(f"/{name}.parquet")
    files = _sql_string(f"{base}/publication-*/{name}.parquet")
    retyped = ", ".join(f'cast("{c}" as {t}) as "{c}"' for c, t in (casts or {}).items())
    replace = f" replace ({retyped})" if retyped else ""
    return (
        f"create view {name} as select * exclude (filename){replace}"
        f" from read_parquet({files}, filename = true, hive_partitioning = false)"
        f" where filename = {prefix}"
        f" || coalesce({in_effect}, error('no segmart publication in effect: run segmart run'))"
        f" || {suffix}"
    )


def _write_views(path: Path, root: Path, casts: dict[str, dict[str, str]], version: str) -> None:
    with duckdb.connect() as con:
        _attach(con, path, version)
        con.execute("use bi")
        for name, retyped in casts.items():
            con.execute(f"create schema if not exists {name.split('.')[0]}")
            con.execute(view_sql(root, name, retyped))
        con.execute("use memory")
        con.execute("detach bi")


def collect_garbage(root: Path, grace: timedelta) -> None:
    """Delete the publications superseded longer than `grace` ago."""
    cutoff = _now_us() - int(grace.total_seconds() * 1_000_000)
    for (_, folder), (successor, _) in itertools.pairwise(publications(root)):
        if successor <= cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def _remove_leftovers(target: Path, live: Path, root: Path) -> None:
    # A run killed mid-publish leaves its half-written copies behind; none was swapped in.
    for path in (target, live):
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
    for leftover in root.glob(".publication.*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


def publish(settings: Settings, grace: timedelta = GRACE) -> Path:
    """Publish the BI tables as a DuckDB file and as Parquet behind live views.

    Parameters
    ----------
    settings : Settings
        The working warehouse to read, `published_dir` to write and the storage version.
    grace : timedelta
        How long superseded Parquet publications stay for queries still reading them.

    Returns
    -------
    Path
        The published DuckDB file of plain tables (`settings.published_warehouse`).
    """
    target = settings.published_warehouse
    live = live_warehouse(settings)
    root = publications_dir(settings)
    version = storage_version(settings)
    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target, live, root)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    live_staging = live.with_name(f".{live.name}.{os.getpid()}.tmp")
    folder_staging = root / f".publication.{os.getpid()}.tmp"
    tables = bi_tables(settings)
    try:
        with connect(settings.warehouse) as con:
            _write_tables(con, staging, tables, version)
            casts = _write_parquet(con, folder_staging, tables)
        _take_effect(folder_staging, root)
        _write_views(live_staging, root, casts, version)
        os.replace(live_staging, live)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
        live_staging.unlink(missing_ok=True)
        shutil.rmtree(folder_staging, ignore_errors=True)
    collect_garbage(root, grace)
    return target
