"""Incremental runs: history, then the last week, gives the warehouse one full build gives.

A generated shop's orders, order lines, web events and customers are split into folders of
drops (`orders/1-orders-history.parquet`, `orders/2-orders-week.parquet`): one customer who
ordered in the history arrives only with the week (their rows orphans until then), an order
and an event of a customer who never signs up are stamped half a minute after the history build
starts (in the future until the week's build, orphans after), and a customer's city holds an
undecodable byte (a quarantined value). The history is built, the week added and built
incrementally, the same increment run again, then late rows arrive: a new drop with a
re-delivered old order and an order placed weeks ago, and the week's orders file rewritten with
one more order inside the look-back; the week's order lines are withdrawn. The week also goes
on two sessions that began before its days (a session counts on its first day): one with an id,
one of a customer's events without one.
Every table compared (staging, features, quarantine, reconciliation) equals a full build of
the final files.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ml.config import Settings
from ml.run.build import dbt_vars, run_dbt
from scripts.generate import generate
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("incremental_build")]

N_CUSTOMERS = 600
SEED = 11
SPLIT_TABLES = ("orders", "order_items", "web_events", "customers")
COMPARED_TABLES = (
    "staging.stg_shop__orders",
    "staging.stg_shop__order_items",
    "staging.stg_shop__web_events",
    "intermediate.int_orders_aggregated_to_customer_days",
    "intermediate.int_order_items_aggregated_to_customer_day_categories",
    "intermediate.int_order_items_aggregated_to_customer_day_baskets",
    "intermediate.int_web_events_aggregated_to_customer_days",
    "core.orders",
    "ml.customer_features",
    "ml.training_examples",
    "core.quarantined_rows",
    "core.quarantined_values",
    "core.data_reconciliation",
)
# Everything the compared tables need, and the data tests on it (the reconciliation's among them).
SELECTED = (
    "+customer_features +training_examples +data_reconciliation +quarantined_values +orders"
    " +int_order_items_aggregated_to_customer_day_baskets"
)
LOOKBACK_DAYS = 3
CATEGORIES = "int_order_items_aggregated_to_customer_day_categories"
BASKETS = "int_order_items_aggregated_to_customer_day_baskets"
# The aggregates that read the catalogue, and re-aggregate the buyers of recategorised products.
OF_THE_CATALOGUE = (CATEGORIES, BASKETS)
AGGREGATES = (
    "int_orders_aggregated_to_customer_days",
    *OF_THE_CATALOGUE,
    "int_web_events_aggregated_to_customer_days",
)
# The near-future rows are stamped this long after the history build starts, the project parsed
# already: after it lands its files (the on-run-start hooks), before the week's build does.
NEAR_FUTURE = timedelta(seconds=30)
NEVER_SIGNED_UP = "never-signed-up"
ORDER_KEY_TEST = "unique_stg_shop__orders_order_id"


@dataclass(frozen=True)
class Drops:
    """The shop's raw files: the unsplit tables and, per split table, the history and the week."""

    whole_dir: Path
    history: dict[str, Path]
    week: dict[str, Path]


def _split_by_week(source: Path, table: str, target: Path, cutoff: str) -> tuple[Path, Path]:
    """Rows stamped in the last week (order lines: of an order placed then; customers: one who
    ordered before it, the largest id), and the rest."""
    orders = f"read_parquet('{source / 'orders.parquet'}')"
    in_week = {
        "orders": f"try_cast(ordered_at as timestamp) >= timestamp '{cutoff}'",
        "web_events": f"try_cast(event_at as timestamp) >= timestamp '{cutoff}'",
        "order_items": (
            f"order_id in (select order_id from {orders}"
            f" where try_cast(ordered_at as timestamp) >= timestamp '{cutoff}')"
        ),
        "customers": (
            f"customer_id = (select max(customer_id) from {orders}"
            f" where try_cast(ordered_at as timestamp) < timestamp '{cutoff}' and customer_id in"
            f" (select customer_id from read_parquet('{source / 'customers.parquet'}')))"
        ),
    }[table]
    history, week = target / f"{table}-history.parquet", target / f"{table}-week.parquet"
    rows = f"read_parquet('{source / table}.parquet')"
    duckdb.execute(f"copy (select * from {rows} where coalesce({in_week}, false)) to '{week}'")
    duckdb.execute(
        f"copy (select * from {rows} where not coalesce({in_week}, false)) to '{history}'"
    )
    return history, week


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> Drops:
    root = tmp_path_factory.mktemp("incremental_drops")
    generate(N_CUSTOMERS, SEED, root / "generated", "parquet")
    source = root / "generated" / "raw"
    ((latest,),) = duckdb.execute(
        "select max(try_cast(ordered_at as timestamp)) from read_parquet(?)"
        " where try_cast(ordered_at as timestamp) < current_date",
        [str(source / "orders.parquet")],
    ).fetchall()
    cutoff = (latest - timedelta(days=7)).isoformat(sep=" ")
    history, week = {}, {}
    for table in SPLIT_TABLES:
        history[table], week[table] = _split_by_week(source, table, root, cutoff)
    return Drops(source, history, week)


