"""Bad inputs: each case either stops with one named error line and leaves BI untouched, or
succeeds with every bad row quarantined under its rule and every raw row accounted for.

The quarantine cases share one build of one dirty shop (``rawdirs.write_dirty_shop``): each bad
row is bad in exactly one way and carries a marker, so one build checks them all. The error
cases each break a tiny clean shop in one way and run `segmart run` in a copy of a workspace
whose last good run was published; the published file must come out byte-for-byte the same.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from tests.reliability.conftest import (
    RUN_OPTIONS,
    Workspace,
    assert_clean_success,
    assert_one_line_error,
    digests,
)
from tests.reliability.rawdirs import (
    AS_OF,
    BAD_ROWS,
    DUPLICATES,
    ORDER_HEADER,
    VALUE_NOTES,
    BadRow,
    ValueNote,
    write_clean_shop,
)

pytestmark = pytest.mark.integration

RAW_TABLES = ("customers", "orders", "order_items", "products", "web_events", "campaign_touches")


# -- quarantine: one build of the dirty shop ---------------------------------------------------


@pytest.fixture(scope="module")
def dirty(dirty_build: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(dirty_build.warehouse), read_only=True) as con:
        yield con


@pytest.mark.parametrize("bad", BAD_ROWS, ids=lambda bad: bad.case)
def test_bad_row_is_quarantined_under_its_rule(
    dirty: duckdb.DuckDBPyConnection, bad: BadRow
) -> None:
    found = dirty.execute(
        "select rule, n_raw_lines from core.quarantined_rows"
        " where source_table = ? and contains(raw_record, ?)",
        [bad.table, bad.marker],
    ).fetchall()
    assert found == [(bad.rule, bad.n_lines)]


@pytest.mark.parametrize("note", VALUE_NOTES, ids=lambda note: note.case)
def test_bad_optional_value_is_nulled_with_a_note_and_the_row_kept(
    dirty: duckdb.DuckDBPyConnection, note: ValueNote
) -> None:
    found = dirty.execute(
        "select column_name, rule from core.quarantined_values"
        " where source_table = ? and row_key = ? order by column_name",
        [note.table, note.row_key],
    ).fetchall()
    assert found == [(column, note.rule) for column in note.columns]
    assert not dirty.execute(
        "select * from core.quarantined_rows where contains(raw_record, ?)",
        [f"BAD_{note.case}"],
    ).fetchall()


def test_the_shared_quarantine_scan_stores_only_what_the_marts_report(
    dirty: duckdb.DuckDBPyConnection,
) -> None:
    # Both marts read one stored scan of the base views: it must hold no raw record of a kept
    # row (PII), only the rejected rows and the bad values the marts show.
    n_rejected, n_values, n_records_of_kept_rows = dirty.execute(
        "select count(*) filter (where column_name is null),"
        " count(*) filter (where column_name is not null),"
        " count(*) filter (where column_name is not null and raw_record is not null)"
        " from intermediate.int_raw_rows_screened"
    ).fetchall()[0]
    (n_quarantined_rows,) = dirty.execute(
        "select count(*) from core.quarantined_rows where rule not like 'malformed_csv_line: %'"
    ).fetchall()[0]
    (n_quarantined_values,) = dirty.execute(
        "select count(*) from core.quarantined_values"
    ).fetchall()[0]
    assert n_records_of_kept_rows == 0
    assert n_rejected == n_quarantined_rows > 0
    assert n_values == n_quarantined_values > 0


def _raw_rows_in_file(raw_dir: Path, table: str) -> int:
    """Rows in, counted from the file itself: Parquet metadata, or CSV physical data lines."""
    parquet = raw_dir / f"{table}.parquet"
    if parquet.exists():
        return pq.read_metadata(parquet).num_rows
    return len((raw_dir / f"{table}.csv").read_bytes().splitlines()) - 1


@pytest.mark.parametrize("table", RAW_TABLES)
def test_every_raw_row_is_accepted_deduplicated_or_quarantined(
    dirty: duckdb.DuckDBPyConnection, dirty_build: Workspace, table: str
) -> None:
    n_raw, n_accepted, n_duplicates, n_quarantined, is_reconciled = dirty.execute(
        "select n_raw_rows, n_accepted, n_duplicates, n_quarantined, is_reconciled"
        " from core.data_reconciliation where source_table = ?",
        [table],
    ).fetchall()[0]
    assert n_raw == _raw_rows_in_file(dirty_build.raw_dir, table)
    assert is_reconciled and n_raw == n_accepted + n_duplicates + n_quarantined
    assert n_quarantined == sum(bad.n_lines for bad in BAD_ROWS if bad.table == table)
    assert n_duplicates == DUPLICATES.get(table, 0)


def test_only_clean_rows_reach_the_marts(dirty: duckdb.DuckDBPyConnection) -> None:
    customers = [c for (c,) in dirty.execute("select customer_id from core.customers").fetchall()]
    orders = [o for (o,) in dirty.execute("select order_id from core.orders").fetchall()]
    # C9001 (unparsable sign-up, no order) is kept without a sign-up date: not in the marts.
    assert sorted(customers) == [f"C{k:04d}" for k in range(1, 21)]
    # O9001 (text as its total) is kept with a null total.
    assert len(orders) == 42 and [o for o in orders if o.startswith("O9")] == ["O9001"]


def test_extra_columns_are_recorded_and_dropped_and_an_all_null_column_is_fine(
    dirty: duckdb.DuckDBPyConnection,
) -> None:
    extra = dict(dirty.execute("select table_name, columns_extra from raw.files").fetchall())
    assert extra["customers"] == ["first_name", "phone"]
    columns = {
        c for (c,) in dirty.execute("select column_name from (describe core.customers)").fetchall()
    }
    assert not columns & {"first_name", "phone", "email"}
    assert dirty.execute("select count(income_band) from core.customers").fetchall() == [(0,)]
    # the reload of C0002 (later updated_at) wins (core.customers shows no city: see staging)
    assert dirty.execute(
        "select city from staging.stg_shop__customers where customer_id = 'C0002'"
    ).fetchall() == [("ReloadedCity",)]


def test_quarantined_dates_do_not_move_the_default_as_of(
    dirty: duckdb.DuckDBPyConnection,
) -> None:
    # the 2200 order and event are quarantined, so as_of is the day after the latest good order
    assert dirty.execute("select distinct as_of from ml.customer_features").fetchall() == [
        (AS_OF,)
    ]


# -- errors: one broken tiny shop per case, run over a last good publication ----------------


def _drop(name: str) -> Callable[[Path], None]:
    return lambda raw: (raw / name).unlink()


def _orders_without_ordered_at(raw: Path) -> None:
    lines = (raw / "orders.csv").read_text().splitlines()
    keep = [i for i, name in enumerate(ORDER_HEADER.split(",")) if name != "ordered_at"]
    (raw / "orders.csv").write_text(
        "\n".join(",".join(line.split(",")[i] for i in keep) for line in lines) + "\n"
    )


def _orders_parquet_without_customer_id(raw: Path) -> None:
    lines = (raw / "orders.csv").read_text().splitlines()
    (raw / "orders.csv").unlink()
    header = ORDER_HEADER.split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    table = pa.Table.from_pylist(rows).drop_columns(["customer_id"])
    pq.write_table(table, raw / "orders.parquet")


def _truncate(name: str) -> Callable[[Path], None]:
    return lambda raw: (raw / name).write_bytes(b"")


def _header_only_orders(raw: Path) -> None:
    (raw / "orders.csv").write_text(ORDER_HEADER + "\n")


def _customers_twice(raw: Path) -> None:
    pq.write_table(pa_csv.read_csv(raw / "customers.csv"), raw / "customers.parquet")


def _corrupt_parquet(raw: Path) -> None:
    (raw / "customers.csv").unlink()
    (raw / "customers.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")


ERROR_CASES = {
    "missing_required_file": (_drop("orders.csv"), ["required raw table orders not found"]),
    "missing_required_column": (
        _orders_without_ordered_at,
        ["orders.csv lacks required column(s) ordered_at"],
    ),
    "parquet_missing_key_column": (
        _orders_parquet_without_customer_id,
        ["orders.parquet lacks required column(s) customer_id"],
    ),
    "zero_byte_required_file": (
        _truncate("customers.csv"),
        ["customers.csv lacks required column(s) customer_id (it has: no header)"],
    ),
    "zero_byte_optional_file": (
        _truncate("products.csv"),
        ["products.csv lacks required column(s) product_id (it has: no header)"],
    ),
    "header_only_required_file": (
        _header_only_orders,
        ["required raw table orders has no readable rows"],
    ),
    # found while planning the landing, before dbt starts
    "csv_and_parquet_for_one_table": (_customers_twice, ["raw table customers is ambiguous"]),
    "corrupt_parquet": (_corrupt_parquet, ["customers.parquet"]),
}


@pytest.fixture(scope="module")
def over_last_good(good_run: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One copy of the good run for the error cases (per xdist worker), raw dir rewritten per case.

    The same paths case after case let dbt reuse its parse: half the CPU of a failing build.
    """
    root = tmp_path_factory.mktemp("errors")
    return good_run.copy(root / "workspace", raw_dir=root / "raw")


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_raw_directory_fails_with_one_named_line_and_bi_unchanged(
    over_last_good: Workspace, case: str
) -> None:
    breaks, fragments = ERROR_CASES[case]
    raw = over_last_good.raw_dir
    shutil.rmtree(raw, ignore_errors=True)
    breaks(write_clean_shop(raw, n_customers=5))
    published = over_last_good.published
    published_bytes, published_tables = published.read_bytes(), digests(published)

    result = over_last_good.cli("run", *RUN_OPTIONS)

    before_dbt = case == "csv_and_parquet_for_one_table"
    # The good run's champion scores, so the run's first build is the scoring one.
    assert_one_line_error(
        result, *([] if before_dbt else ["dbt build --selector scoring failed"]), *fragments
    )
    assert published.read_bytes() == published_bytes
    assert digests(published) == published_tables


