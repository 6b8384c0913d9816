"""Plan the landing of a raw directory: which file fills each contract table, and how.

The result is the dbt var `landing` that `macros/land_raw_files.sql` reads. A table the plan
leaves out is landed as the contract lays it out (`<table>.csv` or `.parquet` in the raw
directory, or a folder `<table>/` of such files); a mapping, a transaction log or a file
DuckDB cannot read as it lies puts a table in the plan. A folder's files are read as they lie.
"""

from __future__ import annotations

from pathlib import Path

from ml.errors import SegmartError
from ml.ingest import mapping
from ml.ingest.contract import CONTRACT
from ml.ingest.files import RawFile, readable_copy

TRANSACTION_LOG = "transactions"


def contract_file(raw_dir: Path, table: str) -> Path | None:
    """`<table>.csv` or `<table>.parquet` in the raw directory, if there is one.

    The same rule as `_find_raw_files` in macros/land_raw_files.sql: a `dbt build` by hand runs
    no Python, so dbt finds the files itself; the CLI needs them before dbt runs, to plan the
    landing (a mapping, a transaction log, a re-encoded copy). Change both together.
    """
    found = [raw_dir / f"{table}{suffix}" for suffix in (".csv", ".parquet")]
    present = [path for path in found if path.is_file()]
    if len(present) > 1:
        raise SegmartError(
            f"raw table {table} is ambiguous: both .csv and .parquet in {raw_dir}; keep one"
        )
    return present[0] if present else None


def default_mapping(raw_dir: Path) -> Path | None:
    """The shipped transaction-log mapping when the directory holds a log and no orders."""
    has_orders = contract_file(raw_dir, "orders") or (raw_dir / "orders").is_dir()
    if not has_orders and contract_file(raw_dir, TRANSACTION_LOG):
        return mapping.resolve(TRANSACTION_LOG)
    return None


def plan_landing(raw_dir: Path, spool_dir: Path, mapping_file: str | Path | None = None) -> dict:
    """The dbt var `landing` for a raw directory, with a mapping or without.

    Raises
    ------
    SegmartError
        A mapping that does not fit its files, or an ambiguous raw table.
    """
    chosen = mapping_file or default_mapping(raw_dir)
    planned = {}
    if chosen is not None:
        tables = mapping.load(mapping.resolve(chosen), raw_dir)
        planned = mapping.compile_landing(tables, spool_dir)
    for table in CONTRACT:
        path = contract_file(raw_dir, table)
        if table in planned or path is None or path.suffix != ".csv":
            continue
        raw_file = RawFile(path=path)
        if readable_copy(raw_file, spool_dir) != path:
            planned[table] = raw_file.reader(spool_dir)
    return planned
