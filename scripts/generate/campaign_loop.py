"""Play the shop's side of a closed campaign loop: send a segmart export, let it work.

`run_exported_campaign` reads an audience export (``exports/<as_of>/``, ml/delivery/activation.py)
and adds to a shop's raw files what a shop that ran the campaign would have: one touch per treated
member carrying the export's ``campaign_key``, and for a share ``uplift`` of the treated members
one extra purchase in the days after the send. Control members (the holdout file) get nothing. With
``uplift=0`` the campaign is a placebo: sent, but changing no purchase.

Parquet files are rewritten with the rows appended (a touches file without ``campaign_key``
gains the column, null for the shop's own touches); CSV files get lines appended, and a shop
without a touches file (the ``minimal`` shape) gets one.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HOLDOUT_STEM = "_holdout"
EXTRA_ORDER_TOTAL = (20.0, 120.0)
"""Extra purchases cost a uniform amount in this range."""


@dataclass(frozen=True)
class CampaignRun:
    """What `run_exported_campaign` added: touches per campaign_key and extra orders."""

    n_touches: dict[str, int]
    n_extra_orders: dict[str, int]


def _treated_members(export_dir: Path, audience: str) -> pa.Table:
    path = export_dir / f"{audience}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no audience file {path}")
    return pq.read_table(path, columns=["customer_id", "campaign_key", "channel"])


def _touches(members: pa.Table, sent_at: datetime, prefix: str) -> pa.Table:
    n = members.num_rows
    return pa.table(
        {
            "touch_id": [f"{prefix}{i:08d}" for i in range(n)],
            "campaign_id": [f"segmart:{key}" for key in members["campaign_key"].to_pylist()],
            "customer_id": members["customer_id"],
            "channel": members["channel"],
            "sent_at": pa.array([sent_at] * n, pa.timestamp("us")),
            "opened_at": pa.nulls(n, pa.timestamp("us")),
            "clicked_at": pa.nulls(n, pa.timestamp("us")),
            "is_control": pa.array([False] * n),
            "campaign_key": members["campaign_key"],
        }
    )


def _extra_orders(
    members: pa.Table,
    uplift: float,
    sent_at: datetime,
    window_days: int,
    rng: np.random.Generator,
    prefix: str,
) -> pa.Table:
    buys = rng.random(members.num_rows) < uplift
    buyers = members.filter(pa.array(buys))
    n = buyers.num_rows
    # Whole seconds inside the window, never at its very end.
    offsets = rng.integers(0, window_days * 86_400 - 3_600, n)
    low, high = EXTRA_ORDER_TOTAL
    return pa.table(
        {
            "order_id": [f"{prefix}{i:08d}" for i in range(n)],
            "customer_id": buyers["customer_id"],
            "ordered_at": pa.array(
                [sent_at + timedelta(seconds=int(s)) for s in offsets], pa.timestamp("us")
            ),
            "status": ["completed"] * n,
            "order_total": np.round(rng.uniform(low, high, n), 2),
            "discount_total": [0.0] * n,
            "channel": ["web"] * n,
        }
    )


def _append_parquet(path: Path, rows: pa.Table) -> None:
    existing = pq.read_table(path)
    for field in rows.schema:
        if field.name not in existing.column_names:
            existing = existing.append_column(field.name, pa.nulls(existing.num_rows, field.type))
    columns = {
        field.name: rows[field.name]
        if field.name in rows.column_names
        else pa.nulls(rows.num_rows, field.type)
        for field in existing.schema
    }
    rows = pa.table(columns).cast(existing.schema)
    pq.write_table(pa.concat_tables([existing, rows]), path)


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _append_csv(path: Path, rows: pa.Table) -> None:
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        missing = set(rows.column_names) - set(header)
        if "campaign_key" in missing:
            raise ValueError(
                f"{path} has no campaign_key column: add it (or use Parquet) before appending"
                " touches that reference an export"
            )
    else:
        header = rows.column_names
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    if not path.exists():
        writer.writerow(header)
    for row in rows.to_pylist():
        writer.writerow([_csv_value(row.get(name)) for name in header])
    with path.open("a", encoding="utf-8", newline="") as handle:
        if path.stat().st_size and not _ends_with_newline(path):
            handle.write("\n")
        handle.write(buffer.getvalue())


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _append(raw_dir: Path, table: str, rows: pa.Table) -> None:
    parquet = raw_dir / f"{table}.parquet"
    if parquet.exists():
        _append_parquet(parquet, rows)
    else:
        _append_csv(raw_dir / f"{table}.csv", rows)


def run_exported_campaign(
    raw_dir: Path,
    export_dir: Path,
    uplifts: dict[str, float],
    sent_at: datetime,
    window_days: int = 14,
    seed: int = 0,
) -> CampaignRun:
    """Add the touches and extra purchases of running exported audiences to a shop's raw files.

    Parameters
    ----------
    raw_dir : pathlib.Path
        The shop's raw files (``orders`` and, if present, ``campaign_touches``), changed in place.
    export_dir : pathlib.Path
        One export, ``exports/<as_of>/``: ``<audience>.parquet`` per audience (treated members).
    uplifts : dict of str to float
        Per audience to send: the share of its treated members who buy once more because of it,
        in [0, 1]; 0 is a placebo.
    sent_at : datetime
        When the shop sends every touch (after the export's as_of).
    window_days : int
        Extra purchases fall in [sent_at, sent_at + window_days).
    seed : int
        Seed of who buys, when and for how much.

    Returns
    -------
    CampaignRun
        Touches and extra orders written per campaign_key.
    """
    rng = np.random.default_rng(seed)
    n_touches, n_orders = {}, {}
    for index, (audience, uplift) in enumerate(sorted(uplifts.items())):
        if not 0 <= uplift <= 1:
            raise ValueError(f"uplift of {audience} must be in [0, 1], got {uplift}")
        members = _treated_members(export_dir, audience)
        touches = _touches(members, sent_at, prefix=f"TL{index:02d}")
        orders = _extra_orders(members, uplift, sent_at, window_days, rng, f"OL{index:02d}")
        _append(raw_dir, "campaign_touches", touches)
        _append(raw_dir, "orders", orders)
        key = f"{audience}-{export_dir.name}"
        n_touches[key], n_orders[key] = touches.num_rows, orders.num_rows
    return CampaignRun(n_touches=n_touches, n_extra_orders=n_orders)
