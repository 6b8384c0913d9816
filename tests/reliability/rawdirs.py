"""Tiny hand-written raw directories: a clean shop (which the error cases of test_bad_inputs
break one way each) and a dirty shop holding every kind of bad row next to 20 clean customers.

Rows are written as literal CSV lines (so a line can be malformed on purpose) or as Parquet
through pyarrow. Every bad row carries a unique marker (``BAD_<case>``) in a free-text column, so
a test finds it again in ``core.quarantined_rows.raw_record`` whatever happened to its ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CUSTOMER_HEADER = (
    "customer_id,created_at,updated_at,email,birth_date,gender,region,city,income,"
    "marketing_opt_in,acquisition_channel"
)
ORDER_HEADER = "order_id,customer_id,ordered_at,status,order_total,discount_total,channel"
PRODUCT_HEADER = "product_id,category,brand,list_price"
TOUCH_HEADER = "touch_id,campaign_id,customer_id,channel,sent_at,opened_at,clicked_at,is_control"

# The clean shop's calendar: customers sign up in 2024, orders run until the end of June 2025.
SHOP_START = datetime(2024, 1, 1, 9, 0, 0)
LAST_ORDER_AT = datetime(2025, 6, 30, 18, 0, 0)
AS_OF = date(2025, 7, 1)  # the default as_of: the day after the latest good order or event

REGIONS = ("north", "south", "east", "west", "central")
CATEGORIES = ("books", "garden", "kitchen", "toys")
# Contact details of the fake people in the clean shop: none of them may reach BI.
FIRST_NAMES = ("Anna", "Bruno", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hugo")


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def customer_id(number: int) -> str:
    return f"C{number:04d}"


def email_of(number: int) -> str:
    return f"{FIRST_NAMES[number % len(FIRST_NAMES)].lower()}.{number}@example.com"


def phone_of(number: int) -> str:
    return f"+44 7700 9{number:05d}"


def _write_lines(path: Path, header: str, lines: list[str], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join([header, *lines]) + "\n").encode(encoding))
    return path


def _customer_line(
    number: int,
    *,
    extra: bool = False,
    income: str | None = None,
    updated_at: datetime | None = None,
    city: str | None = None,
) -> str:
    created = SHOP_START + timedelta(days=3 * number)
    fields = [
        customer_id(number),
        _ts(created),
        _ts(updated_at or created),
        email_of(number),
        f"{1960 + number % 40}-0{1 + number % 9}-15",
        "female" if number % 2 else "male",
        REGIONS[number % len(REGIONS)],
        city or f"City{number % 7}",
        str(30_000 + 1_000 * (number % 30)) if income is None else income,
        "true" if number % 3 else "false",
        "organic" if number % 2 else "paid_search",
    ]
    if extra:  # name and phone columns the contract does not know: they must never land
        fields += [FIRST_NAMES[number % len(FIRST_NAMES)], phone_of(number)]
    return ",".join(fields)


def _orders_of(number: int, n_customers: int) -> list[tuple[str, str, datetime, str, float]]:
    """A deterministic order history: frequent buyers early in the list, some never buy.

    Every third customer stops buying in 2025 so that the label has both classes.
    """
    created = SHOP_START + timedelta(days=3 * number)
    n_orders = (n_customers - number) % 6
    stops_early = number % 3 == 0
    end = datetime(2024, 12, 1) if stops_early else LAST_ORDER_AT
    orders = []
    for k in range(n_orders):
        ordered = created + timedelta(days=11 + (k * 47 + number * 5) % 500, hours=k)
        if ordered > end:
            continue
        status = "cancelled" if (number + k) % 9 == 0 else "completed"
        orders.append((f"O{number:04d}{k:02d}", customer_id(number), ordered, status, 10.0 + k))
    return orders


def write_clean_shop(raw_dir: Path, n_customers: int = 60) -> Path:
    """A small valid shop: customers, orders, order items, products, web events, touches.

    The latest order is exactly ``LAST_ORDER_AT`` (customer 1), so the default as_of is
    ``AS_OF``.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    customers = [_customer_line(n) for n in range(1, n_customers + 1)]
    orders = [o for n in range(1, n_customers + 1) for o in _orders_of(n, n_customers)]
    orders.append(("O999999", customer_id(1), LAST_ORDER_AT, "completed", 42.0))
    order_lines = [
        f"{oid},{cid},{_ts(at)},{status},{total:.2f},0,web"
        for oid, cid, at, status, total in orders
    ]
    products = [
        f"P{k:03d},{CATEGORIES[k % len(CATEGORIES)]},Brand{k % 3},{5 + k}.00" for k in range(8)
    ]
    items = {
        "order_id": [oid for oid, *_ in orders],
        "product_id": [f"P{k % 8:03d}" for k in range(len(orders))],
        "quantity": [1 + k % 3 for k in range(len(orders))],
        "unit_price": [5.0 + k % 8 for k in range(len(orders))],
    }
    events = {
        "event_id": [f"E{k:05d}" for k in range(len(orders))],
        "customer_id": [cid if k % 4 else None for k, (_, cid, *_) in enumerate(orders)],
        "session_id": [f"S{k:05d}" for k in range(len(orders))],
        "event_type": ["product_view" if k % 2 else "page_view" for k in range(len(orders))],
        "event_at": [at - timedelta(minutes=5) for _, _, at, *_ in orders],
        "product_id": [f"P{k % 8:03d}" for k in range(len(orders))],
    }
    touches = [
        f"T{n:04d},CMP001,{customer_id(n)},email,2025-03-01 08:00:00,,,{str(n % 10 == 0).lower()}"
        for n in range(1, n_customers + 1, 2)
    ]
    _write_lines(raw_dir / "customers.csv", CUSTOMER_HEADER, customers)
    _write_lines(raw_dir / "orders.csv", ORDER_HEADER, order_lines)
    _write_lines(raw_dir / "products.csv", PRODUCT_HEADER, products)
    pq.write_table(pa.table(items), raw_dir / "order_items.parquet")
    pq.write_table(pa.table(events), raw_dir / "web_events.parquet")
    _write_lines(raw_dir / "campaign_touches.csv", TOUCH_HEADER, touches)
    return raw_dir


