"""Privacy: BI never sees contact details, and `segmart forget` removes a customer everywhere.

The good run's raw customers carry an email (contract column), a first name and a phone number
(extra columns the contract does not know, see `add_contact_columns`). No value in the published
BI file or the audience exports may hold any of them. Forgetting a customer removes them from
every derived table, score, audience, export and the published file, and rebuilding from the
same raw files (which still hold them) does not bring them back.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.reliability.conftest import Workspace, assert_clean_success, base_tables

pytestmark = pytest.mark.integration

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# International format (a bare run of digits is an id or a hash more often than a phone), and
# the raw phones of the good run's customers with or without their spaces.
PHONE = r"\+\d{1,3}[ .-]?\(?\d{1,4}\)?([ .-]?\d{2,5}){1,4}"
RAW_PHONE = r"7700 ?9\d{5}"


def _text_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        column
        for (column,) in con.execute(
            "select column_name from information_schema.columns where table_schema = ?"
            " and table_name = ? and data_type = 'VARCHAR'",
            [schema, name],
        ).fetchall()
    ]


def _matches(con: duckdb.DuckDBPyConnection, pattern: str, tables: list[str]) -> dict[str, int]:
    """Rows per table.column whose text value matches `pattern` (a regex) anywhere."""
    found = {}
    for table in tables:
        for column in _text_columns(con, table):
            (n,) = con.execute(
                f'select count(*) from {table} where regexp_matches("{column}", ?)', [pattern]
            ).fetchall()[0]
            if n:
                found[f"{table}.{column}"] = n
    return found


def _raw_contacts(raw_dir: Path) -> tuple[list[str], list[str]]:
    customers = pq.read_table(raw_dir / "customers.parquet", columns=["first_name", "phone"])
    return (
        sorted(set(customers.column("first_name").to_pylist())),
        customers.column("phone").to_pylist(),
    )


def _export_texts(exports_dir: Path) -> dict[Path, str]:
    texts = {}
    for path in sorted(exports_dir.rglob("*")):
        if path.suffix == ".parquet":
            texts[path] = pq.read_table(path).to_pandas().to_csv(index=False)
        elif path.is_file():
            texts[path] = path.read_text()
    return texts


def test_no_bi_table_or_export_holds_an_email_a_name_or_a_phone(good_run: Workspace) -> None:
    names, phones = _raw_contacts(good_run.raw_dir)
    assert phones and all(re.fullmatch(PHONE, phone) for phone in phones)
    name_pattern = r"\b(" + "|".join(names) + r")\b"
    with duckdb.connect(str(good_run.published), read_only=True) as con:
        tables = base_tables(con)
        assert tables, "nothing was published"
        columns = {
            column
            for table in tables
            for column in _text_columns(con, table)
            + [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema || '.' || table_name = ?",
                    [table],
                ).fetchall()
            ]
        }
        assert not columns & {"email", "first_name", "phone", "name", "raw_record"}
        assert _matches(con, EMAIL, tables) == {}
        assert _matches(con, PHONE, tables) == {}
        assert _matches(con, RAW_PHONE, tables) == {}
        assert _matches(con, name_pattern, tables) == {}
    exports = _export_texts(good_run.exports_dir)
    assert exports, "nothing was exported"
    for path, text in exports.items():
        assert not re.search(EMAIL, text), path
        assert not re.search(PHONE, text), path
        assert not re.search(RAW_PHONE, text), path
        assert not re.search(name_pattern, text), path


def _holding(path: Path, customer: str, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Every table.column (views too) of a DuckDB file whose text holds the id as a word."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [t for t in base_tables(con, views=True) if t.split(".")[0] not in skip]
        return _matches(con, rf"(^|[^A-Za-z0-9]){re.escape(customer)}($|[^A-Za-z0-9])", tables)


def test_forget_removes_a_customer_everywhere_and_a_rebuild_does_not_bring_them_back(
    last_good: Workspace,
) -> None:
    # someone scored, in an exported audience, with orders, events and a quarantined row or not
    with duckdb.connect(str(last_good.published), read_only=True) as con:
        (customer,) = con.execute(
            "select min(customer_id) from marketing.campaign_audiences"
        ).fetchall()[0]
    assert customer
    assert _holding(last_good.warehouse, customer)
    assert _holding(last_good.published, customer)
    assert any(customer in text for text in _export_texts(last_good.exports_dir).values())

    result = last_good.cli("forget", customer)
    assert_clean_success(result)

    # the suppression list (schema privacy) is the one place the id stays
    assert _holding(last_good.warehouse, customer, skip=("privacy",)) == {}
    assert _holding(last_good.published, customer) == {}
    assert not [p for p, t in _export_texts(last_good.exports_dir).items() if customer in t]

    assert_clean_success(last_good.cli("build"))
    assert _holding(last_good.warehouse, customer, skip=("privacy",)) == {}
