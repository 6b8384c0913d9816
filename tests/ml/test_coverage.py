"""What a run did without: one line and one sentence per gap, never a gap that is not there."""

from __future__ import annotations

import duckdb

from ml.run.coverage import Coverage, find_gaps, read_coverage

EVERY_TABLE = ("customers", "orders", "order_items", "products", "web_events", "campaign_touches")


def coverage(
    loaded: tuple[str, ...] = EVERY_TABLE,
    n_opted_in: int | None = 10,
    consent_column_loaded: bool | None = True,
    n_read: dict[str, int] | None = None,
) -> Coverage:
    accepted = {table: (100 if table in loaded else 0) for table in EVERY_TABLE}
    return Coverage(
        n_raw_rows=accepted | (n_read or {}),
        n_accepted=accepted,
        n_opted_in=n_opted_in,
        consent_column_loaded=consent_column_loaded,
    )


def test_a_complete_shop_with_consent_has_no_gap() -> None:
    assert find_gaps(coverage()) == []


def test_no_consent_column_is_one_warning_that_names_the_column_and_the_fix() -> None:
    [gap] = find_gaps(coverage(n_opted_in=0, consent_column_loaded=False))
    assert gap.is_warning and gap.sections == ("audiences",)
    assert gap.line == (
        "warning: no customer has marketing consent (no marketing_opt_in column): audiences are"
        " empty; map a consent column to select audiences"
    )
    assert "\n" not in gap.line and gap.sentence.endswith(".")


def test_a_consent_column_where_nobody_opted_in_says_so_not_that_it_is_missing() -> None:
    [gap] = find_gaps(coverage(n_opted_in=0, consent_column_loaded=True))
    assert "marketing_opt_in is false or empty for every customer" in gap.line
    assert "no marketing_opt_in column" not in gap.line


def test_only_customers_and_orders_gives_one_note_per_missing_part() -> None:
    gaps = find_gaps(coverage(loaded=("customers", "orders")))
    assert [(gap.key, gap.sections) for gap in gaps] == [
        ("campaign_touches", ("campaigns",)),
        ("recommendations", ("recommendations",)),
        ("web_events", ()),
    ]
    assert not any(gap.is_warning for gap in gaps)
    assert gaps[1].sentence.startswith("No order items or products were loaded:")


def test_products_alone_missing_names_products_only() -> None:
    [gap] = find_gaps(coverage(loaded=tuple(t for t in EVERY_TABLE if t != "products")))
    assert gap.line == "note: no products were loaded: product recommendations are empty"


def test_a_table_read_but_wholly_quarantined_is_not_called_missing() -> None:
    loaded = tuple(t for t in EVERY_TABLE if t != "campaign_touches")
    [gap] = find_gaps(coverage(loaded=loaded, n_read={"campaign_touches": 1_234}))
    assert gap.sentence == (
        "No campaign touches passed staging (1,234 rows read, all quarantined: see"
        " core.quarantined_rows): campaign results are empty."
    )


def test_what_the_warehouse_cannot_tell_is_never_a_gap() -> None:
    assert find_gaps(Coverage()) == []
    with duckdb.connect() as con:
        assert read_coverage(con) == Coverage()


def test_the_consent_column_is_read_from_the_landing_record() -> None:
    with duckdb.connect() as con:
        con.execute("create schema core; create schema raw")
        con.execute(
            "create table core.customers as"
            " select 'C1' as customer_id, false as is_marketing_opt_in"
        )
        con.execute(
            "create table raw.files as select 'customers' as table_name,"
            " ['marketing_opt_in'] as columns_missing"
        )
        found = read_coverage(con)
        assert (found.n_opted_in, found.consent_column_loaded) == (0, False)
        con.execute("update raw.files set columns_missing = []")
        assert read_coverage(con).consent_column_loaded is True
        con.execute("delete from raw.files")  # no customers file: customers came from orders
        assert read_coverage(con).consent_column_loaded is False


def test_orders_without_amounts_are_a_note_that_names_what_they_cost() -> None:
    complete = coverage()
    without_amounts = Coverage(
        n_raw_rows=complete.n_raw_rows,
        n_accepted=complete.n_accepted,
        n_opted_in=10,
        consent_column_loaded=True,
        n_orders_with_amount=0,
    )
    [gap] = find_gaps(without_amounts)
    assert gap.key == "order_amounts" and not gap.is_warning
    assert gap.line.startswith("note: the orders carry no amounts (no order_total)")
    assert find_gaps(Coverage(**{**without_amounts.__dict__, "n_orders_with_amount": 1})) == []
