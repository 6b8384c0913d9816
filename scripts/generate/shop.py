"""The entry point: validate arguments, simulate chunk by chunk, write while simulating."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from scripts.generate.arrow import format_ids
from scripts.generate.campaigns import (
    Campaigns,
    build_campaigns,
    simulate_touches,
    uplift_windows,
)
from scripts.generate.catalogue import Catalogue, build_catalogue, products_table
from scripts.generate.consent import with_channel_consent
from scripts.generate.contract import SHAPES, Shape, schema_of
from scripts.generate.personas import COHORT_DAYS, simulate_attributes, simulate_customers
from scripts.generate.simulation import (
    active_cells,
    draw_reloads,
    simulate_events,
    simulate_orders,
)
from scripts.generate.tables import (
    Counters,
    IdSpace,
    customers_table,
    events_table,
    items_table,
    orders_table,
    touches_table,
    transactions_table,
    truth_table,
    uplift_truth_table,
)
from scripts.generate.writers import (
    RawWriter,
    TruthWriter,
    plan_malformed_lines,
    write_chunk,
    write_truth_extras,
)
from scripts.ground_truth import GROUND_TRUTH_DIR


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
    shape: str = "standard"


def generate(
    n_customers: int,
    seed: int,
    out_dir: Path,
    fmt: Literal["parquet", "csv"] = "parquet",
    chunk_size: int = 50_000,
    progress: Callable[[int, int], None] | None = None,
    shape: Shape = "standard",
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
        File format of the raw tables of the standard shape (ground truth is always parquet;
        the other shapes always write CSV).
    chunk_size : int
        Customers simulated per chunk; bounds memory and is part of the data's identity.
    progress : callable, optional
        Called as ``progress(done_customers, n_customers)`` after each chunk is written.
    shape : {"standard", "transactions", "minimal", "channel_consent"}
        Which files to write (``SHAPES``): the full contract; one CDNOW-style purchase log
        ``transactions.csv`` of a single acquisition cohort (no campaigns); customers and
        orders with their required columns only; or the full contract with per-channel consent
        columns on customers.

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
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
    if shape != "standard":
        fmt = "csv"

    out_dir = Path(out_dir)
    raw_dir = out_dir / "raw"
    truth_dir = out_dir / GROUND_TRUTH_DIR
    for directory in (raw_dir, truth_dir):
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)

    catalogue = build_catalogue(seed)
    campaigns = build_campaigns(seed)
    if shape == "transactions":
        campaigns = campaigns.empty()
    n_chunks = -(-n_customers // chunk_size)
    malformed_plan = plan_malformed_lines(seed, n_chunks) if fmt == "csv" else {}
    ids = IdSpace(customer_width=max(7, len(str(2 * n_customers + 10))))
    counters = Counters(ghost_customer=n_customers + 1)

    paths = {name: raw_dir / f"{name}.{fmt}" for name in SHAPES[shape]}
    writers = {
        name: RawWriter(
            paths[name],
            name,
            fmt,
            malformed_plan.get(name, {}),
            contract=schema_of(name, columns),
            quoting="none" if shape == "transactions" else "needed",
        )
        for name, columns in SHAPES[shape].items()
    }
    truth_writer = TruthWriter(truth_dir)
    try:
        if "products" in writers:
            writers["products"].write(products_table(catalogue, seed), chunk_index=0)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future[None] | None = None
            done_customers = 0
            for chunk_index in range(n_chunks):
                start = chunk_index * chunk_size
                stop = min(start + chunk_size, n_customers)
                tables, truth = _simulate_chunk(
                    chunk_index, start, stop, seed, shape, catalogue, campaigns, ids, counters
                )
                if pending is not None:
                    pending.result()
                    _report(progress, done_customers, n_customers)
                pending = pool.submit(
                    write_chunk, writers, truth_writer, tables, truth, chunk_index
                )
                done_customers = stop
            if pending is not None:
                pending.result()
                _report(progress, done_customers, n_customers)
    finally:
        for writer in writers.values():
            writer.close()
        truth_writer.close()

    cohort_days = COHORT_DAYS if shape == "transactions" else None
    write_truth_extras(
        truth_dir, campaigns, writers, n_customers, seed, fmt, chunk_size, shape, cohort_days
    )
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
        shape=shape,
    )


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _simulate_chunk(
    chunk_index: int,
    start: int,
    stop: int,
    seed: int,
    shape: Shape,
    catalogue: Catalogue,
    campaigns: Campaigns,
    ids: IdSpace,
    counters: Counters,
) -> tuple[dict[str, pa.Table], dict[str, pa.Table]]:
    """Simulate customers ``start`` to ``stop``; return raw tables and ground-truth tables.

    Only what ``shape`` writes is turned into tables (and web sessions only when written); the
    draws that are made come in the same order for every shape, so a ``minimal`` shop is the
    standard shop with the same arguments, cut down.
    """
    sim_seed, dirt_seed = np.random.SeedSequence(seed, spawn_key=(chunk_index,)).spawn(2)
    rng = np.random.default_rng(sim_seed)
    dirt_rng = np.random.default_rng(dirt_seed)

    cohort_days = COHORT_DAYS if shape == "transactions" else None
    customers = simulate_customers(stop - start, rng, cohort_days)
    attributes = simulate_attributes(customers, rng)
    reloads = draw_reloads(customers, attributes, dirt_rng)
    touches = simulate_touches(
        customers, campaigns, reloads.stale_opt_in, attributes.opt_in, reloads.changed_s, rng
    )
    windows = uplift_windows(touches, campaigns)
    cells = active_cells(customers)
    orders, items = simulate_orders(customers, cells, windows, catalogue, rng)

    customer_ids = format_ids("C", np.arange(start + 1, stop + 1), ids.customer_width)
    truth = {
        "customers": truth_table(customer_ids, customers, attributes, reloads),
        "uplift_windows": uplift_truth_table(customer_ids, windows),
    }
    if shape == "transactions":
        return {"transactions": transactions_table(customer_ids, orders, dirt_rng)}, truth

    tables = {
        "customers": customers_table(
            customer_ids, customers, attributes, reloads, chunk_index, dirt_rng
        )
    }
    tables["orders"], n_order_ids = orders_table(
        customer_ids, customers, orders, counters, chunk_index, dirt_rng, ids
    )
    if shape == "minimal":
        counters.order += n_order_ids
        return tables, truth
    tables["order_items"] = items_table(items, counters, chunk_index, dirt_rng)
    counters.order += n_order_ids
    events = simulate_events(customers, cells, orders, items, catalogue, rng)
    del cells
    tables["web_events"] = events_table(customer_ids, events, counters, dirt_rng)
    tables["campaign_touches"] = touches_table(customer_ids, touches, counters, dirt_rng)
    if shape == "channel_consent":
        tables["customers"] = with_channel_consent(tables["customers"], seed)
    return tables, truth