@dataclass(frozen=True)
class BadRow:
    """One bad row of the battery and the quarantine rule it must end under."""

    case: str
    table: str
    rule: str
    n_lines: int = 1  # physical lines: an unterminated quote swallows the next line too

    @property
    def marker(self) -> str:
        return f"BAD_{self.case}"


# Every row below is bad in exactly one way; the build must succeed and quarantine each one
# under its rule. Customers 1-20 are clean and present.
BAD_ROWS: tuple[BadRow, ...] = (
    # customers.csv: also has extra columns (first_name, phone) and an all-null income column
    BadRow("customer_null_id", "customers", "missing_customer_id"),
    BadRow("customer_created_2200", "customers", "created_in_future"),
    BadRow("customer_created_1900", "customers", "created_before_min_date"),
    BadRow("customer_too_many_fields", "customers", "malformed_csv_line: too many columns"),
    BadRow("customer_too_few_fields", "customers", "malformed_csv_line: missing columns"),
    # orders.csv
    BadRow("order_ordered_unparsable", "orders", "invalid_ordered_at"),
    BadRow("order_ordered_2200", "orders", "ordered_in_future"),
    BadRow("order_ordered_1900", "orders", "ordered_before_min_date"),
    BadRow("order_before_signup", "orders", "ordered_before_signup"),
    BadRow("order_total_negative", "orders", "negative_order_total"),
    BadRow("order_total_absurd", "orders", "absurd_order_total"),
    BadRow("order_null_id", "orders", "missing_order_id"),
    BadRow("order_null_customer", "orders", "missing_customer_id"),
    BadRow("order_orphan_customer", "orders", "orphan_customer_id"),
    BadRow("order_unknown_status", "orders", "invalid_status"),
    BadRow("order_unterminated_quote", "orders", "malformed_csv_line: unquoted value", n_lines=2),
    # order_items.parquet (quantity written as text: Parquet with a wrong type)
    BadRow("item_quantity_text", "order_items", "invalid_quantity"),
    BadRow("item_quantity_zero", "order_items", "non_positive_quantity"),
    BadRow("item_quantity_absurd", "order_items", "absurd_quantity"),
    BadRow("item_price_negative", "order_items", "negative_unit_price"),
    BadRow("item_orphan_order", "order_items", "orphan_order_id"),
    BadRow("item_null_product", "order_items", "missing_product_id"),
    # products.csv: latin-1 encoded (its one accented line is kept: see VALUE_NOTES)
    BadRow("product_price_text", "products", "invalid_list_price"),
    BadRow("product_price_absurd", "products", "absurd_list_price"),
    # web_events.parquet (typed timestamps)
    BadRow("event_at_2200", "web_events", "event_in_future"),
    BadRow("event_at_1900", "web_events", "event_before_min_date"),
    BadRow("event_orphan_customer", "web_events", "orphan_customer_id"),
    BadRow("event_null_id", "web_events", "missing_event_id"),
    # campaign_touches.csv
    BadRow("touch_sent_2200", "campaign_touches", "sent_in_future"),
    BadRow("touch_sent_unparsable", "campaign_touches", "invalid_sent_at"),
    BadRow("touch_orphan_customer", "campaign_touches", "orphan_customer_id"),
)


