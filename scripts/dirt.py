"""Deliberate dirt injected on top of the clean simulation in ``scripts.generate``.

Every rate below is the per-row (or per-customer) probability of an independent Bernoulli draw,
so realised counts scatter binomially around ``rate * rows``; the counts in ``DIRT_COUNTS`` are
exact per dataset (all placed in the first chunk). The dirt draws come from their own random
stream, so changing dirt never changes the clean simulation, and the oracle in
``scripts.ground_truth`` ignores every injected row.

customers
    ``customer_reloaded`` (3%): the customer appears twice with the same ``customer_id``. The
    first row carries stale values of one to three of ``city`` (another city of the same
    region), ``income`` (5-25% lower) and ``marketing_opt_in`` (flipped), with
    ``updated_at = created_at``; the extra row, appended at the end of its chunk, carries the
    true values and a later ``updated_at``. The latest ``updated_at`` is the truth, and campaign
    targeting used the stale opt-in before that time.
    ``birth_date_missing``, ``income_missing``, ``gender_missing`` (10% each): null.
    ``gender_variant_spelling`` (30% of non-null genders): "F", " Female ", "FEMALE", "f",
    "M", "male ", "Male ", "m", "MALE", "X", "Non-binary", "nonbinary" instead of the canonical
    "female" / "male" / "non-binary".
    ``region_variant_spelling`` (20%): "North", " north", "NORTH " instead of "north".
    ``channel_variant_spelling`` (5%): "Paid_Search" / "PAID_SEARCH" instead of "paid_search";
    the same rate applies to ``orders.channel`` and ``campaign_touches.channel``.
    ``birth_date_future`` (0.05%): a birth date after ``DATA_END``.
    ``income_absurd`` (3 customers): income 1e12.
orders
    ``order_before_signup`` (0.1% of clean orders): an extra order (new ``order_id``, no items)
    for the same customer dated up to 90 days before the customer's ``created_at``.
    ``order_customer_missing`` (0.05% of clean orders): an extra order (new ``order_id``, no
    items) whose ``customer_id`` belongs to no customer.
    ``order_total_negative`` (5 orders): ``order_total`` negated.
    ``orders_duplicate`` (0.2%): the row is written twice, identically.
order_items
    ``unit_price_negative`` (0.1%): ``unit_price`` negated.
    ``quantity_zero`` (0.1%): ``quantity`` 0.
    ``quantity_absurd`` (3 items): ``quantity`` 100000.
    ``order_item_orphan`` (0.2% of clean items): an extra item whose ``order_id`` ("O9...")
    belongs to no order.
    ``order_items_duplicate`` (0.2%): the row is written twice, identically.
products
    ``list_price_negative`` (0.1% of the catalogue, rounded: 3 of 3000): ``list_price`` negated.
web_events
    ``web_events_duplicate`` (0.2%): the row is written twice, identically.
shapes
    ``minimal`` keeps the dirt of the columns it writes (re-loaded customers, extra and
    duplicate orders, negative totals, malformed CSV lines); the dirt of dropped columns and
    tables is drawn all the same, so it is the standard shop cut down.
    ``transactions`` keeps only ``orders_duplicate``: the purchase is written twice, as two
    identical lines (a log has no profile or order id to contradict, so they read as two
    purchases). No malformed lines.
CSV only
    ``MALFORMED_CSV_EVENTS`` per table, spread evenly over the chunks at random rows: a line
    with too few fields, a line with too many fields, and a line with an unterminated quote
    followed by a too-few-fields line (a quote-aware parser swallows the line after an
    unterminated quote, so the victim is itself malformed and no clean row is lost). Each
    malformed line is a mangled copy of the clean row written just before it. Their physical
    line numbers (header = line 1) are listed in ``ground_truth/malformed_csv_lines.json``.
    DuckDB recovers exactly the clean rows with ``read_csv(path, auto_detect=false,
    header=true, delim=',', quote='"', escape='"', columns={...contract types...},
    store_rejects=true)``; with auto-detection the sniffer can miss the quote character, and
    ``ignore_errors=true`` on its own drops clean rows after an unterminated quote.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

DIRT_RATES: dict[str, float] = {
    "customer_reloaded": 0.03,
    "birth_date_missing": 0.10,
    "income_missing": 0.10,
    "gender_missing": 0.10,
    "gender_variant_spelling": 0.30,
    "region_variant_spelling": 0.20,
    "channel_variant_spelling": 0.05,
    "birth_date_future": 0.0005,
    "order_before_signup": 0.001,
    "order_customer_missing": 0.0005,
    "orders_duplicate": 0.002,
    "unit_price_negative": 0.001,
    "quantity_zero": 0.001,
    "order_item_orphan": 0.002,
    "order_items_duplicate": 0.002,
    "list_price_negative": 0.001,
    "web_events_duplicate": 0.002,
}
"""Documented dirt rates; see the module docstring for what each one does."""

DIRT_COUNTS: dict[str, int] = {
    "income_absurd": 3,
    "order_total_negative": 5,
    "quantity_absurd": 3,
}
"""Exact numbers of absurd values per dataset (fewer only if the first chunk is tiny)."""

ABSURD_INCOME = 1e12
ABSURD_QUANTITY = 100_000

MALFORMED_CSV_EVENTS: dict[str, int] = {
    "customers": 3,
    "orders": 4,
    "order_items": 4,
    "web_events": 6,
    "campaign_touches": 3,
}
"""Malformed-line events per CSV table; an unterminated-quote event writes two lines."""

MALFORMED_KINDS = ("too_few_fields", "too_many_fields", "unterminated_quote")

GENDER_VARIANTS: tuple[tuple[str, ...], ...] = (
    ("F", " Female ", "FEMALE", "f", "Female"),
    ("M", "male ", "Male ", "m", "MALE"),
    ("X", "Non-binary", "nonbinary"),
)
"""Variant spellings per canonical gender (female, male, non-binary)."""


def case_variants(canonical: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Return title- and upper-case variants of each canonical label.

    Parameters
    ----------
    canonical : sequence of str
        Canonical lower-case labels.

    Returns
    -------
    tuple of tuple of str
        Two variants per label.
    """
    return tuple((label.title(), label.upper()) for label in canonical)


