"""Generate a synthetic e-commerce shop with known latent customer behaviour.

Every customer has a latent persona (``PERSONAS``) that sets the distributions of their
parameters: signup time, base purchase rate, first-order probability, basket size, premium
share (spend level), category preferences, discount affinity, browse intensity, campaign
response and, for drop-out personas, a decline start and decay time. Purchases follow the
piecewise-constant weekly Poisson process documented in ``scripts.ground_truth``; web sessions
follow the same shape with the browse rate; campaign touches go to opted-in customers on a fixed
schedule of campaigns, with 10% held out as controls (recorded, never delivered). Campaigns have
no effect on purchases.

``generate`` writes one file per table to ``<out_dir>/raw/`` (the contract the warehouse
reads) and the ground truth to ``<out_dir>/ground_truth/`` (never read by the pipeline). Data
are a deterministic function of ``(n_customers, seed, chunk_size)``: chunk ``k`` draws from
``numpy.random.SeedSequence(seed, spawn_key=(k,))``, and the product catalogue and campaign
schedule depend on ``seed`` only. Dirt is injected on top, see ``scripts.dirt``.

Calendar: ``DATA_START`` (inclusive) to ``DATA_END`` (exclusive), independent of today.
Timestamps are naive UTC whole seconds; CSV renders them as ``YYYY-MM-DD HH:MM:SS``, booleans
as ``true``/``false``, nulls as empty fields and every string quoted. Parquet files carry no
Arrow schema blob, so readers see plain string columns (written dictionary-encoded) and
min/max statistics only on non-string columns.

Volumes per million customers (seed-dependent, within a few percent): 1.03M customer rows,
9.8M orders, 24M order items, 55M web events (28% anonymous), 2.4M campaign touches, and the
same 3,000 products for every ``n_customers``.

Ids: ``C`` + 7 digits (more if ``n_customers`` needs them), ``O``/``E``/``S``/``T`` + 11
digits, ``P`` + 5 digits, ``CMP`` + 3 digits. Order and event ids count up in chunk order.
Orders of non-existent customers use customer numbers above ``n_customers``; orphan order
items use order numbers from ``ORPHAN_ORDER_NUMBER``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from scripts import dirt
from scripts.ground_truth import (
    DATA_END,
    DATA_SECONDS,
    DATA_START,
    FIRST_ORDER_MEAN_DELAY_DAYS,
    GROUND_TRUTH_DIR,
    N_WEEKS,
    SECONDS_PER_DAY,
    SECONDS_PER_WEEK,
    seasonality,
    week_bounds,
    weekly_profile,
)

__all__ = [
    "DATA_END",
    "DATA_START",
    "PERSONAS",
    "RAW_TABLES",
    "GenerationSummary",
    "generate",
]

RAW_TABLES = (
    "customers",
    "orders",
    "order_items",
    "products",
    "web_events",
    "campaign_touches",
)
"""Raw tables written under ``<out_dir>/raw/``."""


@dataclass(frozen=True)
class Persona:
    """Distribution of latent parameters for one kind of customer.

    Rates are per week at season 1; ``(a, b)`` pairs are Beta parameters.
    """

    name: str
    share: float
    rate_per_week: float
    first_order_prob: float
    basket_mean: float
    premium: tuple[float, float]
    discount: tuple[float, float]
    browse_per_week: float
    browse_depth: float
    cart_prob: float
    response: tuple[float, float]
    return_prob: float
    decline_prob: float
    decline_after_weeks: tuple[float, float] = (8.0, 80.0)
    decline_tau_weeks: tuple[float, float] = (4.0, 20.0)
    signup_days: tuple[float, float] = (0.0, 641.0)


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "loyal_high_spender", 0.08, 0.50, 0.9, 3.0, (6, 2), (2, 6), 0.06, 2.5, 0.15, (5, 3),
        0.04, 0.05,
    ),
    Persona(
        "regular", 0.24, 0.21, 0.7, 2.3, (3, 3), (2, 4), 0.03, 2.0, 0.10, (2, 5), 0.06, 0.10,
    ),
    Persona(
        "bargain_hunter", 0.14, 0.20, 0.6, 2.6, (1.5, 5), (6, 2), 0.07, 3.0, 0.20, (4, 3),
        0.09, 0.15,
    ),
    Persona(
        "one_time_buyer", 0.14, 0.004, 1.0, 1.6, (2, 3), (3, 3), 0.01, 1.5, 0.10, (1, 8),
        0.08, 0.0,
    ),
    Persona(
        "window_shopper", 0.12, 0.015, 0.1, 1.5, (3, 3), (3, 3), 0.30, 4.0, 0.35, (3, 4), 0.06,
        0.0,
    ),
    Persona(
        "lapsing_regular", 0.15, 0.30, 0.7, 2.2, (3, 3), (2, 4), 0.03, 2.0, 0.10, (2, 5), 0.06,
        1.0, decline_after_weeks=(8.0, 40.0), decline_tau_weeks=(3.0, 10.0),
        signup_days=(0.0, 440.0),
    ),
    Persona(
        "new_customer", 0.13, 0.30, 0.85, 2.2, (3, 3), (3, 3), 0.06, 2.5, 0.15, (3, 4), 0.06,
        0.0, signup_days=(611.0, 731.0),
    ),
)  # fmt: skip
"""The latent personas; shares sum to 1."""

CANCEL_PROB = 0.06
"""Probability that an order is cancelled (independent of everything, as the oracle assumes)."""
RATE_SHAPE = 3.0
"""Gamma shape of a customer's purchase rate around the persona mean (CV = 1/sqrt(3))."""
BROWSE_SHAPE = 2.0
ANON_SESSIONS_PER_CUSTOMER = 6.5
"""Anonymous visitor sessions per simulated customer over the two years."""
ANON_BROWSE_DEPTH = 1.3
EVENT_GAP_SECONDS = 45.0

CATEGORIES = (
    "electronics", "fashion", "home", "beauty", "sports",
    "toys", "grocery", "books", "garden", "pets",
)  # fmt: skip
PRODUCTS_PER_CATEGORY = (300, 600, 400, 300, 250, 250, 350, 300, 150, 100)
MEDIAN_PRICE = (120.0, 40.0, 50.0, 20.0, 45.0, 25.0, 6.0, 15.0, 35.0, 18.0)
EXTRA_QUANTITY = (0.05, 0.1, 0.15, 0.3, 0.1, 0.15, 1.2, 0.1, 0.2, 0.6)
"""Mean of ``quantity - 1`` per category."""
CATEGORY_PREFERENCE_ALPHA = 0.6
POPULARITY_BINS = 4096
"""Resolution of product popularity within a (category, tier) group."""
BRANDS_PER_CATEGORY = 6
BRAND_STEMS = (
    "Acme", "Nova", "Vireo", "Lumen", "Kestrel", "Orbit", "Tundra", "Quill", "Maple", "Zephyr",
    "Cobalt", "Juniper", "Atlas", "Ember", "Harbor", "Pico", "Sable", "Willow", "Onyx", "Fable",
)  # fmt: skip

