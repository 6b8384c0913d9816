"""A weekly drop: a generated shop cut into its history and its last week, as folders of files.

The event tables become folders (`orders/history.parquet`, later `orders/week.parquet`), the way
a shop exporting every week delivers them; customers and products stay one file each. The
harness builds the history once, then times the build and the run that add the week.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

WEEK_DAYS = 7
# The event tables, each with the timestamp that dates a row (order_items go with their order).
DATED_TABLES = {"orders": "ordered_at", "web_events": "event_at", "campaign_touches": "sent_at"}


def split_last_week(raw_dir: Path, history_dir: Path, week_dir: Path) -> str:
    """Write `raw_dir`'s shop as history (every table) and week (the event tables' last
    `WEEK_DAYS` days); return the first day of the week.

    A row whose date does not parse stays in the history: the build quarantines it either way.
    """
    for directory in (history_dir, week_dir):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"create view orders as select * from {_read(raw_dir / 'orders.parquet')}")
        (cutoff,) = con.execute(
            f"select max(try_cast(ordered_at as date)) - {WEEK_DAYS - 1} from orders"
        ).fetchall()[0]
        for path in sorted(raw_dir.glob("*.parquet")):
            table = path.stem
            in_week = _in_week(table, f"date '{cutoff}'")
            if in_week is None:
                shutil.copy(path, history_dir / path.name)
                continue
            for directory, keep in ((history_dir, f"not ({in_week})"), (week_dir, in_week)):
                (directory / table).mkdir()
                part = "history" if directory == history_dir else "week"
                con.execute(
                    f"copy (select * from {_read(path)} where {keep}) "
                    f"to '{directory / table / part}.parquet' (format parquet)"
                )
    return str(cutoff)


def _in_week(table: str, cutoff: str) -> str | None:
    """The condition a row of `table` meets when it belongs to the last week (None: a table
    delivered whole every time)."""
    if table in DATED_TABLES:
        return f"coalesce(try_cast({DATED_TABLES[table]} as date) >= {cutoff}, false)"
    if table == "order_items":
        return (
            "order_id in (select order_id from orders "
            f"where try_cast(ordered_at as date) >= {cutoff})"
        )
    return None


def _read(path: Path) -> str:
    return "read_parquet('" + str(path).replace("'", "''") + "')"


def add_week(week_dir: Path, raw_dir: Path) -> None:
    """Drop the week's files into the raw folders, as the shop's weekly export would."""
    for path in week_dir.glob("*/*.parquet"):
        shutil.copy(path, raw_dir / path.parent.name / path.name)


def remove_week(week_dir: Path, raw_dir: Path) -> None:
    for path in week_dir.glob("*/*.parquet"):
        (raw_dir / path.parent.name / path.name).unlink(missing_ok=True)
