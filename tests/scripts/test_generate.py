"""The synthetic shop generator: contract, determinism, dirt, and the oracle it ships with."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from scripts import dirt
from scripts.generate import (
    DATA_END,
    DATA_START,
    GENDERS,
    ORDER_CHANNELS,
    RAW_TABLES,
    REGIONS,
    SCHEMAS,
    generate,
)
from scripts.ground_truth import (
    load_ground_truth,
    load_uplift_windows,
    true_purchase_probability,
)
from tests.scripts.shops import connect

SMALL = 3_000
SMALL_CHUNK = 1_000


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    generate(SMALL, seed=11, out_dir=out, chunk_size=SMALL_CHUNK)
    return out


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small_csv")
    generate(SMALL, seed=11, out_dir=out, fmt="csv", chunk_size=SMALL_CHUNK)
    return out


@pytest.fixture(scope="session")
def small_con(small: Path) -> duckdb.DuckDBPyConnection:
    return connect(small)


def _files(out: Path) -> dict[str, object]:
    """Every file's content: Parquet decoded to a table, anything else as bytes.

    Parquet is compared decoded because one parallel-suite run saw products.parquet differ in
    bytes (never reproduced since); decoded equality is what readers depend on.
    """
    return {
        str(path.relative_to(out)): pq.read_table(path).to_pydict()
        if path.suffix == ".parquet"
        else path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _assert_rate(count: float, n: float, rate: float, what: str) -> None:
    """Bernoulli counts stay within five binomial standard deviations of the documented rate."""
    expected = n * rate
    tolerance = 5 * np.sqrt(n * rate * (1 - rate)) + 2
    assert abs(count - expected) <= tolerance, f"{what}: {count} vs {expected:.1f} expected"


# --------------------------------------------------------------------------------------------
# Determinism and layout


def test_same_seed_gives_byte_identical_files(small: Path, tmp_path: Path) -> None:
    generate(SMALL, seed=11, out_dir=tmp_path, chunk_size=SMALL_CHUNK)
    assert _files(tmp_path) == _files(small)


def test_different_seed_gives_different_data(small: Path, tmp_path: Path) -> None:
    generate(SMALL, seed=12, out_dir=tmp_path, chunk_size=SMALL_CHUNK)
    ours, theirs = _files(small), _files(tmp_path)
    for name in ("customers", "orders", "web_events"):
        key = f"raw/{name}.parquet"
        assert ours[key] != theirs[key]


def test_ground_truth_lives_in_its_own_folder_not_under_raw(small: Path) -> None:
    raw = sorted(path.name for path in (small / "raw").iterdir())
    assert raw == sorted(f"{name}.parquet" for name in RAW_TABLES)
    truth = {path.name for path in (small / "ground_truth").iterdir()}
    assert {"customers.parquet", "campaigns.parquet", "weeks.parquet", "meta.json"} <= truth


def test_raw_tables_follow_the_contract(small: Path) -> None:
    for name in RAW_TABLES:
        schema = pq.read_schema(small / "raw" / f"{name}.parquet")
        assert schema.names == SCHEMAS[name].names, name
        assert schema.types == SCHEMAS[name].types, name


def test_summary_counts_match_the_files_and_progress_reaches_the_total(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    summary = generate(2_500, seed=3, out_dir=tmp_path, chunk_size=1_000, progress=_record(calls))
    assert calls == [(1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]
    for name, path in summary.raw_paths.items():
        assert pq.read_metadata(path).num_rows == summary.row_counts[name], name
    assert summary.row_counts["products"] == 3_000
    assert summary.ground_truth_dir == tmp_path / "ground_truth"


def _record(calls: list[tuple[int, int]]) -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        calls.append((done, total))

    return progress


def test_timestamps_stay_inside_the_fixed_calendar(con: duckdb.DuckDBPyConnection) -> None:
    start, end = pd.Timestamp(DATA_START), pd.Timestamp(DATA_END)
    for table, column in [
        ("customers", "created_at"),
        ("web_events", "event_at"),
        ("campaign_touches", "sent_at"),
    ]:
        low, high = con.execute(f"select min({column}), max({column}) from {table}").fetchone()
        assert start <= low and high < end, (table, column)
    low, high = con.execute("select min(ordered_at), max(ordered_at) from orders").fetchone()
    assert start <= low and high < end


@pytest.mark.parametrize("bad", [{"n_customers": 0}, {"fmt": "xlsx"}, {"chunk_size": 0}])
def test_invalid_arguments_are_rejected(tmp_path: Path, bad: dict) -> None:
    arguments = {"n_customers": 10, "seed": 1, "out_dir": tmp_path} | bad
    with pytest.raises(ValueError):
        generate(**arguments)


# --------------------------------------------------------------------------------------------
# CSV


def _csv_without_malformed_lines(out: Path, name: str) -> pa.Table:
    numbers = json.loads((out / "ground_truth" / "malformed_csv_lines.json").read_text())
    skip = set(numbers.get(name, []))
    lines = (out / "raw" / f"{name}.csv").read_bytes().split(b"\n")
    kept = b"\n".join(line for number, line in enumerate(lines, start=1) if number not in skip)
    schema = SCHEMAS[name]
    column_types = {
        field.name: pa.timestamp("s") if pa.types.is_timestamp(field.type) else field.type
        for field in schema
    }
    return pacsv.read_csv(
        pa.py_buffer(kept),
        convert_options=pacsv.ConvertOptions(
            column_types=column_types, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )


def test_csv_and_parquet_hold_the_same_clean_rows(small: Path, small_csv: Path) -> None:
    for name in RAW_TABLES:
        from_csv = _csv_without_malformed_lines(small_csv, name).cast(SCHEMAS[name])
        from_parquet = pq.read_table(small / "raw" / f"{name}.parquet")
        assert from_csv.equals(from_parquet), name


def test_malformed_lines_exist_only_in_csv_and_only_where_listed(
    small: Path, small_csv: Path
) -> None:
    assert json.loads((small / "ground_truth" / "malformed_csv_lines.json").read_text()) == {}
    listed = json.loads((small_csv / "ground_truth" / "malformed_csv_lines.json").read_text())
    for name in RAW_TABLES:
        width = len(SCHEMAS[name])
        bad = [
            number
            for number, line in enumerate(
                (small_csv / "raw" / f"{name}.csv").read_text().splitlines(), start=1
            )
            if line.count(",") != width - 1 or line.count('"') % 2
        ]
        assert bad == listed.get(name, []), name
    for name, events in dirt.MALFORMED_CSV_EVENTS.items():
        assert events <= len(listed[name]) <= 2 * events, name


# --------------------------------------------------------------------------------------------
# Dirt


def test_customer_dirt_matches_documented_rates(con: duckdb.DuckDBPyConnection) -> None:
    rates = dirt.DIRT_RATES
    rows = _scalar(con, "select count(*) from customers")
    n_customers = _scalar(con, "select count(*) from truth")
    reloaded = rows - n_customers
    _assert_rate(reloaded, n_customers, rates["customer_reloaded"], "re-loaded customers")
    latest_is_truth = _scalar(
        con,
        """
        with latest as (
            select * from customers
            qualify row_number() over (partition by customer_id order by updated_at desc) = 1
        )
        select count(*) from latest join truth using (customer_id)
        where latest.city = truth.city and latest.marketing_opt_in = truth.marketing_opt_in
        """,
    )
    assert latest_is_truth == n_customers
    for column in ("birth_date", "income", "gender"):
        missing = _scalar(con, f"select count(*) - count({column}) from customers")
        _assert_rate(missing, rows, rates[f"{column}_missing"], f"missing {column}")
    non_null = _scalar(con, "select count(gender) from customers")
    genders = ", ".join(f"'{g}'" for g in GENDERS)
    variant = _scalar(con, f"select count(*) from customers where gender not in ({genders})")
    _assert_rate(variant, non_null, rates["gender_variant_spelling"], "gender spellings")
    regions = ", ".join(f"'{r}'" for r in REGIONS)
    variant = _scalar(con, f"select count(*) from customers where region not in ({regions})")
    _assert_rate(variant, rows, rates["region_variant_spelling"], "region spellings")
    assert {" north", "NORTH "} & set(
        con.execute("select distinct region from customers").fetchdf()["region"]
    )
    future = _scalar(con, f"select count(*) from customers where birth_date >= '{DATA_END}'")
    _assert_rate(future, rows, rates["birth_date_future"], "future birth dates")
    absurd = _scalar(
        con,
        f"select count(distinct customer_id) from customers where income = {dirt.ABSURD_INCOME}",
    )
    assert absurd == dirt.DIRT_COUNTS["income_absurd"]


def test_order_dirt_matches_documented_rates(con: duckdb.DuckDBPyConnection) -> None:
    rates = dirt.DIRT_RATES
    rows = _scalar(con, "select count(*) from orders")
    distinct = _scalar(con, "select count(distinct hash(orders)) from orders")
    assert distinct == _scalar(con, "select count(distinct order_id) from orders")
    _assert_rate(rows - distinct, distinct, rates["orders_duplicate"], "duplicate orders")
    ghosts = _scalar(
        con,
        "select count(distinct order_id) from orders "
        "where customer_id not in (select customer_id from customers)",
    )
    _assert_rate(ghosts, distinct, rates["order_customer_missing"], "orders of no customer")
    early = _scalar(
        con,
        "select count(distinct order_id) from orders join truth using (customer_id) "
        "where orders.ordered_at < truth.created_at",
    )
    _assert_rate(early, distinct, rates["order_before_signup"], "orders before signup")
    negative = _scalar(con, "select count(distinct order_id) from orders where order_total < 0")
    assert negative == dirt.DIRT_COUNTS["order_total_negative"]
    canonical = ", ".join(f"'{c}'" for c in ORDER_CHANNELS)
    variant = _scalar(con, f"select count(*) from orders where channel not in ({canonical})")
    _assert_rate(variant, rows, rates["channel_variant_spelling"], "channel spellings")


def test_item_product_and_event_dirt_matches_documented_rates(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rates = dirt.DIRT_RATES
    rows = _scalar(con, "select count(*) from order_items")
    distinct = _scalar(con, "select count(distinct hash(order_items)) from order_items")
    _assert_rate(rows - distinct, distinct, rates["order_items_duplicate"], "duplicate items")
    orphans = _scalar(
        con,
        "select count(distinct order_id) from order_items "
        "where order_id not in (select order_id from orders)",
    )
    _assert_rate(orphans, distinct, rates["order_item_orphan"], "orphan items")
    negative = _scalar(con, "select count(*) from order_items where unit_price < 0")
    _assert_rate(negative, rows, rates["unit_price_negative"], "negative unit prices")
    zero = _scalar(con, "select count(*) from order_items where quantity = 0")
    _assert_rate(zero, rows, rates["quantity_zero"], "zero quantities")
    absurd = _scalar(
        con,
        "select count(distinct order_id) from order_items "
        f"where quantity = {dirt.ABSURD_QUANTITY}",
    )
    assert absurd == dirt.DIRT_COUNTS["quantity_absurd"]
    products = _scalar(con, "select count(*) from products where list_price < 0")
    assert products == round(rates["list_price_negative"] * 3_000)
    events = _scalar(con, "select count(*) from web_events")
    distinct = _scalar(con, "select count(distinct event_id) from web_events")
    assert distinct == _scalar(con, "select count(distinct hash(web_events)) from web_events")
    _assert_rate(events - distinct, distinct, rates["web_events_duplicate"], "duplicate events")


def test_ids_are_unique_apart_from_injected_duplicates(
    small_con: duckdb.DuckDBPyConnection,
) -> None:
    con = small_con
    for table, key in [
        ("orders", "order_id"),
        ("web_events", "event_id"),
        ("campaign_touches", "touch_id"),
        ("products", "product_id"),
    ]:
        keys = _scalar(con, f"select count(distinct {key}) from {table}")
        rows = _scalar(con, f"select count(distinct hash({table})) from {table}")
        assert keys == rows, table
    pairs = _scalar(con, "select count(distinct (order_id, product_id)) from order_items")
    assert pairs == _scalar(con, "select count(distinct hash(order_items)) from order_items")


def test_web_events_are_partly_anonymous_and_product_ids_follow_event_types(
    con: duckdb.DuckDBPyConnection,
) -> None:
    anonymous = _scalar(con, "select avg((customer_id is null)::double) from web_events")
    assert 0.25 <= anonymous <= 0.35
    wrong = _scalar(
        con,
        """
        select count(*) from web_events
        where (event_type in ('page_view', 'checkout')) != (product_id is null)
        """,
    )
    assert wrong == 0


def test_control_touches_are_never_opened(con: duckdb.DuckDBPyConnection) -> None:
    opened = _scalar(
        con,
        "select count(*) from campaign_touches where is_control and opened_at is not null",
    )
    assert opened == 0
    control = _scalar(con, "select avg(is_control::double) from campaign_touches")
    assert 0.07 <= control <= 0.13


# --------------------------------------------------------------------------------------------
# Oracle


def _realised(con: duckdb.DuckDBPyConnection, start: date, horizon_days: int) -> pd.Index:
    buyers = con.execute(
        f"""
        select distinct customer_id from orders
        where status != 'cancelled'
          and ordered_at >= date '{start}'
          and ordered_at < date '{start}' + interval {horizon_days} day
        """
    ).fetchdf()
    return pd.Index(buyers["customer_id"])


@pytest.mark.parametrize(
    ("start", "horizon_days"),
    [(date(2024, 9, 1), 30), (date(2025, 6, 1), 60), (date(2025, 12, 1), 90)],
)
def test_oracle_mean_matches_the_realised_purchase_rate(
    large: Path, con: duckdb.DuckDBPyConnection, start: date, horizon_days: int
) -> None:
    truth = load_ground_truth(large)
    windows = load_uplift_windows(large)
    probability = true_purchase_probability(truth, start, horizon_days, windows)
    bought = probability.index.isin(_realised(con, start, horizon_days))
    standard_error = np.sqrt((probability * (1 - probability)).sum()) / len(probability)
    assert abs(bought.mean() - probability.mean()) < 4 * standard_error + 0.005
    assert roc_auc_score(bought, probability) > 0.75


def test_oracle_is_a_probability_that_grows_with_the_horizon(large: Path) -> None:
    truth = load_ground_truth(large)
    previous = pd.Series(0.0, index=truth.index)
    for horizon in (0, 7, 30, 90, 365):
        probability = true_purchase_probability(truth, date(2025, 3, 1), horizon)
        assert probability.index.equals(truth.index)
        assert probability.between(0.0, 1.0).all()
        assert (probability >= previous - 1e-12).all()
        previous = probability
    assert true_purchase_probability(truth, date(2025, 3, 1), 0).eq(0.0).all()


def test_oracle_is_zero_before_signup(large: Path) -> None:
    truth = load_ground_truth(large)
    start = date(2025, 6, 1)
    probability = true_purchase_probability(truth, start, 30)
    later = truth["created_at"] >= pd.Timestamp(2025, 7, 1)
    assert later.sum() > 100
    assert probability[later].max() == 0.0


# --------------------------------------------------------------------------------------------
# Personas


def test_window_shoppers_browse_more_and_buy_less_than_loyal_customers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    per_persona = con.execute(
        """
        with views as (
            select customer_id, count(*) as n_views from web_events
            where event_type = 'product_view' group by 1
        ),
        bought as (
            select customer_id, count(*) as n_orders from orders group by 1
        )
        select
            truth.persona,
            avg(coalesce(views.n_views, 0)) as views,
            avg(coalesce(bought.n_orders, 0)) as orders,
        from truth
        left join views using (customer_id)
        left join bought using (customer_id)
        group by 1
        """
    ).fetchdf()
    persona = per_persona.set_index("persona")
    window, loyal = persona.loc["window_shopper"], persona.loc["loyal_high_spender"]
    assert window["views"] > 2 * loyal["views"]
    assert window["orders"] * 5 < loyal["orders"]
    assert persona.loc["one_time_buyer", "orders"] < 2