def _raw_dir(root: Path, drops: Drops, files: dict[str, list[Path]]) -> Path:
    """A raw directory: the unsplit tables as files, the split ones as folders of drops."""
    raw = root / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    for path in drops.whole_dir.glob("*.parquet"):
        if path.stem not in SPLIT_TABLES:
            shutil.copy2(path, raw / path.name)
    for table, paths in files.items():
        (raw / table).mkdir()
        for number, path in enumerate(paths, start=1):
            shutil.copy2(path, raw / table / f"{number}-{path.name}")
    return raw


def _near_future_rows(drops: Drops, root: Path, stamped_at: datetime) -> dict[str, Path]:
    """An order and a web event stamped `stamped_at`, of a customer who never signs up, and
    another of each of a customer of the history: rejected in the history build, staged in
    the week's (from a file read before, so only if the increment looks for them)."""
    files = {}
    customers = f"read_parquet('{drops.history['customers']}')"
    for table, key, stamp in (
        ("orders", "order_id", "ordered_at"),
        ("web_events", "event_id", "event_at"),
    ):
        files[table] = root / f"{table}-near-future.parquet"
        rows = f"read_parquet('{drops.history[table]}')"
        stamped = f"timestamp '{stamped_at.isoformat(sep=' ')}' as {stamp}"
        duckdb.execute(
            f"copy (select * from (select * replace ('near-future-' || {key} as {key},"
            f" '{NEVER_SIGNED_UP}' as customer_id, {stamped}) from {rows} limit 1)"
            f" union all select * from (select * replace ('near-future-known-' || {key}"
            f" as {key}, {stamped}) from {rows}"
            f" where customer_id in (select customer_id from {customers}) limit 1))"
            f" to '{files[table]}'"
        )
    return files


def _customer_with_undecodable_city(drops: Drops, root: Path) -> Path:
    """A customer whose city holds a byte the encoding could not decode: a quarantined value."""
    path = root / "customers-undecodable.parquet"
    duckdb.execute(
        "copy (select * replace ('undecodable-city' as customer_id, 'Lyon' || chr(65533) as city)"
        f" from read_parquet('{drops.history['customers']}') limit 1) to '{path}'"
    )
    return path


@dataclass(frozen=True)
class SessionsIntoTheWeek:
    """Web events of the week that go on a session begun the day before."""

    history: Path  # the second customer's event, without a session id (history and week)
    week: Path  # a day later: the first customer's event in the same session, the second's again
    customers: tuple[str, str]  # (in a session with an id, without one)
    days: tuple[date, date]  # the day each week event falls on


