"""The one place that talks to DuckDB: connect, read as Arrow, replace tables atomically."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ml.errors import SegmartError

_QUALIFIED_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
# DuckDB's memory limit for segmart's connections, as for dbt's (profiles.yml).
DEFAULT_MEMORY_LIMIT = "3GB"


class WarehouseError(SegmartError):
    """A warehouse problem the user can fix; the message says how."""


def _check_name(name: str) -> str:
    # Table names are spliced into SQL, so only plain schema.table identifiers pass.
    if not _QUALIFIED_NAME.match(name):
        raise ValueError(f"not a plain schema.table name: {name!r}")
    return name


@contextmanager
def connect(
    path: Path, read_only: bool = False, memory_cap: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, turning DuckDB's lock and missing-file errors into WarehouseError.

    DuckDB's memory limit is `SEGMART_MEMORY_LIMIT` (default 3GB), or `memory_cap` if that is
    smaller: a streaming job caps it so its memory does not grow with the tables it reads.
    """
    if read_only and not path.exists():
        raise WarehouseError(f"warehouse {path} does not exist: run `segmart build` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseError(
                f"warehouse {path} is locked by another process (a BI tool or another run?): "
                "close it, or point BI at the published copy instead"
            ) from error
        raise WarehouseError(f"cannot open warehouse {path}: {error}") from error
    # Bounded memory: DuckDB spills to disk above this rather than taking 80% of the RAM.
    con.execute(f"set memory_limit = '{_memory_limit(memory_cap)}'")
    try:
        yield con
    finally:
        con.close()


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT])(i?)B", flags=re.IGNORECASE)


def _bytes(size: str) -> float:
    number, unit, binary = _SIZE.fullmatch(size).groups()
    return float(number) * (1024 if binary else 1000) ** ("KMGT".index(unit.upper()) + 1)


def _memory_limit(cap: str | None = None) -> str:
    limit = os.environ.get("SEGMART_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)
    if not _SIZE.fullmatch(limit):
        raise WarehouseError(f"SEGMART_MEMORY_LIMIT={limit!r} is not a size such as 3GB")
    return cap if cap and _bytes(cap) < _bytes(limit) else limit


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether schema.table exists (as a table or a view)."""
    schema, table = _check_name(name).split(".")
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(found[0][0])


def require_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Raise WarehouseError naming the command that builds a missing table."""
    if not table_exists(con, name):
        raise WarehouseError(f"table {name} is missing from the warehouse: run `segmart build`")


def read_table(
    con: duckdb.DuckDBPyConnection, name: str, columns: list[str] | None = None
) -> pa.Table:
    """Read a whole table as Arrow."""
    require_table(con, name)
    select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    return con.sql(f"select {select} from {_check_name(name)}").to_arrow_table()


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table:
    """Run a read query with bound parameters and return Arrow."""
    return con.sql(sql, params=params or None).to_arrow_table()


def iter_batches(
    con: duckdb.DuckDBPyConnection,
    name: str,
    batch_size: int = 100_000,
    columns: list[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a table (or some of its columns) in Arrow record batches: memory stays flat."""
    require_table(con, name)
    select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    sql = f"select {select} from {_check_name(name)}"
    yield from con.sql(sql).to_arrow_reader(batch_size)


def stream_query(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None, batch_size: int = 100_000
) -> pa.RecordBatchReader:
    """Run a read query on its own cursor and stream the result.

    The cursor is a second connection to the same database, so the reader can feed
    `replace_tables` on `con` while `con` is inside its transaction.
    """
    return con.cursor().sql(sql, params=params or None).to_arrow_reader(batch_size)


def table_schema(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    """Column name -> DuckDB type, in table order."""
    schema, table = _check_name(name).split(".")
    rows = con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return {column: data_type for column, data_type in rows}


TableData = pa.Table | pa.RecordBatchReader
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class SliceReplacement:
    """The rows of `table` whose `key` columns hold the key's values, replaced by `select`.

    `select` is SQL (never user input) with `params`; it may read the tables replaced in the
    same `replace_tables` call, which it sees already replaced. The table is created from it
    on first use.
    """

    table: str
    key: Mapping[str, object]
    select: str
    params: Sequence[object] = field(default_factory=tuple)


def _replace_slice(con: duckdb.DuckDBPyConnection, replacement: SliceReplacement) -> None:
    name = replacement.table
    con.execute(f"create schema if not exists {name.split('.')[0]}")
    if not table_exists(con, name):
        con.execute(f"create table {name} as {replacement.select}", list(replacement.params))
        return
    where = " and ".join(f"{column} = ?" for column in replacement.key)
    con.execute(f"delete from {name} where {where}", list(replacement.key.values()))
    con.execute(f"insert into {name} by name {replacement.select}", list(replacement.params))


def replace_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, TableData],
    slices: Sequence[SliceReplacement] = (),
    appends: Mapping[str, pa.Table] | None = None,
) -> None:
    """Replace several tables in one transaction: readers see all old tables or all new ones.

    A failure (or a kill) before COMMIT leaves every previous table as it was; DuckDB's WAL
    discards the uncommitted transaction on the next open. `slices` are replaced in the same
    transaction, after the tables (an append-only history's rows of one run, say), and
    `appends` are appended in it last (a log row that must record exactly this change).
    """
    appends = appends or {}
    for name in [*tables, *(replacement.table for replacement in slices), *appends]:
        _check_name(name)
    for replacement in slices:
        if not all(_IDENTIFIER.match(column) for column in replacement.key):
            raise ValueError(f"not plain column names: {list(replacement.key)}")
    with _transaction(con):
        for name, data in tables.items():
            schema = name.split(".")[0]
            con.execute(f"create schema if not exists {schema}")
            con.register("_segmart_incoming", data)
            con.execute(f"create or replace table {name} as select * from _segmart_incoming")
            con.unregister("_segmart_incoming")
        for replacement in slices:
            _replace_slice(con, replacement)
        for name, data in appends.items():
            _append(con, name, data)


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _add_missing_columns(con: duckdb.DuckDBPyConnection, name: str, incoming: str) -> None:
    existing = set(table_schema(con, name))
    for column, dtype, *_ in con.execute(f"describe select * from {incoming}").fetchall():
        if column not in existing:
            con.execute(f'alter table {name} add column "{column}" {dtype}')


def append_rows(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
    """Append rows to schema.table in one transaction, creating the table on first use.

    Columns are matched by name, never by position. A column the table lacks (a run of an
    older segmart) is added first, null in the older rows.
    """
    _check_name(name)
    with _transaction(con):
        _append(con, name, data)


def _append(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
    con.execute(f"create schema if not exists {name.split('.')[0]}")
    con.register("_segmart_incoming", data)
    if table_exists(con, name):
        _add_missing_columns(con, name, "_segmart_incoming")
        con.execute(f"insert into {name} by name select * from _segmart_incoming")
    else:
        con.execute(f"create table {name} as select * from _segmart_incoming")
    con.unregister("_segmart_incoming")
