"""What a run did without: absent optional tables and consent, and what each one empties.

A shop with only customers and orders is a first-class user (README, the raw data contract): its
run succeeds, and this module says once what the missing parts cost. Each gap has one line for
the run's output (`warning:` when the run delivers less than a marketer expects, i.e. no
audiences; `note:` for an optional table) and one sentence for the report, shown in place of the
sections the gap empties. The CLI, the report and the audience export all read the same gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ml.config import Settings
from ml.warehouse import connect, table_exists

CONSENT_COLUMN = "marketing_opt_in"
"""The raw contract's consent column (customers.marketing_opt_in)."""


@dataclass(frozen=True)
class Coverage:
    """What the working warehouse holds of the contract's optional parts.

    Attributes
    ----------
    n_raw_rows, n_accepted : dict of str to int
        Rows read and rows accepted per raw table (core.data_reconciliation); a table absent
        from both is unknown and never reported as a gap.
    n_opted_in : int or None
        Customers with marketing consent (core.customers), None when unknown.
    consent_column_loaded : bool or None
        Whether the customers file had a consent column (raw.files), None when unknown.
    n_orders_with_amount : int or None
        Accepted orders that carry an order_total (core.orders), None when unknown.
    """

    n_raw_rows: dict[str, int] = field(default_factory=dict)
    n_accepted: dict[str, int] = field(default_factory=dict)
    n_opted_in: int | None = None
    consent_column_loaded: bool | None = None
    n_orders_with_amount: int | None = None


@dataclass(frozen=True)
class Gap:
    """One missing part of the data and what it costs.

    Attributes
    ----------
    key : str
        `consent`, `campaign_touches`, `recommendations`, `order_amounts` or `web_events`.
    line : str
        The single line the run prints (and keeps in its summary).
    sentence : str
        The report's sentence, in place of `sections` (or as a note when there are none).
    sections : tuple of str
        Report chart names this gap empties.
    """

    key: str
    line: str
    sentence: str
    sections: tuple[str, ...] = ()

    @property
    def is_warning(self) -> bool:
        """Whether the run delivers less than asked (audiences), not just an optional table."""
        return self.line.startswith("warning:")


def _not_loaded(coverage: Coverage, table: str) -> bool:
    return table in coverage.n_accepted and coverage.n_accepted[table] == 0


def _loaded_phrase(coverage: Coverage, tables: list[tuple[str, str]]) -> str:
    """'No order items were loaded', or why rows read were all refused."""
    labels = " or ".join(label for _, label in tables)
    n_read = sum(coverage.n_raw_rows.get(table, 0) for table, _ in tables)
    if n_read:
        return (
            f"No {labels} passed staging ({n_read:,} rows read, all quarantined:"
            " see core.quarantined_rows)"
        )
    return f"No {labels} were loaded"


def consent_gap(coverage: Coverage) -> Gap | None:
    """The gap when no customer has marketing consent, so no audience can be selected."""
    if coverage.n_opted_in is None or coverage.n_opted_in > 0:
        return None
    if coverage.consent_column_loaded is False:
        why = f"no {CONSENT_COLUMN} column"
        fix = "map a consent column to select audiences"
    else:
        why = f"{CONSENT_COLUMN} is false or empty for every customer"
        fix = f"check the {CONSENT_COLUMN} values to select audiences"
    return Gap(
        key="consent",
        line=f"warning: no customer has marketing consent ({why}): audiences are empty; {fix}",
        sentence=f"No customer has marketing consent ({why}), so no audience was selected: {fix}.",
        sections=("audiences",),
    )