def _sessions_into_the_week(drops: Drops, root: Path) -> SessionsIntoTheWeek:
    """Two customers' first early events of the history, and a day later one more event of
    each in the same session (the second customer's without a session id, which counts as one
    session): the first day of each customer's that the week re-aggregates, after the session
    began."""
    events = f"read_parquet('{drops.history['web_events']}')"
    customers = f"read_parquet('{drops.history['customers']}')"
    # Early enough that the days after stay before the week's, whose events come later.
    early = f"event_at < (select max(event_at) - interval 20 day from {events})"
    known = f"customer_id in (select customer_id from {customers}) and session_id is not null"
    history = root / "web_events-sessionless.parquet"
    week = root / "web_events-into-week.parquet"
    # Two customers' first early events.
    picked = (
        f"(select * exclude (n) from (select *, row_number() over (order by event_id) as n"
        f" from (select * from {events} where {known} and {early} qualify row_number() over"
        f" (partition by customer_id order by event_id) = 1)) where n = {{}})"
    )
    sessionless = "cast(null as varchar) as session_id"
    next_day = "event_at + interval 1 day as event_at"
    duckdb.execute(
        f"copy (select * replace ('sessionless-' || event_id as event_id, {sessionless})"
        f" from {picked.format(2)}) to '{history}'"
    )
    duckdb.execute(
        f"copy (select * replace ('into-week-' || event_id as event_id, {next_day})"
        f" from {picked.format(1)} union all select * replace ('sessionless-next-' || event_id"
        f" as event_id, {sessionless}, {next_day}) from {picked.format(2)}) to '{week}'"
    )
    rows = duckdb.execute(
        f"select customer_id, cast(event_at as date) from read_parquet('{week}') order by event_id"
    ).fetchall()
    # into-week-... sorts before sessionless-next-...
    return SessionsIntoTheWeek(history, week, (rows[0][0], rows[1][0]), (rows[0][1], rows[1][1]))


def _add_drops(raw: Path, files: dict[str, Path]) -> Path:
    """Files named to sort before the numbered drops, whose numbers stay as they are."""
    for table, path in files.items():
        shutil.copy2(path, raw / table / f"0-{path.name}")
    return raw


