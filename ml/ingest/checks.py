"""What a build's landing says about the data: shares of rows whose timestamps did not parse."""

from __future__ import annotations

from ml import warehouse
from ml.config import Settings

# Above this share of a table's rows, unparsable timestamps are a format problem, not dirt.
UNPARSABLE_SHARE_WARNING = 0.01


def landing_warnings(settings: Settings) -> list[str]:
    """One line per raw table where more than 1% of rows had a timestamp that did not parse."""
    sql = """
        select
            quarantined.source_table,
            quarantined.rule,
            count(*) as n_rows,
            json_extract_string(
                any_value(quarantined.raw_record),
                '$.' || regexp_extract(quarantined.rule, 'invalid_(.*)', 1)
            ) as example,
            any_value(reconciliation.n_raw_rows) as n_raw_rows
        from core.quarantined_rows as quarantined
        inner join core.data_reconciliation as reconciliation
            on quarantined.source_table = reconciliation.source_table
        where quarantined.rule like 'invalid\\_%\\_at' escape '\\'
        group by quarantined.source_table, quarantined.rule
        having count(*) > ? * any_value(reconciliation.n_raw_rows)
        order by 1, 2
    """
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        if not warehouse.table_exists(con, "core.quarantined_rows"):
            return []
        rows = con.execute(sql, [UNPARSABLE_SHARE_WARNING]).fetchall()
    return [
        f"{table}: {n_rows / n_raw:.1%} of rows quarantined as {rule} (e.g. {example!r}): "
        "if that is a date format, state it in a mapping (timestamp_format)"
        for table, rule, n_rows, example, n_raw in rows
    ]