@dataclass(frozen=True)
class ValueNote:
    """A bad value in a kept row: it becomes null, and core.quarantined_values says why."""

    case: str
    table: str
    row_key: str
    columns: tuple[str, ...]
    rule: str


# Bad in one optional field: the row stays (a bad field never costs a customer or a purchase).
VALUE_NOTES: tuple[ValueNote, ...] = (
    # "yesterday" as both sign-up and update time
    ValueNote(
        "customer_created_unparsable",
        "customers",
        "C9001",
        ("created_at", "updated_at"),
        "unparsable_value",
    ),
    ValueNote("order_total_text", "orders", "O9001", ("order_total",), "unparsable_value"),
    # not UTF-8: the landing copies the file as UTF-8 with U+FFFD for the undecodable bytes
    ValueNote("product_latin1", "products", "P100", ("brand",), "undecodable_value"),
)

# Rows repeated on purpose: (table, number of extra copies the dedup removes).
DUPLICATES = {"customers": 1, "orders": 1, "order_items": 0, "web_events": 1}


def write_dirty_shop(raw_dir: Path) -> Path:
    """A shop of 20 clean customers plus every row of ``BAD_ROWS`` (and ``DUPLICATES``)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    n = 20
    # customers.csv: two columns the contract lacks, and income left empty on every row.
    header = CUSTOMER_HEADER + ",first_name,phone"

    def customer(cid: str, created: str, marker: str) -> str:
        return (
            f"{cid},{created},{created},{marker.lower()}@example.com,1980-05-01,female,north,"
            f"{marker},,true,organic,Name,+1 555 0100"
        )

    customers = [_customer_line(k, extra=True, income="") for k in range(1, n + 1)]
    customers += [
        # a reload of customer 2 with a later updated_at: a duplicate, the later copy wins
        _customer_line(
            2, extra=True, income="", updated_at=datetime(2024, 5, 5), city="ReloadedCity"
        ),
        customer("", "2024-02-01 00:00:00", "BAD_customer_null_id"),
        customer("C9001", "yesterday", "BAD_customer_created_unparsable"),
        customer("C9002", "2200-01-01 00:00:00", "BAD_customer_created_2200"),
        customer("C9003", "1900-01-01 00:00:00", "BAD_customer_created_1900"),
        customer("C9004", "2024-02-01 00:00:00", "BAD_customer_too_many_fields") + ",surplus",
        "C9005,2024-02-01 00:00:00,BAD_customer_too_few_fields",
    ]
    _write_lines(raw_dir / "customers.csv", header, customers)

    def order(oid: str, cid: str, at: str, total: str, marker: str, status: str = "completed"):
        return f"{oid},{cid},{at},{status},{total},0,{marker}"

    good_orders = [
        order(
            f"O{k:04d}",
            customer_id(k % n + 1),
            f"2025-0{1 + k % 6}-1{k % 10} 12:00:00",
            f"{20 + k}.50",
            "web",
        )
        for k in range(40)
    ]
    good_orders.append(order("O0999", customer_id(1), _ts(LAST_ORDER_AT), "10.00", "web"))
    orders = [
        *good_orders,
        good_orders[3],  # an exact re-delivery
        order("O9001", "C0001", "2025-01-01 00:00:00", "abc", "BAD_order_total_text"),
        order("O9002", "C0001", "01/13/2025 noon", "5.00", "BAD_order_ordered_unparsable"),
        order("O9003", "C0001", "2200-01-01 00:00:00", "5.00", "BAD_order_ordered_2200"),
        order("O9004", "C0001", "1900-01-01 00:00:00", "5.00", "BAD_order_ordered_1900"),
        order("O9005", "C0020", "2024-01-02 00:00:00", "5.00", "BAD_order_before_signup"),
        order("O9006", "C0001", "2025-01-01 00:00:00", "-5.00", "BAD_order_total_negative"),
        order("O9007", "C0001", "2025-01-01 00:00:00", "1e9", "BAD_order_total_absurd"),
        order("", "C0001", "2025-01-01 00:00:00", "5.00", "BAD_order_null_id"),
        order("O9009", "", "2025-01-01 00:00:00", "5.00", "BAD_order_null_customer"),
        order("O9010", "C7777", "2025-01-01 00:00:00", "5.00", "BAD_order_orphan_customer"),
        order(
            "O9011",
            "C0001",
            "2025-01-01 00:00:00",
            "5.00",
            "BAD_order_unknown_status",
            status="teleported",
        ),
        # an opening quote that never closes swallows the next line (itself short of fields)
        'O9012,C0001,2025-01-01 00:00:00,completed,"5.00,0,BAD_order_unterminated_quote',
        "O9013,C0001",
    ]
    _write_lines(raw_dir / "orders.csv", ORDER_HEADER, orders)

    # quantity as text: a Parquet file whose column has the wrong type. The row without a
    # product carries its marker in order_id (missing_product_id is checked before orphans).
    items = {
        "order_id": [
            *(f"O{k:04d}" for k in range(40)),
            *("O0001", "O0002", "O0003", "O0004", "O8888", "BAD_item_null_product"),
        ],
        "product_id": [
            *(f"P{k % 4:03d}" for k in range(40)),
            "BAD_item_quantity_text",
            "BAD_item_quantity_zero",
            "BAD_item_quantity_absurd",
            "BAD_item_price_negative",
            "BAD_item_orphan_order",
            None,
        ],
        "quantity": [*("1" for _ in range(40)), "two", "0", "100000", "1", "1", "1"],
        "unit_price": [*(9.5 for _ in range(40)), 1.0, 1.0, 1.0, -1.0, 1.0, 1.0],
    }
    pq.write_table(pa.table(items), raw_dir / "order_items.parquet")

    products = [
        *(f"P{k:03d},{CATEGORIES[k]},Brand{k},{5 + k}.00" for k in range(4)),
        "P100,kitchen,BAD_product_latin1 Müller Küchen,12.00",
        "P101,garden,BAD_product_price_text,twelve",
        "P102,garden,BAD_product_price_absurd,99999999",
    ]
    _write_lines(raw_dir / "products.csv", PRODUCT_HEADER, products, encoding="latin-1")

    event_times = [datetime(2025, 1 + k % 6, 1 + k, 10, 0, 0) for k in range(20)]
    events = {
        "event_id": [
            *(f"E{k:04d}" for k in range(20)),
            "E0005",  # exact duplicate of E0005
            "E9001",
            "E9002",
            "E9003",
            None,
        ],
        "customer_id": [
            *(customer_id(k + 1) if k % 3 else None for k in range(20)),
            customer_id(6),
            customer_id(1),
            customer_id(1),
            "C7777",
            customer_id(1),
        ],
        "session_id": [
            *(f"S{k:04d}" for k in range(20)),
            "S0005",
            "BAD_event_at_2200",
            "BAD_event_at_1900",
            "BAD_event_orphan_customer",
            "BAD_event_null_id",
        ],
        "event_type": [*("page_view" for _ in range(20)), "page_view", *("page_view",) * 4],
        "event_at": [
            *event_times,
            event_times[5],
            datetime(2200, 1, 1),
            datetime(1900, 1, 1),
            datetime(2025, 2, 1),
            datetime(2025, 2, 1),
        ],
        "product_id": [*("P000" for _ in range(20)), "P000", *("P000",) * 4],
    }
    pq.write_table(pa.table(events), raw_dir / "web_events.parquet")

    touches = [
        f"T{k:04d},CMP001,{customer_id(k)},email,2025-03-01 08:00:00,,,false" for k in range(1, 6)
    ]
    touches += [
        "T9001,BAD_touch_sent_2200,C0001,email,2200-03-01 08:00:00,,,false",
        "T9002,BAD_touch_sent_unparsable,C0001,email,sometime,,,false",
        "T9003,BAD_touch_orphan_customer,C7777,email,2025-03-01 08:00:00,,,false",
    ]
    _write_lines(raw_dir / "campaign_touches.csv", TOUCH_HEADER, touches)
    return raw_dir