GENDERS = ("female", "male", "non-binary")
GENDER_SHARES = (0.50, 0.47, 0.03)
REGIONS = ("north", "south", "east", "west", "central")
REGION_SHARES = (0.18, 0.22, 0.20, 0.20, 0.20)
CITIES = (
    ("Aldbury", "Northam", "Kestrel Bay"),
    ("Southport", "Marlow", "Brightwater"),
    ("Eastfield", "Harrowgate", "Linden"),
    ("Westmere", "Ashford", "Redcliff"),
    ("Midvale", "Centralia", "Oakham"),
)
CITY_SHARES = (0.5, 0.3, 0.2)
ACQUISITION_CHANNELS = (
    "organic", "paid_search", "social", "referral", "email", "affiliate", "display",
)  # fmt: skip
ACQUISITION_SHARES = (0.30, 0.22, 0.18, 0.10, 0.08, 0.07, 0.05)
ORDER_CHANNELS = ("web", "app", "store", "marketplace")
ORDER_CHANNEL_SHARES = (0.32, 0.18, 0.28, 0.22)
ONLINE_CHANNELS = 2
"""The first two order channels come with a web session leading to the order."""
STATUSES = ("completed", "cancelled", "returned")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout")
TOUCH_CHANNELS = ("email", "sms", "push", "ads")
TOUCH_CHANNEL_SHARES = (0.5, 0.2, 0.2, 0.1)
TOUCH_OPEN_FACTOR = (1.0, 0.9, 0.6, 0.25)
N_CAMPAIGNS = 26
CONTROL_SHARE = 0.10
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")

ORDER_ID_WIDTH = 11
ORPHAN_ORDER_NUMBER = 90_000_000_000
"""Orphan items reference order numbers from here on; real orders never get that far."""
EVENT_ID_WIDTH = 11
SESSION_ID_WIDTH = 11
TOUCH_ID_WIDTH = 11
PRODUCT_ID_WIDTH = 5

