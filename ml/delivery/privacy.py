"""Right to be forgotten: remove a customer from every derived table, score, audience and export.

The id goes on a suppression list (`privacy.forgotten_customers`) that the landing hook applies
to every raw table, so a rebuild from raw files that still hold the customer does not bring them
back. The raw files themselves belong to their owner, who must delete the customer there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ml.config import Settings
from ml.errors import SegmartError
from ml.warehouse import connect

_CUSTOMER_ID = re.compile(r"^[\w.@+-]{1,200}$")

SUPPRESSION_DDL = (
    "create schema if not exists privacy;"
    " create table if not exists privacy.forgotten_customers"
    " (customer_id varchar primary key, forgotten_at timestamp)"
)


@dataclass(frozen=True)
class ForgetReport:
    """How many rows were removed where."""

    customer_id: str
    rows_deleted: dict[str, int]
    files_rewritten: list[Path]

    def summary(self) -> str:
        tables = ", ".join(f"{name} ({n})" for name, n in self.rows_deleted.items() if n)
        return (
            f"forgot {self.customer_id}: {sum(self.rows_deleted.values())} rows removed"
            f" from {tables or 'no table'}; {len(self.files_rewritten)} export file(s) rewritten"
        )


def _tables_with_customer_id(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select distinct columns.table_schema || '.' || columns.table_name"
        " from information_schema.columns"
        " inner join information_schema.tables using (table_schema, table_name)"
        " where columns.column_name = 'customer_id' and tables.table_type = 'BASE TABLE'"
        " and columns.table_schema <> 'privacy' order by 1"
    ).fetchall()
    return [name for (name,) in rows]


def _text_columns_holding_records(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    # Quarantined raw records and rejected CSV lines hold a customer's id inside text.
    candidates = [("core.quarantined_rows", "raw_record"), ("raw.csv_rejects", "csv_line")]
    return [(table, column) for table, column in candidates if _present(con, table)]


def _present(con: duckdb.DuckDBPyConnection, *tables: str) -> bool:
    found = {
        f"{schema}.{table}"
        for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    return set(tables) <= found


def _forget_quarantined_values(con: duckdb.DuckDBPyConnection, customer_id: str) -> int:
    """Delete the quarantined values of the customer's rows. They carry the row's first key
    (row_key), not its customer: the customer's own row, and their orders, order lines and
    events, as screening or staging knows them. Run before those tables lose the customer."""
    if not _present(con, "core.quarantined_values", "intermediate.int_raw_rows_screened"):
        return 0
    orders_staged = (
        " union all select 'order_items', order_id from staging.stg_shop__orders"
        " where customer_id = $id"
        if _present(con, "staging.stg_shop__orders")
        else ""
    )
    found = con.execute(
        "delete from core.quarantined_values as bad using ("
        " select 'customers' as source_table, $id as row_key"
        " union all select source_table, row_key from intermediate.int_raw_rows_screened"
        " where customer_id = $id"
        " union all select 'order_items', row_key from intermediate.int_raw_rows_screened"
        f" where source_table = 'orders' and customer_id = $id{orders_staged}"
        ") as theirs where bad.source_table = theirs.source_table"
        " and bad.row_key = theirs.row_key returning 1",
        {"id": customer_id},
    ).fetchall()
    return len(found)


def forget_in_warehouse(warehouse: Path, customer_id: str) -> dict[str, int]:
    """Suppress and delete the customer in one transaction; return rows deleted per table."""
    deleted: dict[str, int] = {}
    # The id as a whole CSV field or JSON string, never as a prefix of another id.
    pattern = f'(^|[,"]){re.escape(customer_id)}($|[,"])'
    with connect(warehouse) as con:
        con.execute("begin transaction")
        try:
            con.execute(SUPPRESSION_DDL)
            con.execute(
                "insert or ignore into privacy.forgotten_customers"
                " values (?, current_timestamp::timestamp)",
                [customer_id],
            )
            deleted["core.quarantined_values"] = _forget_quarantined_values(con, customer_id)
            for table in _tables_with_customer_id(con):
                found = con.execute(
                    f"delete from {table} where customer_id = ? returning 1", [customer_id]
                ).fetchall()
                deleted[table] = len(found)
            for table, column in _text_columns_holding_records(con):
                found = con.execute(
                    f"delete from {table} where regexp_matches({column}, ?) returning 1",
                    [pattern],
                ).fetchall()
                deleted[table] = deleted.get(table, 0) + len(found)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return deleted


def _rewrite_without(path: Path, customer_id: str) -> bool:
    exported = pq.read_table(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)
    if "customer_id" not in exported.column_names:
        return False
    # A connection of its own: the module-wide one may hold another caller's unfinished result.
    with duckdb.connect() as con:
        keep = con.sql(
            "select * from exported where customer_id is distinct from ?", params=[customer_id]
        ).to_arrow_table()
    if keep.num_rows == exported.num_rows:
        return False
    staging = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        pq.write_table(keep, staging)
    else:
        pa_csv.write_csv(keep, staging)
    staging.replace(path)
    return True


def forget_customer(settings: Settings, customer_id: str) -> ForgetReport:
    """Forget a customer in the warehouse, the published BI copy and the audience exports."""
    if not _CUSTOMER_ID.match(customer_id):
        raise SegmartError(
            f"not a customer id: {customer_id!r} (letters, digits and . _ @ + - only)"
        )
    if not settings.warehouse.exists():
        raise SegmartError(f"warehouse {settings.warehouse} does not exist: nothing to forget")
    deleted = forget_in_warehouse(settings.warehouse, customer_id)
    if settings.published_warehouse.exists():
        from datetime import timedelta

        from ml.delivery.publish import publish

        publish(settings, grace=timedelta(0))  # no earlier Parquet publication may keep them
    rewritten = [
        path
        for path in sorted(settings.exports_dir.rglob("*"))
        if path.suffix in (".csv", ".parquet") and _rewrite_without(path, customer_id)
    ]
    return ForgetReport(customer_id, deleted, rewritten)