def _rules_of(warehouse: Path, customer_id: str) -> set[tuple[str, str]]:
    """The rules a customer's quarantined rows broke, per raw table."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return set(
            con.execute(
                "select distinct source_table, rule from intermediate.int_raw_rows_screened"
                " where customer_id = ?",
                [customer_id],
            ).fetchall()
        )


def _settings(raw: Path, root: Path) -> Settings:
    # as_of from the data: the features then see the last week, so it must arrive.
    return dataclasses.replace(make_settings(raw, root / "segmart.duckdb", root), as_of=None)


def _build(settings: Settings, full_refresh: bool = False) -> None:
    run_dbt(
        settings,
        "build --exclude-resource-type unit_test --indirect-selection cautious",
        dbt_vars(settings, extra={"incremental_lookback_days": LOOKBACK_DAYS}),
        select=SELECTED,
        full_refresh=full_refresh,
    )


def _differences(
    left: Path, right: Path, tables: tuple[str, ...] = COMPARED_TABLES
) -> dict[str, int]:
    """Rows of each table found in one warehouse and not the other (doubles rounded)."""
    con = duckdb.connect()
    con.execute(f"attach '{left}' as left_side (read_only)")
    con.execute(f"attach '{right}' as right_side (read_only)")
    found = {}
    for table in tables:
        schema, name = table.split(".")
        columns = con.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_catalog = 'left_side' and table_schema = ? and table_name = ?"
            " order by ordinal_position",
            [schema, name],
        ).fetchall()
        # Sums of doubles depend on the order rows are read in: compare to 9 decimals.
        selected = ", ".join(
            f"round({column}, 9)" if kind in ("DOUBLE", "FLOAT") else column
            for column, kind in columns
        )
        (n_rows,) = con.execute(f"select count(*) from left_side.{table}").fetchone()
        assert n_rows > 0, f"{table} is empty: nothing compared"
        (n_different,) = con.execute(
            f"select count(*) from ((select {selected} from left_side.{table}"
            f" except all select {selected} from right_side.{table})"
            f" union all (select {selected} from right_side.{table}"
            f" except all select {selected} from left_side.{table}))"
        ).fetchone()
        found[table] = n_different
    con.close()
    return found


@pytest.fixture(scope="module")
def private_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        # Concurrent test workers must not share dbt's artifacts.
        patch.setenv("DBT_TARGET_PATH", str(tmp_path_factory.mktemp("incremental_target")))
        # Two nodes at once, as a small shop builds (ml.config.dbt_threads): the hooks of
        # aggregates built side by side must not conflict.
        patch.setenv("SEGMART_DBT_THREADS", "2")
        yield


def _channel_of(warehouse: Path, order_ids: list[str]) -> dict[str, str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(
            con.execute(
                "select order_id, channel from staging.stg_shop__orders"
                " where order_id in (select unnest(?))",
                [order_ids],
            ).fetchall()
        )


def _orders_staged_again(settings: Settings, untouched: str, full_refresh: bool) -> bool:
    """Whether an order whose rows no run changed is staged again: marked, then not marked.

    On a copy of the warehouse: the mark is a channel no rebuild writes, and only the orders
    model runs, so nothing downstream reads it.
    """
    probe = dataclasses.replace(settings, warehouse=settings.warehouse.with_name("probe.duckdb"))
    shutil.copy(settings.warehouse, probe.warehouse)
    with duckdb.connect(str(probe.warehouse)) as con:
        con.execute(
            "update staging.stg_shop__orders set channel = 'marked' where order_id = ?",
            [untouched],
        )
    run_dbt(
        probe,
        "run",
        dbt_vars(probe, extra={"incremental_lookback_days": LOOKBACK_DAYS}),
        select="stg_shop__orders",
        full_refresh=full_refresh,
    )
    return _channel_of(probe.warehouse, [untouched]) != {untouched: "marked"}


def _late_drops(drops: Drops, root: Path) -> tuple[Path, Path]:
    """A new drop of late orders and the week's orders file with one more order appended.

    The new drop re-delivers a history order (a duplicate across files) and brings an order
    placed 30 days before the week; the appended order is stamped a day before the week's
    latest, inside the look-back.
    """
    history = f"read_parquet('{drops.history['orders']}')"
    week = f"read_parquet('{drops.week['orders']}')"
    late_drop, rewritten_week = root / "orders-late.parquet", root / "orders-week.parquet"
    latest_week_order = (
        f"(select * from {week} where ordered_at < current_date order by ordered_at desc limit 1)"
    )
    duckdb.execute(
        f"copy (select * from (select * from {history} order by order_id limit 1)"
        f" union all select * replace ('late-' || order_id as order_id,"
        f" ordered_at - interval 30 day as ordered_at) from {latest_week_order})"
        f" to '{late_drop}'"
    )
    duckdb.execute(
        f"copy (select * from {week} union all select * replace ('appended-' || order_id"
        f" as order_id, ordered_at - interval 1 day as ordered_at) from {latest_week_order})"
        f" to '{rewritten_week}'"
    )
    return late_drop, rewritten_week


def _recategorize_one_product(products: Path, product_id: str) -> None:
    """Move a product to another category of the catalogue, in place."""
    moved = products.with_name("products-moved.parquet")
    own = f"(select category from '{products}' where product_id = '{product_id}')"
    duckdb.execute(
        f"copy (select * replace (case when product_id = '{product_id}' then (select"
        f" max(category) from '{products}' where category <> {own}) else category end"
        f" as category) from '{products}') to '{moved}'"
    )
    moved.replace(products)


def _customers_reaggregated(
    warehouse: Path, aggregates: tuple[str, ...] = AGGREGATES
) -> dict[str, tuple[int, int]]:
    """Per customer-day aggregate: the customers its last run re-aggregated, and all it holds."""
    found = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for aggregate in aggregates:
            (n_redone,) = con.execute(
                f"select count(*) from raw_history.{aggregate}__customers_to_reaggregate"
            ).fetchone()
            (n_held,) = con.execute(
                f"select count(distinct customer_id) from intermediate.{aggregate}"
            ).fetchone()
            found[aggregate] = (n_redone, n_held)
    return found


def _compiled_test(name: str) -> str:
    """The SQL the last build ran for data test `name` (its file in the private target)."""
    (path,) = Path(os.environ["DBT_TARGET_PATH"]).glob(f"compiled/segmart/**/{name}.sql")
    return path.read_text()


def _repeats_found(warehouse: Path, test_sql: str, order_id: str) -> bool:
    """Whether `test_sql`, the key test of stg_shop__orders, fails on a copy of the warehouse
    in which order `order_id` is staged twice."""
    probe = warehouse.with_name("probe.duckdb")
    shutil.copy(warehouse, probe)
    with duckdb.connect() as con:
        con.execute(f"attach '{probe}' as {warehouse.stem}; use {warehouse.stem}")
        con.execute(
            "insert into staging.stg_shop__orders"
            " select * from staging.stg_shop__orders where order_id = ?",
            [order_id],
        )
        return bool(con.execute(test_sql).fetchall())


def _moved_order(drops: Drops, root: Path) -> tuple[Path, str, str]:
    """A re-delivered history order naming another customer, who wins deduplication (same
    time, smaller customer_id): the order moves, and its first customer loses it."""
    history = f"read_parquet('{drops.history['orders']}')"
    customers = f"read_parquet('{drops.whole_dir / 'customers.parquet'}')"
    moved = root / "orders-moved.parquet"
    duckdb.execute(
        f"copy (select orders.* replace (customers.customer_id as customer_id)"
        f" from {history} as orders inner join {customers} as customers"
        " on customers.customer_id < orders.customer_id"
        " and try_cast(customers.created_at as timestamp)"
        " < try_cast(orders.ordered_at as timestamp)"
        f" order by orders.order_id, customers.customer_id limit 1) to '{moved}'"
    )
    ((order_id, customer_id),) = duckdb.execute(
        f"select order_id, customer_id from '{moved}'"
    ).fetchall()
    return moved, order_id, customer_id


def test_history_then_the_week_equals_a_full_build_and_reruns_change_nothing(
    drops: Drops, tmp_path: Path, private_target: None
) -> None:
    sessions = _sessions_into_the_week(drops, tmp_path)
    history_files = {t: [drops.history[t]] for t in SPLIT_TABLES}
    history_files["web_events"].append(sessions.history)
    history_dir = _raw_dir(tmp_path / "incremental", drops, history_files)
    incremental = _settings(history_dir, tmp_path / "incremental")
    # The first build's parse (a minute on a busy machine) must not delay its landing.
    run_dbt(
        incremental,
        "compile",
        dbt_vars(incremental, extra={"incremental_lookback_days": LOOKBACK_DAYS}),
        select="base_shop__products",
    )
    near_future = datetime.now() + NEAR_FUTURE
    extra_drops = _near_future_rows(drops, tmp_path, near_future) | {
        "customers": _customer_with_undecodable_city(drops, tmp_path)
    }
    _add_drops(history_dir, extra_drops)
    ((arriving,),) = duckdb.execute(
        f"select any_value(customer_id) from '{drops.week['customers']}'"
    ).fetchall()
    _build(incremental)
    history_key_test = _compiled_test(ORDER_KEY_TEST)
    history_rules = _rules_of(incremental.warehouse, arriving) | _rules_of(
        incremental.warehouse, NEVER_SIGNED_UP
    )
    # The week, with a history order re-delivered for another customer.
    moved, moved_order, new_customer = _moved_order(drops, tmp_path)
    week_files = {t: [*history_files[t], drops.week[t]] for t in SPLIT_TABLES}
    week_files["orders"].append(moved)
    week_files["web_events"].append(sessions.week)
    raw = _add_drops(_raw_dir(tmp_path / "incremental", drops, week_files), extra_drops)
    with duckdb.connect(str(incremental.warehouse), read_only=True) as con:
        recategorized, buyers = con.execute(
            "select any_value(items.product_id), list(distinct orders.customer_id)"
            " from staging.stg_shop__order_items as items"
            " inner join staging.stg_shop__orders as orders on items.order_id = orders.order_id"
            " where items.product_id = (select min(product_id) from staging.stg_shop__order_items)"
        ).fetchone()
    _recategorize_one_product(raw / "products.parquet", recategorized)
    time.sleep(max(0.0, (near_future - datetime.now()).total_seconds() + 1))
    _build(incremental)
    week_key_test = _compiled_test(ORDER_KEY_TEST)
    after_week = tmp_path / "after_week.duckdb"
    shutil.copy(incremental.warehouse, after_week)
    with duckdb.connect(str(after_week), read_only=True) as con:
        (untouched_by_week,) = con.execute(
            "select any_value(order_id) from staging.stg_shop__orders where order_id not in"
            " (select order_id from raw_history.stg_shop__orders__keys_to_restage)"
        ).fetchone()
    repeats_found = {
        order_id: _repeats_found(incremental.warehouse, week_key_test, order_id)
        for order_id in (moved_order, untouched_by_week)
    }
    # The same test run on its own, in another dbt invocation.
    run_dbt(
        incremental,
        "test",
        dbt_vars(incremental, extra={"incremental_lookback_days": LOOKBACK_DAYS}),
        select=ORDER_KEY_TEST,
    )
    alone_key_test = _compiled_test(ORDER_KEY_TEST)
    reaggregated = _customers_reaggregated(after_week)
    with duckdb.connect(str(after_week), read_only=True) as con:
        recategorized_by_the_week = {
            aggregate: {
                customer_id
                for (customer_id,) in con.execute(
                    f"select customer_id from raw_history.{aggregate}__customers_to_reaggregate"
                ).fetchall()
            }
            for aggregate in OF_THE_CATALOGUE
        }
    with duckdb.connect(str(after_week), read_only=True) as con:
        sessions_reaggregated_from = con.execute(
            "select customer_id, reaggregated_from from raw_history"
            ".int_web_events_aggregated_to_customer_days__customers_to_reaggregate"
            " where customer_id in (select unnest(?)) order by customer_id",
            [list(sessions.customers)],
        ).fetchall()
    with duckdb.connect(str(after_week), read_only=True) as con:
        (log_left,) = con.execute("select count(*) from raw_history.restaged_customers").fetchone()
    week_full_dir = tmp_path / "week_full"
    week_full = _settings(
        _add_drops(_raw_dir(week_full_dir, drops, week_files), extra_drops), week_full_dir
    )
    _recategorize_one_product(week_full.raw_dir / "products.parquet", recategorized)
    _build(week_full)
    # The catalogue exported again, the same products in the same categories.
    (raw / "products.parquet").touch()
    _build(incremental)
    unchanged_by_a_rerun = _differences(after_week, incremental.warehouse)
    reaggregated_by_a_rerun = _customers_reaggregated(incremental.warehouse)

    late_drop, rewritten_week = _late_drops(drops, tmp_path)
    # The week's file rewritten in place (same name), the late drop new.
    shutil.copy(rewritten_week, raw / "orders" / f"2-{drops.week['orders'].name}")
    shutil.copy(late_drop, raw / "orders" / f"3-{late_drop.name}")
    # A file gone: its rows must leave the staged order lines.
    (raw / "order_items" / f"2-{drops.week['order_items'].name}").unlink()
    (redelivered,), (late,) = duckdb.execute(f"select order_id from '{late_drop}'").fetchall()
    ((appended,),) = duckdb.execute(
        f"select order_id from '{rewritten_week}' where order_id like 'appended-%'"
    ).fetchall()
    with duckdb.connect(str(incremental.warehouse), read_only=True) as con:
        (untouched,) = con.execute(
            "select order_id from staging.stg_shop__orders where order_id <> ?"
            " order by ordered_at, order_id limit 1",
            [redelivered],
        ).fetchone()
    staged_again = {
        refresh: _orders_staged_again(incremental, untouched, refresh) for refresh in (False, True)
    }
    _build(incremental)
    full = _settings(raw, tmp_path / "full")
    _build(full)

    assert _differences(week_full.warehouse, after_week) == dict.fromkeys(COMPARED_TABLES, 0)
    # ... having re-aggregated only the week's customers, not every one, ...
    assert all(0 < n_redone < n_held for n_redone, n_held in reaggregated.values()), reaggregated
    # ... of the two customers whose sessions went on into the week, only the days from then.
    expected = sorted(zip(sessions.customers, sessions.days, strict=True))
    assert sessions_reaggregated_from == expected
    # ... and pruned the restage log they have all read.
    assert log_left == 0
    with duckdb.connect(str(after_week), read_only=True) as con:
        assert con.execute(
            "select customer_id from staging.stg_shop__orders where order_id = ?", [moved_order]
        ).fetchall() == [(new_customer,)]
    # The cases the increment must see (a parse so slow that the history lands after
    # near_future fails here): orphans until their customer arrives, rows in the future until
    # they are not.
    assert {
        ("orders", "orphan_customer_id"),
        ("orders", "ordered_in_future"),
        ("web_events", "event_in_future"),
    } <= history_rules
    assert ("orders", "orphan_customer_id") not in _rules_of(incremental.warehouse, arriving)
    assert _rules_of(incremental.warehouse, NEVER_SIGNED_UP) == {
        ("orders", "orphan_customer_id"),
        ("web_events", "orphan_customer_id"),
    }
    # The key test of an incremental build reads the orders it restaged, and finds a repeat
    # there; a full build's, or the test run on its own, reads every order
    # (macros/tests/changed_rows.sql).
    assert "stg_shop__orders__keys_to_restage" in week_key_test
    assert "keys_to_restage" not in history_key_test
    assert "keys_to_restage" not in alone_key_test
    assert repeats_found == {moved_order: True, untouched_by_week: False}
    assert unchanged_by_a_rerun == dict.fromkeys(COMPARED_TABLES, 0)
    # A product moved to another category re-aggregates its buyers; a catalogue exported again
    # unchanged, no one.
    for aggregate in OF_THE_CATALOGUE:
        assert buyers and set(buyers) <= recategorized_by_the_week[aggregate]
        assert reaggregated_by_a_rerun[aggregate][0] == 0
    assert staged_again == {False: False, True: True}
    assert set(_channel_of(incremental.warehouse, [late, appended])) == {late, appended}
    assert _differences(full.warehouse, incremental.warehouse) == dict.fromkeys(COMPARED_TABLES, 0)


def _build_the_catalogue_aggregates(settings: Settings, full_refresh: bool = False) -> None:
    """The two aggregates of the catalogue and what they read (seeds too), no data tests."""
    run_dbt(
        settings,
        "build --exclude-resource-type test --exclude-resource-type unit_test",
        dbt_vars(settings, extra={"incremental_lookback_days": LOOKBACK_DAYS}),
        select=" ".join(f"+{aggregate}" for aggregate in OF_THE_CATALOGUE),
        full_refresh=full_refresh,
    )


def _rewrote_every_row(warehouse: Path) -> dict[str, bool]:
    """Per aggregate of the catalogue: whether its last build rewrote every row."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            aggregate: con.execute(
                "select key_table is null from raw_history.changed_rows where model_name = ?",
                [aggregate],
            ).fetchone()[0]
            for aggregate in OF_THE_CATALOGUE
        }