def find_gaps(coverage: Coverage) -> list[Gap]:
    """Every gap of a run, consent first.

    Parameters
    ----------
    coverage : Coverage
        What the warehouse holds (see `read_coverage`).

    Returns
    -------
    list of Gap
        Empty for a shop that loaded every optional table and has consenting customers.
    """
    gaps = [gap for gap in [consent_gap(coverage)] if gap is not None]
    if _not_loaded(coverage, "campaign_touches"):
        phrase = _loaded_phrase(coverage, [("campaign_touches", "campaign touches")])
        gaps.append(
            Gap(
                key="campaign_touches",
                line=f"note: {phrase.lower()}: campaign results are empty",
                sentence=f"{phrase}: campaign results are empty.",
                sections=("campaigns",),
            )
        )
    baskets = [
        (table, label)
        for table, label in (("order_items", "order items"), ("products", "products"))
        if _not_loaded(coverage, table)
    ]
    if baskets:
        phrase = _loaded_phrase(coverage, baskets)
        gaps.append(
            Gap(
                key="recommendations",
                line=f"note: {phrase.lower()}: product recommendations are empty",
                sentence=f"{phrase}: product recommendations, which need the categories of each"
                " basket, are empty.",
                sections=("recommendations",),
            )
        )
    if coverage.n_orders_with_amount == 0 and coverage.n_accepted.get("orders", 0) > 0:
        gaps.append(
            Gap(
                key="order_amounts",
                line="note: the orders carry no amounts (no order_total): revenue features are"
                " imputed, and the audience chosen by spend (vip_care) selects no one",
                sentence="The orders carry no amounts (no order_total): revenue features are"
                " imputed, every customer has the same monetary RFM score, so no one is in the"
                " vip stage and vip_care selects no one.",
            )
        )
    if _not_loaded(coverage, "web_events"):
        phrase = _loaded_phrase(coverage, [("web_events", "web events")])
        gaps.append(
            Gap(
                key="web_events",
                line=f"note: {phrase.lower()}: browsing features are null and imputed",
                sentence=f"{phrase}: browsing features are null and imputed.",
            )
        )
    return gaps


def read_coverage(con: duckdb.DuckDBPyConnection) -> Coverage:
    """Read what the warehouse holds; parts it cannot tell stay unknown (never a false gap)."""
    n_raw_rows: dict[str, int] = {}
    n_accepted: dict[str, int] = {}
    if table_exists(con, "core.data_reconciliation"):
        rows = con.execute(
            "select source_table, coalesce(n_raw_rows, 0), coalesce(n_accepted, 0)"
            " from core.data_reconciliation"
        ).fetchall()
        n_raw_rows = {table: int(n_raw) for table, n_raw, _ in rows}
        n_accepted = {table: int(accepted) for table, _, accepted in rows}
    n_opted_in = None
    if table_exists(con, "core.customers"):
        (n_opted_in,) = con.execute(
            "select count(*) filter (where is_marketing_opt_in) from core.customers"
        ).fetchone()
    n_orders_with_amount = None
    if table_exists(con, "core.orders"):
        (n_orders_with_amount,) = con.execute(
            "select count(order_total) from core.orders"
        ).fetchone()
    return Coverage(
        n_raw_rows=n_raw_rows,
        n_accepted=n_accepted,
        n_opted_in=n_opted_in,
        consent_column_loaded=_consent_column_loaded(con),
        n_orders_with_amount=n_orders_with_amount,
    )


def _consent_column_loaded(con: duckdb.DuckDBPyConnection) -> bool | None:
    if not table_exists(con, "raw.files"):
        return None
    info = con.execute("select name from pragma_table_info('raw.files')").fetchall()
    columns = {name for (name,) in info}
    if "columns_missing" not in columns:
        return None
    row = con.execute(
        "select list_contains(columns_missing, ?) from raw.files where table_name = 'customers'",
        [CONSENT_COLUMN],
    ).fetchone()
    # No customers file at all (customers derived from orders): no consent column either.
    return row is not None and not row[0]


def data_gaps(settings: Settings) -> list[Gap]:
    """The gaps of the working warehouse (read-only), consent first."""
    with connect(settings.warehouse, read_only=True) as con:
        return find_gaps(read_coverage(con))