_PRODUCTS_KEY = 2**31 - 1
_CAMPAIGNS_KEY = 2**31 - 2
_MALFORMED_KEY = 2**31 - 3
_EPOCH_SECONDS = int((np.datetime64(DATA_START, "s") - np.datetime64(0, "s")).astype(np.int64))

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


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate`` wrote.

    ``row_counts`` counts data rows per raw table including injected dirt rows, excluding CSV
    malformed lines (counted in ``malformed_lines``).
    """

    n_customers: int
    seed: int
    fmt: str
    out_dir: Path
    raw_paths: Mapping[str, Path]
    ground_truth_dir: Path
    row_counts: Mapping[str, int]
    malformed_lines: Mapping[str, int] = field(default_factory=dict)


def generate(
    n_customers: int,
    seed: int,
    out_dir: Path,
    fmt: Literal["parquet", "csv"] = "parquet",
    chunk_size: int = 50_000,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Simulate the shop and write the raw tables and the ground truth.

    Parameters
    ----------
    n_customers : int
        Number of real customers (reloaded customers add rows, not customers).
    seed : int
        Random seed; the same arguments give byte-identical files.
    out_dir : Path
        Output directory; ``raw/`` and ``ground_truth/`` inside it are replaced.
    fmt : {"parquet", "csv"}
        File format of the raw tables (ground truth is always parquet).
    chunk_size : int
        Customers simulated per chunk; bounds memory and is part of the data's identity.
    progress : callable, optional
        Called as ``progress(done_customers, n_customers)`` after each chunk is written.

    Returns
    -------
    GenerationSummary
        Paths and row counts.

    Examples
    --------
    >>> summary = generate(1_000, seed=7, out_dir=Path("data/demo"))  # doctest: +SKIP
    >>> summary.row_counts["orders"]  # doctest: +SKIP
    """
    if n_customers < 1:
        raise ValueError(f"n_customers must be >= 1, got {n_customers}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")

    out_dir = Path(out_dir)
    raw_dir = out_dir / "raw"
    truth_dir = out_dir / GROUND_TRUTH_DIR
    for directory in (raw_dir, truth_dir):
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)

    catalogue = _build_catalogue(seed)
    campaigns = _build_campaigns(seed)
    n_chunks = -(-n_customers // chunk_size)
    malformed_plan = _plan_malformed_lines(seed, n_chunks) if fmt == "csv" else {}
    ids = _IdSpace(customer_width=max(7, len(str(2 * n_customers + 10))))
    counters = _Counters(ghost_customer=n_customers + 1)

    paths = {name: raw_dir / f"{name}.{fmt}" for name in RAW_TABLES}
    writers = {
        name: _RawWriter(paths[name], name, fmt, malformed_plan.get(name, {}))
        for name in RAW_TABLES
    }
    truth_writer: pq.ParquetWriter | None = None
    try:
        writers["products"].write(_products_table(catalogue, seed), chunk_index=0)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future[None] | None = None
            done_customers = 0
            for chunk_index in range(n_chunks):
                start = chunk_index * chunk_size
                stop = min(start + chunk_size, n_customers)
                tables, truth = _simulate_chunk(
                    chunk_index, start, stop, seed, catalogue, campaigns, ids, counters
                )
                if truth_writer is None:
                    truth_writer = pq.ParquetWriter(truth_dir / "customers.parquet", truth.schema)
                if pending is not None:
                    pending.result()
                    _report(progress, done_customers, n_customers)
                pending = pool.submit(
                    _write_chunk, writers, truth_writer, tables, truth, chunk_index
                )
                done_customers = stop
            if pending is not None:
                pending.result()
                _report(progress, done_customers, n_customers)
    finally:
        for writer in writers.values():
            writer.close()
        if truth_writer is not None:
            truth_writer.close()

    _write_truth_extras(truth_dir, campaigns, writers, n_customers, seed, fmt, chunk_size)
    return GenerationSummary(
        n_customers=n_customers,
        seed=seed,
        fmt=fmt,
        out_dir=out_dir,
        raw_paths=paths,
        ground_truth_dir=truth_dir,
        row_counts={name: writer.rows for name, writer in writers.items()},
        malformed_lines={
            name: len(writer.malformed_line_numbers) for name, writer in writers.items()
        },
    )


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# --------------------------------------------------------------------------------------------
# Catalogue and campaign schedule (depend on the seed only)


@dataclass(frozen=True)
class _Catalogue:
    category: np.ndarray
    premium: np.ndarray
    list_price: np.ndarray
    brand: np.ndarray
    lookup: np.ndarray
    """Row ``g``: ``POPULARITY_BINS`` products of group ``g`` (category * 2 + premium tier),
    each repeated in proportion to its popularity, so a draw is one gather."""

    @property
    def size(self) -> int:
        return len(self.category)

    def sample(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one product per row from its (category, tier) group by popularity."""
        return self.lookup.ravel()[
            group * POPULARITY_BINS + rng.integers(0, POPULARITY_BINS, len(group))
        ]


def _build_catalogue(seed: int) -> _Catalogue:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_PRODUCTS_KEY,)))
    category = np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)
    raw_price = np.exp(
        np.log(np.array(MEDIAN_PRICE))[category] + 0.6 * rng.standard_normal(len(category))
    )
    list_price = np.maximum(np.round(raw_price), 1.0) - 0.01
    medians = np.array([np.median(list_price[category == c]) for c in range(len(CATEGORIES))])
    premium = (list_price > medians[category]).astype(np.int64)
    brand = category * BRANDS_PER_CATEGORY + rng.integers(0, BRANDS_PER_CATEGORY, len(category))
    popularity = rng.lognormal(0.0, 1.0, len(category))
    group = category * 2 + premium
    midpoints = (np.arange(POPULARITY_BINS) + 0.5) / POPULARITY_BINS
    lookup = np.empty((2 * len(CATEGORIES), POPULARITY_BINS), dtype=np.int64)
    for g in range(2 * len(CATEGORIES)):
        members = np.flatnonzero(group == g)
        cumulative = np.cumsum(popularity[members])
        position = np.searchsorted(cumulative / cumulative[-1], midpoints, side="right")
        lookup[g] = members[np.minimum(position, len(members) - 1)]
    return _Catalogue(category, premium, list_price, brand, lookup)


def _brand_names() -> list[str]:
    suffixes = ("", " Co", " Labs", " & Sons", " Works", " Studio")
    names = []
    for c in range(len(CATEGORIES)):
        for b in range(BRANDS_PER_CATEGORY):
            stem = BRAND_STEMS[(c * 7 + b * 3) % len(BRAND_STEMS)]
            names.append(f"{stem}{suffixes[(c + b) % len(suffixes)]}")
    return names


def _products_table(catalogue: _Catalogue, seed: int) -> pa.Table:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_PRODUCTS_KEY, 1)))
    price = catalogue.list_price.copy()
    n_negative = round(dirt.DIRT_RATES["list_price_negative"] * catalogue.size)
    negative = dirt.pick_exact(catalogue.size, n_negative, rng)
    price[negative] = -price[negative]
    return pa.table(
        {
            "product_id": _PRODUCT_IDS,
            "category": _dictionary(CATEGORIES, catalogue.category),
            "brand": _dictionary(_brand_names(), catalogue.brand),
            "list_price": pa.array(price),
        },
    )


@dataclass(frozen=True)
class _Campaigns:
    sent_s: np.ndarray
    channel: np.ndarray
    target_share: np.ndarray

    def table(self) -> pa.Table:
        return pa.table(
            {
                "campaign_id": _campaign_ids(np.arange(len(self.sent_s))),
                "sent_at": _timestamps(self.sent_s),
                "channel": _dictionary(TOUCH_CHANNELS, self.channel).cast(pa.string()),
                "target_share": pa.array(self.target_share),
            }
        )


def _build_campaigns(seed: int) -> _Campaigns:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_CAMPAIGNS_KEY,)))
    weeks = 2 + 4 * np.arange(N_CAMPAIGNS)
    day = rng.integers(0, 5, N_CAMPAIGNS)
    hour = rng.integers(8, 18, N_CAMPAIGNS)
    sent_s = weeks * SECONDS_PER_WEEK + day * SECONDS_PER_DAY + hour * 3600
    channel = rng.choice(len(TOUCH_CHANNELS), N_CAMPAIGNS, p=TOUCH_CHANNEL_SHARES)
    target_share = rng.uniform(0.15, 0.5, N_CAMPAIGNS)
    return _Campaigns(sent_s.astype(np.int64), channel, target_share)


def _campaign_ids(index: np.ndarray) -> pa.Array:
    return _format_ids("CMP", index + 1, 3)


# --------------------------------------------------------------------------------------------
# Per-chunk simulation


@dataclass
class _Counters:
    """Running id counters; chunks are simulated in order, so ids are deterministic."""

    order: int = 0
    session: int = 0
    event: int = 0
    touch: int = 0
    orphan_order: int = 0
    ghost_customer: int = 0


@dataclass(frozen=True)
class _IdSpace:
    customer_width: int


@dataclass(frozen=True)
class _Customers:
    persona: np.ndarray
    created_s: np.ndarray
    rate: np.ndarray
    first_prob: np.ndarray
    basket_mean: np.ndarray
    premium_share: np.ndarray
    discount_affinity: np.ndarray
    browse_rate: np.ndarray
    browse_depth: np.ndarray
    cart_prob: np.ndarray
    response: np.ndarray
    return_prob: np.ndarray
    decline_s: np.ndarray
    decline_tau_days: np.ndarray
    preference: np.ndarray
    preference_grid: np.ndarray
    """Row ``i`` of the cumulative preferences shifted by ``i`` and flattened (increasing)."""

    @property
    def size(self) -> int:
        return len(self.persona)


def _persona_table(attribute: str) -> np.ndarray:
    return np.array([getattr(p, attribute) for p in PERSONAS], dtype=np.float64)


def _beta(rng: np.random.Generator, persona: np.ndarray, attribute: str) -> np.ndarray:
    params = _persona_table(attribute)
    return rng.beta(params[persona, 0], params[persona, 1])


def _simulate_customers(n: int, rng: np.random.Generator) -> _Customers:
    shares = np.array([p.share for p in PERSONAS])
    persona = rng.choice(len(PERSONAS), n, p=shares / shares.sum())
    signup = _persona_table("signup_days")[persona] * SECONDS_PER_DAY
    created_s = np.floor(signup[:, 0] + rng.random(n) * (signup[:, 1] - signup[:, 0]))
    created_s = np.minimum(created_s, DATA_SECONDS - 1).astype(np.int64)
    rate = _persona_table("rate_per_week")[persona] * rng.gamma(RATE_SHAPE, 1 / RATE_SHAPE, n)
    basket_extra = _persona_table("basket_mean")[persona] - 1.0
    basket_mean = 1.0 + basket_extra * rng.gamma(8.0, 1 / 8.0, n)
    browse_rate = _persona_table("browse_per_week")[persona] * rng.gamma(
        BROWSE_SHAPE, 1 / BROWSE_SHAPE, n
    )
    declines = rng.random(n) < _persona_table("decline_prob")[persona]
    after = _persona_table("decline_after_weeks")[persona]
    tau = _persona_table("decline_tau_weeks")[persona]
    decline_s = created_s + np.floor(rng.uniform(after[:, 0], after[:, 1]) * SECONDS_PER_WEEK)
    decline_s = np.where(declines, decline_s, np.nan)
    decline_tau_days = np.where(declines, rng.uniform(tau[:, 0], tau[:, 1]) * 7.0, np.nan)
    weights = rng.standard_gamma(CATEGORY_PREFERENCE_ALPHA, (n, len(CATEGORIES))) + 1e-3
    preference = weights / weights.sum(axis=1, keepdims=True)
    grid = (np.arange(n)[:, None] + np.cumsum(preference, axis=1)).ravel()
    return _Customers(
        persona=persona,
        created_s=created_s,
        rate=rate,
        first_prob=_persona_table("first_order_prob")[persona],
        basket_mean=basket_mean,
        premium_share=_beta(rng, persona, "premium"),
        discount_affinity=_beta(rng, persona, "discount"),
        browse_rate=browse_rate,
        browse_depth=_persona_table("browse_depth")[persona],
        cart_prob=_persona_table("cart_prob")[persona],
        response=_beta(rng, persona, "response"),
        return_prob=_persona_table("return_prob")[persona],
        decline_s=decline_s,
        decline_tau_days=decline_tau_days,
        preference=preference,
        preference_grid=grid,
    )


@dataclass(frozen=True)
class _Cells:
    """The active customer-weeks of a chunk: where every weekly Poisson process lives.

    Cells are grouped by customer: customer ``i`` owns cells ``run_start[i]`` up to
    ``run_start[i] + n_weeks[i]`` (from the signup week to the last week).
    """

    customer: np.ndarray
    low: np.ndarray
    high: np.ndarray
    profile: np.ndarray
    run_start: np.ndarray
    n_weeks: np.ndarray


def _active_cells(customers: _Customers) -> _Cells:
    starts, ends = week_bounds()
    first_week = customers.created_s // SECONDS_PER_WEEK
    n_weeks = N_WEEKS - first_week
    customer = np.repeat(np.arange(customers.size), n_weeks)
    run_start = np.cumsum(n_weeks) - n_weeks
    week = np.arange(len(customer)) - run_start[customer] + first_week[customer]
    return _Cells(
        customer=customer,
        low=np.maximum(starts[week], customers.created_s[customer]),
        high=ends[week],
        profile=weekly_profile(
            week, customers.decline_s[customer], customers.decline_tau_days[customer]
        ),
        run_start=run_start,
        n_weeks=n_weeks,
    )


def _arrivals(
    cells: _Cells, rate: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the weekly piecewise-constant Poisson process; return (customer, second) per event.

    Equivalent to independent ``Poisson(mean)`` counts per cell, drawn faster: a Poisson total
    per customer, each event placed in a cell with probability proportional to the cell's mean
    and then uniformly within the cell's active seconds.
    """
    mean = rate[cells.customer] * cells.profile * (cells.high - cells.low) / SECONDS_PER_WEEK
    total = np.add.reduceat(mean, cells.run_start)
    count = rng.poisson(total)
    customer = np.repeat(np.arange(len(total)), count)
    cumulative = np.cumsum(mean)
    before = cumulative[cells.run_start] - mean[cells.run_start]
    target = before[customer] + rng.random(len(customer)) * total[customer]
    cell = np.searchsorted(cumulative, target, side="right")
    first = cells.run_start[customer]
    cell = np.clip(cell, first, first + cells.n_weeks[customer] - 1)
    low, high = cells.low[cell], cells.high[cell]
    second = low + np.floor(rng.random(len(cell)) * (high - low)).astype(np.int64)
    return customer, np.minimum(second, high - 1)


@dataclass(frozen=True)
class _Orders:
    customer: np.ndarray
    ordered_s: np.ndarray
    status: np.ndarray
    channel: np.ndarray
    order_total: np.ndarray
    discount_total: np.ndarray
    item_start: np.ndarray
    n_items: np.ndarray


@dataclass(frozen=True)
class _Items:
    order: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray


_TIME_BITS = 26
assert DATA_SECONDS < 2**_TIME_BITS


def _simulate_orders(
    customers: _Customers, cells: _Cells, catalogue: _Catalogue, rng: np.random.Generator
) -> tuple[_Orders, _Items]:
    customer, second = _arrivals(cells, customers.rate, rng)
    has_first = rng.random(customers.size) < customers.first_prob
    delay = rng.exponential(FIRST_ORDER_MEAN_DELAY_DAYS * SECONDS_PER_DAY, customers.size)
    first_s = customers.created_s + np.floor(delay).astype(np.int64)
    first = np.flatnonzero(has_first & (first_s < DATA_SECONDS))
    key = np.concatenate([customer << _TIME_BITS | second, first << _TIME_BITS | first_s[first]])
    key.sort()
    customer, second = key >> _TIME_BITS, key & (2**_TIME_BITS - 1)
    n_orders = len(customer)

    u = rng.random(n_orders)
    returned = u < CANCEL_PROB + customers.return_prob[customer]
    status = np.where(u < CANCEL_PROB, 1, np.where(returned, 2, 0)).astype(np.int8)
    channel = rng.choice(len(ORDER_CHANNELS), n_orders, p=ORDER_CHANNEL_SHARES).astype(np.int8)

    drawn = 1 + rng.poisson(customers.basket_mean[customer] - 1.0)
    item_order = np.repeat(np.arange(n_orders), drawn)
    product = _sample_products(customers, catalogue, customer[item_order], rng)
    # A product appears once per order: drop repeated draws.
    key = item_order * catalogue.size + product
    key.sort()
    distinct = np.concatenate([[True], key[1:] != key[:-1]])
    key = key[distinct]
    item_order, product = key // catalogue.size, key % catalogue.size
    item_customer = customer[item_order]
    n_items = np.bincount(item_order, minlength=n_orders)
    item_start = np.cumsum(n_items) - n_items

    n = len(item_order)
    quantity = 1 + rng.poisson(np.array(EXTRA_QUANTITY)[catalogue.category[product]])
    on_sale = rng.random(n) < 0.08 + 0.4 * customers.discount_affinity[item_customer]
    markdown = np.where(on_sale, rng.uniform(0.1, 0.4, n), 0.0)
    unit_price = np.round(catalogue.list_price[product] * (1.0 - markdown), 2)
    subtotal = np.bincount(item_order, weights=quantity * unit_price, minlength=n_orders)
    coupon = rng.random(n_orders) < 0.5 * customers.discount_affinity[customer]
    discount = np.round(np.where(coupon, subtotal * rng.uniform(0.05, 0.25, n_orders), 0.0), 2)
    total = np.round(subtotal - discount, 2)
    orders = _Orders(customer, second, status, channel, total, discount, item_start, n_items)
    return orders, _Items(item_order, product, quantity.astype(np.int32), unit_price)


def _sample_products(
    customers: _Customers,
    catalogue: _Catalogue,
    customer: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw a product per row: category by the customer's preferences, tier by spend level."""
    position = np.searchsorted(
        customers.preference_grid, customer + rng.random(len(customer)), side="right"
    )
    category = np.clip(position - customer * len(CATEGORIES), 0, len(CATEGORIES) - 1)
    tier = rng.random(len(customer)) < customers.premium_share[customer]
    return catalogue.sample(category * 2 + tier, rng)


@dataclass(frozen=True)
class _Events:
    customer: np.ndarray
    session: np.ndarray
    event_type: np.ndarray
    event_s: np.ndarray
    product: np.ndarray
    n_sessions: int


def _simulate_events(
    customers: _Customers,
    cells: _Cells,
    orders: _Orders,
    items: _Items,
    catalogue: _Catalogue,
    rng: np.random.Generator,
) -> _Events:
    page_view, product_view, add_to_cart, checkout = range(len(EVENT_TYPES))
    # Sessions leading to online orders: view the first item, add each item, check out.
    online = np.flatnonzero(orders.channel < ONLINE_CHANNELS)
    o_len = orders.n_items[online] + 2

    # Browsing sessions of known customers follow the purchase profile at the browse rate.
    b_customer, b_start = _arrivals(cells, customers.browse_rate, rng)
    b_views = rng.poisson(customers.browse_depth[b_customer])
    b_cart = (b_views > 0) & (rng.random(len(b_customer)) < customers.cart_prob[b_customer])

    # Anonymous visitors: seasonal arrivals over the whole calendar.
    starts, ends = week_bounds()
    weight = seasonality() * (ends - starts)
    n_anon = rng.poisson(ANON_SESSIONS_PER_CUSTOMER * customers.size)
    a_week = rng.choice(N_WEEKS, n_anon, p=weight / weight.sum())
    a_offset = np.floor(rng.random(n_anon) * (ends - starts)[a_week]).astype(np.int64)
    a_views = rng.poisson(ANON_BROWSE_DEPTH, n_anon)
    a_cart = (a_views > 0) & (rng.random(n_anon) < 0.05)

    # Sessions are laid out in three blocks (order, browse, anonymous), events session by session.
    n_order_sessions = len(online)
    s_customer = np.concatenate([orders.customer[online], b_customer, np.full(n_anon, -1)])
    s_len = np.concatenate([o_len, 1 + b_views + b_cart, 1 + a_views + a_cart])
    n_sessions = len(s_len)
    first_event = np.cumsum(s_len) - s_len
    last_event = first_event + s_len - 1
    n_events = int(s_len.sum())
    order_end = int(o_len.sum())
    browse_end = order_end + int((1 + b_views + b_cart).sum())
    session = np.repeat(np.arange(n_sessions), s_len)

    event_type = np.full(n_events, product_view, dtype=np.int8)
    event_type[:order_end] = add_to_cart
    event_type[first_event[:n_order_sessions]] = product_view
    event_type[last_event[:n_order_sessions]] = checkout
    event_type[first_event[n_order_sessions:]] = page_view
    carts = last_event[n_order_sessions:][np.concatenate([b_cart, a_cart])]
    event_type[carts] = add_to_cart

    # Products: order sessions view the first item, then add every item; browsing draws views
    # from the customer's preferences (anonymous visitors: uniform over groups), a cart adds
    # the product viewed just before.
    product = np.full(n_events, -1, dtype=np.int64)
    o_first = np.repeat(orders.item_start[online], o_len)
    o_position = np.arange(order_end) - np.repeat(first_event[:n_order_sessions], o_len)
    o_item = o_first + np.clip(o_position - 1, 0, None)
    shop = np.flatnonzero(event_type[:order_end] != checkout)
    product[shop] = items.product[o_item[shop]]
    known = order_end + np.flatnonzero(event_type[order_end:browse_end] == product_view)
    product[known] = _sample_products(customers, catalogue, s_customer[session[known]], rng)
    anon = browse_end + np.flatnonzero(event_type[browse_end:] == product_view)
    anon_group = rng.integers(0, 2 * len(CATEGORIES), len(anon))
    product[anon] = catalogue.sample(anon_group, rng)
    product[carts] = product[carts - 1]

    gaps = np.floor(rng.exponential(EVENT_GAP_SECONDS, n_events)).astype(np.int64)
    gaps[first_event] = 0
    elapsed = np.cumsum(gaps)
    offset = elapsed - np.repeat(elapsed[first_event], s_len)
    lead = rng.integers(5, 120, n_order_sessions)
    s_start = np.concatenate(
        [
            orders.ordered_s[online] - lead - offset[last_event[:n_order_sessions]],
            b_start,
            starts[a_week] + a_offset,
        ]
    )
    event_s = np.repeat(s_start, s_len)
    event_s += offset
    # Sessions leading to a first order may start before signup: clamp them to the signup.
    signup = np.repeat(customers.created_s[orders.customer[online]], o_len)
    np.maximum(event_s[:order_end], signup, out=event_s[:order_end])
    np.minimum(event_s, DATA_SECONDS - 1, out=event_s)
    return _Events(s_customer[session], session, event_type, event_s, product, n_sessions)


@dataclass(frozen=True)
class _Touches:
    campaign: np.ndarray
    customer: np.ndarray
    sent_s: np.ndarray
    opened_s: np.ndarray
    clicked_s: np.ndarray
    is_control: np.ndarray
    channel: np.ndarray


def _simulate_touches(
    customers: _Customers,
    campaigns: _Campaigns,
    opt_in_before: np.ndarray,
    opt_in_after: np.ndarray,
    changed_s: np.ndarray,
    rng: np.random.Generator,
) -> _Touches:
    sent = campaigns.sent_s[:, None]
    opted_in = np.where(sent < changed_s[None, :], opt_in_before[None, :], opt_in_after[None, :])
    eligible = opted_in & (customers.created_s[None, :] < sent)
    targeted = eligible & (rng.random(eligible.shape) < campaigns.target_share[:, None])
    campaign, customer = np.nonzero(targeted)
    n = len(campaign)
    is_control = rng.random(n) < CONTROL_SHARE
    channel = campaigns.channel[campaign]
    open_prob = customers.response[customer] * np.array(TOUCH_OPEN_FACTOR)[channel]
    opened = ~is_control & (rng.random(n) < open_prob)
    clicked = opened & (rng.random(n) < 0.15 + 0.5 * customers.response[customer])
    sent_s = campaigns.sent_s[campaign] + rng.integers(0, 7200, n)
    opened_s = sent_s + np.floor(rng.exponential(8 * 3600, n)).astype(np.int64)
    clicked_s = opened_s + np.floor(rng.exponential(900, n)).astype(np.int64)
    opened &= opened_s < DATA_SECONDS
    clicked &= opened & (clicked_s < DATA_SECONDS)
    return _Touches(
        campaign,
        customer,
        sent_s,
        np.where(opened, opened_s, -1),
        np.where(clicked, clicked_s, -1),
        is_control,
        channel,
    )


@dataclass(frozen=True)
class _Attributes:
    gender: np.ndarray
    region: np.ndarray
    city: np.ndarray
    birth_days: np.ndarray
    income: np.ndarray
    opt_in: np.ndarray
    acquisition: np.ndarray
    email_domain: np.ndarray


def _simulate_attributes(customers: _Customers, rng: np.random.Generator) -> _Attributes:
    n = customers.size
    gender = rng.choice(len(GENDERS), n, p=GENDER_SHARES)
    region = rng.choice(len(REGIONS), n, p=REGION_SHARES)
    city = region * len(CITY_SHARES) + rng.choice(len(CITY_SHARES), n, p=CITY_SHARES)
    age = np.clip(rng.normal(40.0, 13.0, n), 18.0, 85.0)
    reference = int(np.datetime64("2025-01-01", "D").astype(np.int64))
    birth_days = reference - np.floor(age * 365.25).astype(np.int64)
    log_income = (
        np.log(38_000.0)
        + 0.45 * rng.standard_normal(n)
        + 0.8 * (customers.premium_share - 0.4)
        + 0.01 * (age - 40.0)
    )
    income = np.round(np.exp(log_income), -2)
    opt_in = rng.random(n) < 0.45 + 0.4 * customers.response
    acquisition = rng.choice(len(ACQUISITION_CHANNELS), n, p=ACQUISITION_SHARES)
    email_domain = rng.integers(0, len(EMAIL_DOMAINS), n)
    return _Attributes(gender, region, city, birth_days, income, opt_in, acquisition, email_domain)


@dataclass(frozen=True)
class _Reloads:
    """Customers re-loaded with changed attributes; ``stale_*`` hold the first row's values."""

    index: np.ndarray
    updated_s: np.ndarray
    stale_city: np.ndarray
    stale_income: np.ndarray
    stale_opt_in: np.ndarray
    changed_s: np.ndarray


def _draw_reloads(
    customers: _Customers, attributes: _Attributes, rng: np.random.Generator
) -> _Reloads:
    n = customers.size
    index = np.flatnonzero(dirt.flag(n, dirt.DIRT_RATES["customer_reloaded"], rng))
    index = index[customers.created_s[index] < DATA_SECONDS - SECONDS_PER_DAY]
    k = len(index)
    created = customers.created_s[index]
    room = DATA_SECONDS - SECONDS_PER_DAY - created
    updated = created + SECONDS_PER_DAY + np.floor(rng.random(k) * room).astype(np.int64)
    change = rng.random((k, 3)) < 0.5
    change[np.arange(k), rng.integers(0, 3, k)] = True
    per_region = len(CITY_SHARES)
    city = attributes.city.copy()
    other = (city[index] % per_region + rng.integers(1, per_region, k)) % per_region
    city[index] = np.where(
        change[:, 0], city[index] - city[index] % per_region + other, city[index]
    )
    income = attributes.income.copy()
    factor = np.where(change[:, 1], rng.uniform(0.75, 0.95, k), 1.0)
    income[index] = np.round(income[index] * factor, -2)
    opt_in = attributes.opt_in.copy()
    opt_in[index] = np.where(change[:, 2], ~opt_in[index], opt_in[index])
    changed_s = np.full(n, np.iinfo(np.int64).max)
    changed_s[index] = updated
    return _Reloads(index, updated, city, income, opt_in, changed_s)


def _simulate_chunk(
    chunk_index: int,
    start: int,
    stop: int,
    seed: int,
    catalogue: _Catalogue,
    campaigns: _Campaigns,
    ids: _IdSpace,
    counters: _Counters,
) -> tuple[dict[str, pa.Table], pa.Table]:
    sim_seed, dirt_seed = np.random.SeedSequence(seed, spawn_key=(chunk_index,)).spawn(2)
    rng = np.random.default_rng(sim_seed)
    dirt_rng = np.random.default_rng(dirt_seed)

    customers = _simulate_customers(stop - start, rng)
    attributes = _simulate_attributes(customers, rng)
    reloads = _draw_reloads(customers, attributes, dirt_rng)
    cells = _active_cells(customers)
    orders, items = _simulate_orders(customers, cells, catalogue, rng)
    events = _simulate_events(customers, cells, orders, items, catalogue, rng)
    del cells
    touches = _simulate_touches(
        customers, campaigns, reloads.stale_opt_in, attributes.opt_in, reloads.changed_s, rng
    )

    customer_ids = _format_ids("C", np.arange(start + 1, stop + 1), ids.customer_width)
    customers_table = _customers_table(
        customer_ids, customers, attributes, reloads, chunk_index, dirt_rng
    )
    orders_table, n_order_ids = _orders_table(
        customer_ids, customers, orders, counters, chunk_index, dirt_rng, ids
    )
    items_table = _items_table(items, counters, chunk_index, dirt_rng)
    counters.order += n_order_ids
    tables = {
        "customers": customers_table,
        "orders": orders_table,
        "order_items": items_table,
        "web_events": _events_table(customer_ids, events, counters, dirt_rng),
        "campaign_touches": _touches_table(customer_ids, touches, counters, dirt_rng),
    }
    return tables, _truth_table(customer_ids, customers, attributes, reloads)


# --------------------------------------------------------------------------------------------
# Arrow tables with dirt


def _customers_table(
    customer_ids: pa.Array,
    customers: _Customers,
    attributes: _Attributes,
    reloads: _Reloads,
    chunk_index: int,
    rng: np.random.Generator,
) -> pa.Table:
    """Original rows (stale values where re-loaded), then the re-loaded rows (true values)."""
    n = customers.size
    rates = dirt.DIRT_RATES
    index = reloads.index
    rows = np.concatenate([np.arange(n), index])
    is_reload = np.arange(len(rows)) >= n

    birth_days = attributes.birth_days.copy()
    future = dirt.flag(n, rates["birth_date_future"], rng)
    data_end_days = int(np.datetime64(DATA_END, "D").astype(np.int64))
    birth_days[future] = data_end_days + rng.integers(1, 3650, int(future.sum()))
    income = np.where(is_reload, attributes.income[rows], reloads.stale_income[rows])
    if chunk_index == 0:
        absurd = dirt.pick_exact(n, dirt.DIRT_COUNTS["income_absurd"], rng)
        income[np.isin(rows, absurd)] = dirt.ABSURD_INCOME
    missing_birth = dirt.flag(n, rates["birth_date_missing"], rng)[rows]
    missing_income = dirt.flag(n, rates["income_missing"], rng)[rows]
    missing_gender = dirt.flag(n, rates["gender_missing"], rng)[rows]
    city = np.where(is_reload, attributes.city[rows], reloads.stale_city[rows])
    opt_in = np.where(is_reload, attributes.opt_in[rows], reloads.stale_opt_in[rows])
    created_s = customers.created_s[rows]
    updated_s = np.concatenate([customers.created_s, reloads.updated_s])
    emails = pc.binary_join_element_wise(
        pc.utf8_lower(customer_ids),
        _dictionary(EMAIL_DOMAINS, attributes.email_domain).dictionary_decode(),
        "@",
    )
    return pa.table(
        {
            "customer_id": customer_ids.take(rows),
            "created_at": _timestamps(created_s),
            "updated_at": _timestamps(updated_s),
            "email": emails.take(rows),
            "birth_date": pa.array(birth_days[rows].astype("datetime64[D]"), mask=missing_birth),
            "gender": dirt.spelled(
                attributes.gender[rows],
                GENDERS,
                dirt.GENDER_VARIANTS,
                rates["gender_variant_spelling"],
                rng,
                missing_gender,
            ),
            "region": dirt.spelled(
                attributes.region[rows],
                REGIONS,
                dirt.padded_case_variants(REGIONS),
                rates["region_variant_spelling"],
                rng,
            ),
            "city": _dictionary(_CITY_NAMES, city),
            "income": pa.array(income, mask=missing_income),
            "marketing_opt_in": pa.array(opt_in),
            "acquisition_channel": dirt.spelled(
                attributes.acquisition[rows],
                ACQUISITION_CHANNELS,
                dirt.case_variants(ACQUISITION_CHANNELS),
                rates["channel_variant_spelling"],
                rng,
            ),
        }
    )


def _orders_table(
    customer_ids: pa.Array,
    customers: _Customers,
    orders: _Orders,
    counters: _Counters,
    chunk_index: int,
    rng: np.random.Generator,
    ids: _IdSpace,
) -> tuple[pa.Table, int]:
    """Return the orders table and how many order ids it used (clean orders come first)."""
    rates = dirt.DIRT_RATES
    n = len(orders.customer)
    total = orders.order_total.copy()
    if chunk_index == 0:
        negative = dirt.pick_exact(n, dirt.DIRT_COUNTS["order_total_negative"], rng)
        total[negative] = -total[negative]

    created = customers.created_s[orders.customer]
    early = np.flatnonzero(dirt.flag(n, rates["order_before_signup"], rng) & (created > 3600))
    room = np.minimum(90 * SECONDS_PER_DAY, created[early] - 1)
    lag = 1 + np.floor(rng.random(len(early)) * room).astype(np.int64)
    ghosts = np.flatnonzero(dirt.flag(n, rates["order_customer_missing"], rng))
    ghost_numbers = counters.ghost_customer + np.arange(len(ghosts))
    counters.ghost_customer += len(ghosts)
    customer_dictionary = pa.concat_arrays(
        [customer_ids, _format_ids("C", ghost_numbers, ids.customer_width)]
    )

    # Values per order id; the extra dirt orders copy clean values of the order they mimic.
    source = np.concatenate([np.arange(n), early, ghosts])
    customer = np.concatenate(
        [orders.customer, orders.customer[early], customers.size + np.arange(len(ghosts))]
    )
    ordered_s = np.concatenate([orders.ordered_s, created[early] - lag, orders.ordered_s[ghosts]])
    total = np.concatenate([total, orders.order_total[early], orders.order_total[ghosts]])
    channel = dirt.spelled(
        orders.channel[source],
        ORDER_CHANNELS,
        dirt.case_variants(ORDER_CHANNELS),
        rates["channel_variant_spelling"],
        rng,
    )
    rows = dirt.duplicated_rows(len(source), rates["orders_duplicate"], rng)
    src = source[rows]
    table = pa.table(
        {
            "order_id": _format_ids("O", counters.order + 1 + rows, ORDER_ID_WIDTH),
            "customer_id": pa.DictionaryArray.from_arrays(
                customer[rows].astype(np.int32), customer_dictionary
            ),
            "ordered_at": _timestamps(ordered_s[rows]),
            "status": _dictionary(STATUSES, orders.status[src]),
            "order_total": pa.array(total[rows]),
            "discount_total": pa.array(orders.discount_total[src]),
            "channel": channel.take(rows),
        }
    )
    return table, len(source)


def _items_table(
    items: _Items, counters: _Counters, chunk_index: int, rng: np.random.Generator
) -> pa.Table:
    rates = dirt.DIRT_RATES
    n = len(items.order)
    quantity = items.quantity.copy()
    unit_price = items.unit_price.copy()
    negative = dirt.flag(n, rates["unit_price_negative"], rng)
    unit_price[negative] = -unit_price[negative]
    quantity[dirt.flag(n, rates["quantity_zero"], rng)] = 0
    if chunk_index == 0:
        absurd = dirt.pick_exact(n, dirt.DIRT_COUNTS["quantity_absurd"], rng)
        quantity[absurd] = dirt.ABSURD_QUANTITY
    orphans = np.flatnonzero(dirt.flag(n, rates["order_item_orphan"], rng))
    orphan_numbers = ORPHAN_ORDER_NUMBER + counters.orphan_order + np.arange(len(orphans))
    counters.orphan_order += len(orphans)
    order_numbers = np.concatenate([counters.order + 1 + items.order, orphan_numbers])
    # Orphans copy clean values of the item they mimic.
    source = np.concatenate([np.arange(n), orphans])
    quantity = np.concatenate([quantity, items.quantity[orphans]])
    unit_price = np.concatenate([unit_price, items.unit_price[orphans]])
    rows = dirt.duplicated_rows(len(source), rates["order_items_duplicate"], rng)
    src = source[rows]
    return pa.table(
        {
            "order_id": _format_ids("O", order_numbers[rows], ORDER_ID_WIDTH),
            "product_id": _product_ids(items.product[src]),
            "quantity": pa.array(quantity[rows]),
            "unit_price": pa.array(unit_price[rows]),
        }
    )


def _events_table(
    customer_ids: pa.Array, events: _Events, counters: _Counters, rng: np.random.Generator
) -> pa.Table:
    n = len(events.session)
    rows = dirt.duplicated_rows(n, dirt.DIRT_RATES["web_events_duplicate"], rng)
    customer = events.customer[rows]
    anonymous = customer < 0
    table = pa.table(
        {
            "event_id": _format_ids("E", counters.event + 1 + rows, EVENT_ID_WIDTH),
            "customer_id": pa.DictionaryArray.from_arrays(
                pa.array(customer.astype(np.int32), mask=anonymous), customer_ids
            ),
            "session_id": _format_ids(
                "S", counters.session + 1 + events.session[rows], SESSION_ID_WIDTH
            ),
            "event_type": _dictionary(EVENT_TYPES, events.event_type[rows]),
            "event_at": _timestamps(events.event_s[rows]),
            "product_id": _product_ids(events.product[rows]),
        }
    )
    counters.event += n
    counters.session += events.n_sessions
    return table


def _touches_table(
    customer_ids: pa.Array, touches: _Touches, counters: _Counters, rng: np.random.Generator
) -> pa.Table:
    n = len(touches.campaign)
    table = pa.table(
        {
            "touch_id": _format_ids("T", counters.touch + 1 + np.arange(n), TOUCH_ID_WIDTH),
            "campaign_id": _dictionary(_campaign_ids(np.arange(N_CAMPAIGNS)), touches.campaign),
            "customer_id": pa.DictionaryArray.from_arrays(
                touches.customer.astype(np.int32), customer_ids
            ),
            "channel": dirt.spelled(
                touches.channel,
                TOUCH_CHANNELS,
                dirt.case_variants(TOUCH_CHANNELS),
                dirt.DIRT_RATES["channel_variant_spelling"],
                rng,
            ),
            "sent_at": _timestamps(touches.sent_s),
            "opened_at": _timestamps(touches.opened_s, null=touches.opened_s < 0),
            "clicked_at": _timestamps(touches.clicked_s, null=touches.clicked_s < 0),
            "is_control": pa.array(touches.is_control),
        }
    )
    counters.touch += n
    return table


def _truth_table(
    customer_ids: pa.Array, customers: _Customers, attributes: _Attributes, reloads: _Reloads
) -> pa.Table:
    decline_s = customers.decline_s
    no_decline = np.isnan(decline_s)
    columns: dict[str, pa.Array] = {
        "customer_id": customer_ids,
        "persona": _dictionary([p.name for p in PERSONAS], customers.persona).cast(pa.string()),
        "created_at": _timestamps(customers.created_s),
        "rate_per_week": pa.array(customers.rate),
        "first_order_prob": pa.array(customers.first_prob),
        "cancel_prob": pa.array(np.full(customers.size, CANCEL_PROB)),
        "return_prob": pa.array(customers.return_prob),
        "decline_start_at": _timestamps(
            np.where(no_decline, 0, decline_s).astype(np.int64), null=no_decline
        ),
        "decline_tau_days": pa.array(customers.decline_tau_days, mask=no_decline),
        "basket_mean": pa.array(customers.basket_mean),
        "premium_share": pa.array(customers.premium_share),
        "discount_affinity": pa.array(customers.discount_affinity),
        "browse_rate_per_week": pa.array(customers.browse_rate),
        "browse_depth": pa.array(customers.browse_depth),
        "cart_prob": pa.array(customers.cart_prob),
        "campaign_response": pa.array(customers.response),
    }
    for c, category in enumerate(CATEGORIES):
        columns[f"pref_{category}"] = pa.array(customers.preference[:, c])
    labelled = {
        "gender": (GENDERS, attributes.gender),
        "region": (REGIONS, attributes.region),
        "city": (_CITY_NAMES, attributes.city),
        "acquisition_channel": (ACQUISITION_CHANNELS, attributes.acquisition),
    }
    for name, (vocabulary, codes) in labelled.items():
        columns[name] = _dictionary(vocabulary, codes).cast(pa.string())
    columns |= {
        "income": pa.array(attributes.income),
        "birth_date": pa.array(attributes.birth_days.astype("datetime64[D]")),
        "marketing_opt_in": pa.array(attributes.opt_in),
        "is_reloaded": pa.array(np.isin(np.arange(customers.size), reloads.index)),
    }
    return pa.table(columns)


# --------------------------------------------------------------------------------------------
# Writing


def _write_chunk(
    writers: dict[str, _RawWriter],
    truth_writer: pq.ParquetWriter,
    tables: dict[str, pa.Table],
    truth: pa.Table,
    chunk_index: int,
) -> None:
    for name, table in tables.items():
        writers[name].write(table, chunk_index)
    truth_writer.write_table(truth)


class _RawWriter:
    """Append chunks to one raw file: parquet, or CSV with the planned malformed lines.

    Low-cardinality string columns arrive dictionary-encoded (cheap to build, written as
    parquet dictionary pages directly). The Arrow schema is not stored in the parquet file, so
    every reader sees the contract's plain string columns.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        fmt: str,
        malformed: Mapping[int, list[tuple[float, str]]],
    ) -> None:
        self.path = path
        self.name = name
        self.contract = SCHEMAS[name]
        self.fmt = fmt
        self.malformed = malformed
        self.rows = 0
        self.malformed_line_numbers: list[int] = []
        self._lines = 1
        self._parquet: pq.ParquetWriter | None = None
        self._file: pa.NativeFile | None = None
        if fmt == "csv":
            self._csv_schema = pa.schema(
                [
                    pa.field(f.name, pa.timestamp("s")) if pa.types.is_timestamp(f.type) else f
                    for f in self.contract
                ]
            )
            self._file = pa.OSFile(str(path), "wb")
            header = pacsv.WriteOptions(include_header=True)
            pacsv.write_csv(self._csv_schema.empty_table(), self._file, header)

    def write(self, table: pa.Table, chunk_index: int) -> None:
        if table.schema.names != self.contract.names:
            raise AssertionError(f"{self.name}: columns {table.schema.names} break the contract")
        self.rows += table.num_rows
        if self.fmt == "parquet":
            if self._parquet is None:
                self._parquet = self._open_parquet(table.schema)
            self._parquet.write_table(table)
            return
        table = table.cast(self._csv_schema)
        cursor = 0
        for fraction, kind in self.malformed.get(chunk_index, []):
            if table.num_rows == 0:
                break
            cut = min(max(1, int(fraction * table.num_rows)), table.num_rows)
            self._write_rows(table.slice(cursor, cut - cursor))
            cursor = cut
            clean = _render_csv(table.slice(cut - 1, 1)).rstrip("\n")
            for line in dirt.malformed_lines(clean, kind):
                self._write_line(line)
        self._write_rows(table.slice(cursor))

    def _open_parquet(self, schema: pa.Schema) -> pq.ParquetWriter:
        for field_, expected in zip(schema, self.contract, strict=True):
            actual = field_.type
            if pa.types.is_dictionary(actual):
                actual = actual.value_type
            if actual != expected.type:
                raise AssertionError(f"{self.name}.{field_.name}: {actual} != {expected.type}")
        dictionary = [f.name for f in schema if pa.types.is_dictionary(f.type)]
        # Min/max statistics on string columns cost as much as encoding them; keep them where
        # readers prune row groups: timestamps, dates and numbers.
        statistics = [f.name for f in self.contract if not pa.types.is_string(f.type)]
        return pq.ParquetWriter(
            self.path,
            schema,
            use_dictionary=dictionary,
            write_statistics=statistics,
            compression="snappy",
            store_schema=False,
        )

    def _write_rows(self, table: pa.Table) -> None:
        if table.num_rows and self._file is not None:
            pacsv.write_csv(table, self._file, pacsv.WriteOptions(include_header=False))
            self._lines += table.num_rows

    def _write_line(self, line: str) -> None:
        if self._file is not None:
            self._file.write((line + "\n").encode())
            self._lines += 1
            self.malformed_line_numbers.append(self._lines)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.fmt == "parquet" and not self.path.exists():
            pq.write_table(self.contract.empty_table(), self.path, store_schema=False)


def _render_csv(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes().decode()


def _plan_malformed_lines(
    seed: int, n_chunks: int
) -> dict[str, dict[int, list[tuple[float, str]]]]:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_MALFORMED_KEY,)))
    plan: dict[str, dict[int, list[tuple[float, str]]]] = {}
    for name, n_events in dirt.MALFORMED_CSV_EVENTS.items():
        fractions = rng.random(n_events)
        per_chunk: dict[int, list[tuple[float, str]]] = {}
        for j in range(n_events):
            chunk = j * n_chunks // n_events
            kind = dirt.MALFORMED_KINDS[j % len(dirt.MALFORMED_KINDS)]
            per_chunk.setdefault(chunk, []).append((float(fractions[j]), kind))
        plan[name] = {chunk: sorted(events) for chunk, events in per_chunk.items()}
    return plan


def _write_truth_extras(
    truth_dir: Path,
    campaigns: _Campaigns,
    writers: Mapping[str, _RawWriter],
    n_customers: int,
    seed: int,
    fmt: str,
    chunk_size: int,
) -> None:
    pq.write_table(campaigns.table(), truth_dir / "campaigns.parquet")
    starts, ends = week_bounds()
    weeks = pa.table(
        {
            "week": pa.array(np.arange(N_WEEKS)),
            "week_start": _timestamps(starts),
            "week_end": _timestamps(ends),
            "season": pa.array(seasonality()),
        }
    )
    pq.write_table(weeks, truth_dir / "weeks.parquet")
    meta = {
        "n_customers": n_customers,
        "seed": seed,
        "fmt": fmt,
        "chunk_size": chunk_size,
        "data_start": DATA_START.isoformat(),
        "data_end": DATA_END.isoformat(),
        "cancel_prob": CANCEL_PROB,
        "first_order_mean_delay_days": FIRST_ORDER_MEAN_DELAY_DAYS,
        "personas": {p.name: p.share for p in PERSONAS},
        "dirt_rates": dirt.DIRT_RATES,
        "dirt_counts": dirt.DIRT_COUNTS,
        "campaigns_affect_purchases": False,
    }
    (truth_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    malformed = {
        name: writer.malformed_line_numbers
        for name, writer in writers.items()
        if writer.malformed_line_numbers
    }
    (truth_dir / "malformed_csv_lines.json").write_text(json.dumps(malformed, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Fast Arrow builders

_DIGITS = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)
_CITY_NAMES = [city for cities in CITIES for city in cities]


def _format_ids(
    prefix: str, numbers: np.ndarray, width: int, null: np.ndarray | None = None
) -> pa.Array:
    """Render ``prefix`` + zero-padded ``numbers`` straight into an Arrow string buffer.

    When the rendered id is a whole number of 4-byte words (and the prefix shorter than one),
    each word is one gather from a lookup table, which is what makes 50M ids cheap.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    n = len(numbers)
    if n and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(f"ids with prefix {prefix!r} do not fit in {width} digits")
    head = prefix.encode()
    line = len(head) + width
    if line % 4 == 0 and len(head) < 4:
        words = np.empty((n, line // 4), dtype=np.uint32)
        rest = numbers
        for column in range(line // 4 - 1, 0, -1):
            rest, low = np.divmod(rest, 10_000)
            words[:, column] = _DIGIT_WORDS[low]
        lead = 4 - len(head)
        first = np.empty((10**lead, 4), dtype=np.uint8)
        first[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
        first[:, len(head) :] = _DIGITS[: 10**lead, 4 - lead :]
        words[:, 0] = first.view(np.uint32).ravel()[rest]
        data = words.view(np.uint8)
    else:
        data = np.empty((n, line), dtype=np.uint8)
        data[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
        rest = numbers.copy()
        column = line
        while column > len(head):
            step = min(4, column - len(head))
            data[:, column - step : column] = _DIGITS[rest % 10_000, 4 - step :]
            rest //= 10_000
            column -= step
    offsets = np.arange(0, (n + 1) * line, line, dtype=np.int32)
    validity, null_count = None, 0
    if null is not None and null.any():
        validity = pa.py_buffer(np.packbits(~null, bitorder="little"))
        null_count = int(null.sum())
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), validity, null_count
    )


_DIGIT_WORDS = _DIGITS.view(np.uint32).ravel()
_PRODUCT_IDS = _format_ids("P", np.arange(1, sum(PRODUCTS_PER_CATEGORY) + 1), PRODUCT_ID_WIDTH)


def _product_ids(product: np.ndarray) -> pa.DictionaryArray:
    """Product ids as a dictionary over the catalogue; negative indices become null."""
    indices = pa.array(product.astype(np.int32), mask=product < 0)
    return pa.DictionaryArray.from_arrays(indices, _PRODUCT_IDS)


def _dictionary(
    vocabulary: list[str] | tuple[str, ...] | pa.Array,
    codes: np.ndarray,
    null: np.ndarray | None = None,
) -> pa.DictionaryArray:
    values = vocabulary if isinstance(vocabulary, pa.Array) else pa.array(list(vocabulary))
    indices = pa.array(np.asarray(codes).astype(np.int32), mask=null)
    return pa.DictionaryArray.from_arrays(indices, values)


def _timestamps(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    micros = (np.asarray(seconds, dtype=np.int64) + _EPOCH_SECONDS) * 1_000_000
    return pa.array(micros.astype("datetime64[us]"), type=pa.timestamp("us"), mask=null)
