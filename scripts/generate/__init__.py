"""Generate a synthetic e-commerce shop with known latent customer behaviour.

Every customer has a latent persona (``PERSONAS``) that sets the distributions of their
parameters: signup time, base purchase rate, first-order probability, basket size, premium
share (spend level), category preferences, discount affinity, browse intensity, campaign
response and, for drop-out personas, a decline start and decay time. Purchases follow the
piecewise-constant weekly Poisson process documented in ``scripts.ground_truth``; web sessions
follow the same shape with the browse rate; campaign touches go to opted-in customers on a fixed
schedule of campaigns, with 10% held out as controls (recorded, never delivered).

Campaigns change purchases: a treated touch multiplies the customer's purchase rate by its
campaign's ``rate_multiplier`` (1.3-1.6) for 14 days after it is sent; control touches and the
placebo campaigns (multiplier 1) change nothing. Baskets have category affinities: every item
after a basket's first comes from the first item's complementary category (``COMPLEMENTS``,
fixed pairs such as fashion/beauty) with probability ``COMPLEMENT_PROB``, so complement pairs
are bought together about twice as often as chance. Both truths are in ``ground_truth/``.

Package layout: ``contract`` (tables, columns, shapes), ``personas`` (customers and their
attributes), ``catalogue`` (products, complements), ``campaigns`` (schedule, touches, effect
windows), ``simulation`` (purchase and browse processes, orders, items, sessions, re-loads),
``tables`` (Arrow tables with dirt), ``writers`` (raw files and ground truth), ``arrow`` (fast
Arrow builders) and ``shop`` (``generate`` itself).

``generate`` writes one file per table to ``<out_dir>/raw/`` (the contract the warehouse
reads) and the ground truth to ``<out_dir>/ground_truth/`` (never read by the pipeline). Data
are a deterministic function of ``(n_customers, seed, chunk_size, shape)``: chunk ``k`` draws
from ``numpy.random.SeedSequence(seed, spawn_key=(k,))``, and the product catalogue and
campaign schedule depend on ``seed`` only. Dirt is injected on top, see ``scripts.dirt``.

Shapes (``SHAPES``): ``standard`` writes the whole contract; ``minimal`` writes
``customers.csv`` (``customer_id, created_at``) and ``orders.csv`` (``order_id, customer_id,
ordered_at, status, order_total``), exactly the standard shop of the same arguments cut down;
``transactions`` writes one CDNOW-style purchase log ``transactions.csv`` (``customer_id,
date, amount``; ``YYYYMMDD`` dates, two-decimal amounts, no quotes) of a single cohort: every
customer signs up in the first 12 weeks (``COHORT_DAYS``) and buys within days, orders are
never cancelled, and there are no campaigns.

Calendar: ``DATA_START`` (inclusive) to ``DATA_END`` (exclusive), independent of today.
Timestamps are naive UTC whole seconds; CSV renders them as ``YYYY-MM-DD HH:MM:SS``, booleans
as ``true``/``false``, nulls as empty fields and every string quoted. Parquet files carry no
Arrow schema blob, so readers see plain string columns (written dictionary-encoded) and
min/max statistics only on non-string columns.

Volumes per million customers (standard shape; seed-dependent, within a few percent): 1.03M
customer rows, 10.1M orders, 25M order items, 55M web events (27% anonymous), 2.4M campaign
touches, and the same 3,000 products for every ``n_customers``.

Ids: ``C`` + 7 digits (more if ``n_customers`` needs them), ``O``/``E``/``S``/``T`` + 11
digits, ``P`` + 5 digits, ``CMP`` + 3 digits. Order and event ids count up in chunk order.
Orders of non-existent customers use customer numbers above ``n_customers``; orphan order
items use order numbers from ``ORPHAN_ORDER_NUMBER``.
"""

from __future__ import annotations

from scripts.generate.campaigns import EFFECT_DAYS, PLACEBO_CAMPAIGNS
from scripts.generate.catalogue import CATEGORIES, COMPLEMENT_PROB, COMPLEMENTS
from scripts.generate.contract import RAW_TABLES, SCHEMAS, SHAPES, Shape
from scripts.generate.personas import COHORT_DAYS, GENDERS, PERSONAS, REGIONS
from scripts.generate.shop import GenerationSummary, generate
from scripts.generate.simulation import ORDER_CHANNELS
from scripts.ground_truth import DATA_END, DATA_START

__all__ = [
    "CATEGORIES",
    "COHORT_DAYS",
    "COMPLEMENTS",
    "COMPLEMENT_PROB",
    "DATA_END",
    "DATA_START",
    "EFFECT_DAYS",
    "GENDERS",
    "ORDER_CHANNELS",
    "PERSONAS",
    "PLACEBO_CAMPAIGNS",
    "RAW_TABLES",
    "REGIONS",
    "SCHEMAS",
    "SHAPES",
    "GenerationSummary",
    "Shape",
    "generate",
]