def test_missing_raw_directory_fails_before_dbt(last_good: Workspace, tmp_path: Path) -> None:
    result = last_good.cli("run", "--raw-dir", str(tmp_path / "nowhere"))
    assert_one_line_error(result, "does not exist", "--raw-dir")


# -- ML gates -----------------------------------------------------------------------------------


def test_a_single_customer_builds_then_training_refuses_and_scoring_still_works(
    last_good: Workspace, tmp_path: Path
) -> None:
    # One customer, one order; products header-only, no order items. The build succeeds (every
    # table reconciles; preprocessing reuses the good model's statistics, as scoring new data
    # with an existing model should), training refuses, and the good model (several segments)
    # scores the one customer: fewer customers than segments is no error when scoring.
    raw = write_clean_shop(tmp_path / "raw", n_customers=1)
    (raw / "products.csv").write_text("product_id,category,brand,list_price\n")
    (raw / "order_items.parquet").unlink()
    with duckdb.connect(str(last_good.warehouse), read_only=True) as con:
        (model_as_of, n_segments), *_ = con.execute(
            "select as_of, n_segments from predictions.model_runs"
        ).fetchall()
    assert n_segments > 1
    models_before = sorted(last_good.models_dir.iterdir())

    build = last_good.cli("build", "--raw-dir", str(raw), "--stats-as-of", str(model_as_of))
    assert_clean_success(build)
    with duckdb.connect(str(last_good.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from core.customers").fetchall() == [(1,)]
        assert con.execute(
            "select bool_and(is_reconciled) from core.data_reconciliation"
        ).fetchall() == [(True,)]

    assert_one_line_error(last_good.cli("train", *RUN_OPTIONS), "cannot train:")
    assert sorted(last_good.models_dir.iterdir()) == models_before

    assert_clean_success(last_good.cli("score", "--model", "latest"))
    with duckdb.connect(str(last_good.warehouse), read_only=True) as con:
        assert con.execute(
            "select customer_id, count(segment_id) from predictions.customer_scores group by 1"
        ).fetchall() == [("C0001", 1)]


def _doctor(workspace: Workspace, *statements: str) -> None:
    with duckdb.connect(str(workspace.warehouse)) as con:
        for statement in statements:
            con.execute(statement)


def test_a_label_with_a_single_class_is_refused(last_good: Workspace) -> None:
    _doctor(last_good, "update ml.training_examples set purchased_in_horizon = false")
    models_before = sorted(p.name for p in last_good.models_dir.iterdir())

    result = last_good.cli("train")

    assert_one_line_error(result, "cannot train:", "a single class")
    assert sorted(p.name for p in last_good.models_dir.iterdir()) == models_before


def test_fewer_customers_than_segments_is_refused(last_good: Workspace) -> None:
    # Ten customers left for twelve segments; the per-class minimum (100) is the gate that
    # fires first, and the message says to load more customers.
    _doctor(
        last_good,
        "delete from ml.training_examples where customer_id not in"
        " (select distinct customer_id from ml.training_examples order by 1 limit 10)",
    )
    result = last_good.cli("train", "--segments", "12")
    assert_one_line_error(result, "cannot train:", "load more customers")