def padded_case_variants(canonical: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Return case variants with stray whitespace ("North", " north", "NORTH ").

    Parameters
    ----------
    canonical : sequence of str
        Canonical lower-case labels.

    Returns
    -------
    tuple of tuple of str
        Three variants per label.
    """
    return tuple((label.title(), f" {label}", f"{label.upper()} ") for label in canonical)


def spelled(
    codes: np.ndarray,
    canonical: Sequence[str],
    variants: Sequence[Sequence[str]],
    variant_rate: float,
    rng: np.random.Generator,
    missing: np.ndarray | None = None,
) -> pa.DictionaryArray:
    """Turn integer codes into strings, some of them in a variant spelling.

    Parameters
    ----------
    codes : numpy.ndarray
        Integer index into ``canonical`` per row.
    canonical : sequence of str
        Canonical labels.
    variants : sequence of sequence of str
        Variant spellings per canonical label.
    variant_rate : float
        Probability that a row uses a (uniformly chosen) variant.
    rng : numpy.random.Generator
        Dirt random stream.
    missing : numpy.ndarray, optional
        Boolean mask of rows to null.

    Returns
    -------
    pyarrow.DictionaryArray
        Dictionary-encoded strings (int32 indices).
    """
    vocabulary = list(canonical) + [spelling for group in variants for spelling in group]
    n_variants = np.array([len(group) for group in variants])
    first_variant = len(canonical) + np.cumsum(n_variants) - n_variants
    use_variant = rng.random(len(codes)) < variant_rate
    which = rng.integers(0, n_variants[codes])
    index = np.where(use_variant, first_variant[codes] + which, codes).astype(np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(index, mask=missing), pa.array(vocabulary, pa.string())
    )


def flag(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Return a Bernoulli(rate) boolean mask of length ``n``.

    Parameters
    ----------
    n : int
        Number of rows.
    rate : float
        Probability of True.
    rng : numpy.random.Generator
        Dirt random stream.

    Returns
    -------
    numpy.ndarray
        Boolean mask.
    """
    return rng.random(n) < rate


def pick_exact(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``min(count, n)`` distinct row indices, sorted.

    Parameters
    ----------
    n : int
        Number of rows to choose from.
    count : int
        How many to choose.
    rng : numpy.random.Generator
        Dirt random stream.

    Returns
    -------
    numpy.ndarray
        Sorted int64 indices.
    """
    return np.sort(rng.choice(n, size=min(count, n), replace=False)).astype(np.int64)


def duplicated_rows(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Return row indices in which a Bernoulli(rate) sample of rows appears twice in a row.

    Parameters
    ----------
    n : int
        Number of rows.
    rate : float
        Per-row probability of an exact duplicate.
    rng : numpy.random.Generator
        Dirt random stream.

    Returns
    -------
    numpy.ndarray
        Sorted int64 indices into the ``n`` rows; take every column with them.
    """
    return np.repeat(np.arange(n), 1 + flag(n, rate, rng))


def malformed_lines(clean_line: str, kind: str) -> list[str]:
    """Mangle one rendered CSV line into the lines of a malformed-line event.

    Parameters
    ----------
    clean_line : str
        A clean data line without its newline, as the CSV writer rendered it.
    kind : str
        One of ``MALFORMED_KINDS``.

    Returns
    -------
    list of str
        One line (two for ``unterminated_quote``), without newlines.
    """
    fields = clean_line.split(",")
    too_few = ",".join(fields[: max(1, len(fields) // 2)])
    if kind == "too_few_fields":
        return [too_few]
    if kind == "too_many_fields":
        return [f'{clean_line},"unexpected",42']
    if kind == "unterminated_quote":
        last = fields[-1].strip('"')
        return [",".join([*fields[:-1], f'"{last}']), too_few]
    raise ValueError(f"unknown malformed-line kind {kind!r}; expected one of {MALFORMED_KINDS}")