def test_a_shop_without_a_catalogue_re_aggregates_no_one_until_the_catalogue_arrives(
    drops: Drops, tmp_path: Path
) -> None:
    """Many exports have order lines and no product catalogue. A build that read an empty
    catalogue remembers it read one: the next re-aggregates only what changed, not every
    customer; the catalogue's arrival re-aggregates the buyers of its products."""
    files = {table: [drops.history[table], drops.week[table]] for table in SPLIT_TABLES}
    raw = _raw_dir(tmp_path / "incremental", drops, files)
    (raw / "products.parquet").unlink()
    incremental = _settings(raw, tmp_path / "incremental")
    _build_the_catalogue_aggregates(incremental)
    _build_the_catalogue_aggregates(incremental)
    # (Read first: a build that rewrites every row keeps no table of the customers it redid.)
    assert _rewrote_every_row(incremental.warehouse) == dict.fromkeys(OF_THE_CATALOGUE, False)
    rerun_reaggregated = _customers_reaggregated(incremental.warehouse, OF_THE_CATALOGUE)
    shutil.copy2(drops.whole_dir / "products.parquet", raw / "products.parquet")
    _build_the_catalogue_aggregates(incremental)
    with duckdb.connect(str(incremental.warehouse), read_only=True) as con:
        (n_buyers_of_catalogued,) = con.execute(
            "select count(distinct orders.customer_id) from staging.stg_shop__orders as orders"
            " inner join staging.stg_shop__order_items as items"
            " on orders.order_id = items.order_id"
            " where items.product_id in (select product_id from staging.stg_shop__products)"
        ).fetchone()
    arrival_reaggregated = _customers_reaggregated(incremental.warehouse, OF_THE_CATALOGUE)
    full = _settings(raw, tmp_path / "full")
    _build_the_catalogue_aggregates(full, full_refresh=True)

    for aggregate in OF_THE_CATALOGUE:
        assert rerun_reaggregated[aggregate][0] == 0
        assert arrival_reaggregated[aggregate][0] == n_buyers_of_catalogued > 0
    tables = tuple(f"intermediate.{aggregate}" for aggregate in OF_THE_CATALOGUE)
    assert _differences(full.warehouse, incremental.warehouse, tables) == dict.fromkeys(tables, 0)
