"""Mappings: checked against the headers with one-line errors, compiled to SQL that works."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ml.ingest import mapping
from ml.ingest.landing import plan_landing
from ml.ingest.mapping import MappingError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _mapping(tmp_path: Path, columns: str, extra_file: str = "") -> Path:
    return _write(
        tmp_path / "mapping.yml",
        "files:\n  export:\n    path: export.csv\n    delimiter: ';'\n    decimal: ','\n"
        f"    timestamp_format: '%d/%m/%Y'\n{extra_file}"
        f"tables:\n  orders:\n    file: export\n    columns:\n{columns}",
    )


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    _write(raw / "export.csv", "Kunde;Datum;Betrag;Status\nK1;02/01/2024;1.234,50;storniert\n")
    return raw


def _landed(plan: dict, table: str) -> dict:
    """Run the compiled select over the file, as the landing macro does."""
    spec = plan[table]
    select = ", ".join(f"{sql} as {column}" for column, sql in spec["select"].items())
    columns = ", ".join(f"'{name}': 'VARCHAR'" for name in spec["columns"])
    reader = (
        f"read_csv('{spec['path']}', header=true, auto_detect=false, "
        f"delim='{spec['delimiter']}', columns={{{columns}}})"
    )
    cursor = duckdb.connect().execute(f"select {select} from {reader} as source")
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def test_a_mapped_export_lands_with_its_dates_decimals_and_spellings(
    raw_dir: Path, tmp_path: Path
) -> None:
    path = _mapping(
        tmp_path,
        "      customer_id: Kunde\n      ordered_at: Datum\n      order_total: Betrag\n"
        "      status: {column: Status, values: {storniert: cancelled}}\n"
        "      channel: {constant: store}\n",
    )
    plan = plan_landing(raw_dir, tmp_path / "spool", path)
    assert _landed(plan, "orders") == {
        "customer_id": "K1",
        "ordered_at": "2024-01-02 00:00:00",
        "order_total": "1234.50",
        "status": "cancelled",
        "channel": "store",
    }


def test_a_hashed_column_never_lands_in_clear(raw_dir: Path, tmp_path: Path) -> None:
    path = _mapping(tmp_path, "      customer_id: {hash: Kunde}\n      ordered_at: Datum\n")
    landed = _landed(plan_landing(raw_dir, tmp_path / "spool", path), "orders")
    assert landed["customer_id"] != "K1" and len(landed["customer_id"]) == 20


def test_a_mapping_naming_a_column_the_file_lacks_names_key_file_and_columns(
    raw_dir: Path, tmp_path: Path
) -> None:
    path = _mapping(tmp_path, "      customer_id: Customer\n      ordered_at: Datum\n")
    with pytest.raises(MappingError) as error:
        plan_landing(raw_dir, tmp_path / "spool", path)
    message = str(error.value)
    assert "tables.orders.columns.customer_id" in message
    assert "export.csv" in message and "Kunde, Datum, Betrag, Status" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ("      customer_id: Kunde\n", r"lacks the key column\(s\) ordered_at"),
        (
            "      customer_id: Kunde\n      ordered_at: Datum\n      colour: Status\n",
            "not a column of orders",
        ),
        ("      customer_id: {sum: Kunde}\n      ordered_at: Datum\n", "expected a column name"),
    ],
)
def test_bad_mappings_are_one_line_errors(
    raw_dir: Path, tmp_path: Path, columns: str, expected: str
) -> None:
    with pytest.raises(MappingError, match=expected):
        plan_landing(raw_dir, tmp_path / "spool", _mapping(tmp_path, columns))


def test_an_unknown_encoding_or_missing_file_is_named(raw_dir: Path, tmp_path: Path) -> None:
    bad_encoding = _write(
        tmp_path / "enc.yml",
        "files:\n  export:\n    path: export.csv\n    encoding: klingon\n"
        "tables:\n  orders:\n    file: export\n    columns: {customer_id: Kunde}\n",
    )
    with pytest.raises(MappingError, match=r"files\.export\.encoding: unknown encoding"):
        plan_landing(raw_dir, tmp_path / "spool", bad_encoding)
    missing = _write(
        tmp_path / "missing.yml",
        "files:\n  export:\n    path: nowhere.csv\ntables: {}\n",
    )
    with pytest.raises(MappingError, match=r"files\.export\.path: file .*nowhere\.csv not found"):
        plan_landing(raw_dir, tmp_path / "spool", missing)


def test_shipped_mappings_resolve_by_name_and_a_log_alone_uses_the_transactions_one(
    tmp_path: Path,
) -> None:
    assert mapping.resolve("shopify_orders").name == "shopify_orders.yml"
    with pytest.raises(MappingError, match="shipped mapping"):
        mapping.resolve("woocommerce")
    raw = tmp_path / "raw"
    raw.mkdir()
    _write(raw / "transactions.csv", "customer_id,date,amount\nC1,19970101,29.33\n")
    plan = plan_landing(raw, tmp_path / "spool")
    assert set(plan) == {"orders"}
    assert _landed(plan, "orders") == {
        "customer_id": "C1",
        "ordered_at": "19970101",
        "order_total": "29.33",
    }
