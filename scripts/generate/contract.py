"""The raw contract: the tables ``generate`` writes, their exact columns and Arrow types.

``SCHEMAS`` holds every table's full contract; a shape (``SHAPES``) says which tables and
columns a generated shop has.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

RAW_TABLES = (
    "customers",
    "orders",
    "order_items",
    "products",
    "web_events",
    "campaign_touches",
)
"""Raw tables written under ``<out_dir>/raw/``."""
SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            ("customer_id", pa.string()),
            ("created_at", pa.timestamp("us")),
            ("updated_at", pa.timestamp("us")),
            ("email", pa.string()),
            ("birth_date", pa.date32()),
            ("gender", pa.string()),
            ("region", pa.string()),
            ("city", pa.string()),
            ("income", pa.float64()),
            ("marketing_opt_in", pa.bool_()),
            ("acquisition_channel", pa.string()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("ordered_at", pa.timestamp("us")),
            ("status", pa.string()),
            ("order_total", pa.float64()),
            ("discount_total", pa.float64()),
            ("channel", pa.string()),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_id", pa.string()),
            ("product_id", pa.string()),
            ("quantity", pa.int32()),
            ("unit_price", pa.float64()),
        ]
    ),
    "products": pa.schema(
        [
            ("product_id", pa.string()),
            ("category", pa.string()),
            ("brand", pa.string()),
            ("list_price", pa.float64()),
        ]
    ),
    "web_events": pa.schema(
        [
            ("event_id", pa.string()),
            ("customer_id", pa.string()),
            ("session_id", pa.string()),
            ("event_type", pa.string()),
            ("event_at", pa.timestamp("us")),
            ("product_id", pa.string()),
        ]
    ),
    "campaign_touches": pa.schema(
        [
            ("touch_id", pa.string()),
            ("campaign_id", pa.string()),
            ("customer_id", pa.string()),
            ("channel", pa.string()),
            ("sent_at", pa.timestamp("us")),
            ("opened_at", pa.timestamp("us")),
            ("clicked_at", pa.timestamp("us")),
            ("is_control", pa.bool_()),
        ]
    ),
}
"""The raw contract: exact column names and Arrow types per table."""


CHANNEL_CONSENT_FIELDS = (
    pa.field("email_consent", pa.string()),
    pa.field("sms_consent", pa.string()),
    pa.field("push_consent", pa.string()),
)
"""Optional per-channel consent columns of ``customers``, written by the ``channel_consent``
shape only: ``true``/``false``, empty (unknown: the general opt-in decides) or, rarely, an
unparsable value, because real exports have them and the warehouse must quarantine them."""


TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("date", pa.string()),
        ("amount", pa.decimal128(12, 2)),
    ]
)
"""The ``transactions`` shape's one file: a purchase per row, CDNOW style (``YYYYMMDD`` dates)."""

Shape = Literal["standard", "transactions", "minimal", "channel_consent"]

SHAPES: dict[str, dict[str, tuple[str, ...]]] = {
    "standard": {name: tuple(SCHEMAS[name].names) for name in RAW_TABLES},
    "transactions": {"transactions": tuple(TRANSACTIONS_SCHEMA.names)},
    "minimal": {
        "customers": ("customer_id", "created_at"),
        "orders": ("order_id", "customer_id", "ordered_at", "status", "order_total"),
    },
    "channel_consent": {
        name: tuple(SCHEMAS[name].names)
        + (tuple(f.name for f in CHANNEL_CONSENT_FIELDS) if name == "customers" else ())
        for name in RAW_TABLES
    },
}
"""Per shape: the raw tables written and their columns. ``standard`` is the full contract;
``transactions`` is one purchase log (always CSV); ``minimal`` is customers and orders with
the required columns only (always CSV); ``channel_consent`` is ``standard`` plus per-channel
consent columns on ``customers`` (``CHANNEL_CONSENT_FIELDS``; always CSV)."""


def schema_of(name: str, columns: tuple[str, ...]) -> pa.Schema:
    """Return the contract schema of ``name`` restricted to ``columns`` (in that order)."""
    if name == "transactions":
        return TRANSACTIONS_SCHEMA
    full = SCHEMAS[name]
    optional = {f.name: f for f in CHANNEL_CONSENT_FIELDS} if name == "customers" else {}
    return pa.schema(
        [optional[column] if column in optional else full.field(column) for column in columns]
    )
