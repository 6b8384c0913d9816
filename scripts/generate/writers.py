"""Writing: raw files (parquet, or CSV with planned malformed lines) and the ground truth."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from scripts import dirt
from scripts.generate.arrow import timestamp_array
from scripts.generate.campaigns import EFFECT_DAYS, Campaigns
from scripts.generate.catalogue import COMPLEMENT_PROB, COMPLEMENTS
from scripts.generate.contract import SCHEMAS
from scripts.generate.personas import CANCEL_PROB, PERSONAS
from scripts.ground_truth import (
    DATA_END,
    DATA_START,
    FIRST_ORDER_MEAN_DELAY_DAYS,
    N_WEEKS,
    seasonality,
    week_bounds,
)

_MALFORMED_KEY = 2**31 - 3


def write_chunk(
    writers: dict[str, RawWriter],
    truth_writer: TruthWriter,
    tables: dict[str, pa.Table],
    truth: dict[str, pa.Table],
    chunk_index: int,
) -> None:
    for name, table in tables.items():
        if name in writers:
            writers[name].write(table, chunk_index)
    for name, table in truth.items():
        truth_writer.write(name, table)


class TruthWriter:
    """Append chunks to the ground-truth parquet files ``<truth_dir>/<name>.parquet``."""

    def __init__(self, truth_dir: Path) -> None:
        self.truth_dir = truth_dir
        self._writers: dict[str, pq.ParquetWriter] = {}

    def write(self, name: str, table: pa.Table) -> None:
        if name not in self._writers:
            path = self.truth_dir / f"{name}.parquet"
            self._writers[name] = pq.ParquetWriter(path, table.schema)
        self._writers[name].write_table(table)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class RawWriter:
    """Append chunks to one raw file: parquet, or CSV with the planned malformed lines.

    Low-cardinality string columns arrive dictionary-encoded (cheap to build, written as
    parquet dictionary pages directly). The Arrow schema is not stored in the parquet file, so
    every reader sees the contract's plain string columns. Chunks may carry more columns than
    ``contract``; only the contract's are written. With ``quoting="none"`` the CSV has no
    quotes at all, header included.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        fmt: str,
        malformed: Mapping[int, list[tuple[float, str]]],
        contract: pa.Schema | None = None,
        quoting: Literal["needed", "none"] = "needed",
    ) -> None:
        self.path = path
        self.name = name
        self.contract = SCHEMAS[name] if contract is None else contract
        self.fmt = fmt
        self.quoting = quoting
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
            if quoting == "none":
                self._file.write((",".join(self.contract.names) + "\n").encode())
            else:
                header = pacsv.WriteOptions(include_header=True)
                pacsv.write_csv(self._csv_schema.empty_table(), self._file, header)

    def write(self, table: pa.Table, chunk_index: int) -> None:
        if table.schema.names != self.contract.names:
            missing = set(self.contract.names) - set(table.schema.names)
            if missing:
                raise AssertionError(f"{self.name}: lacks contract columns {sorted(missing)}")
            table = table.select(self.contract.names)
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
            options = pacsv.WriteOptions(include_header=False, quoting_style=self.quoting)
            pacsv.write_csv(table, self._file, options)
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


def plan_malformed_lines(
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


def write_truth_extras(
    truth_dir: Path,
    campaigns: Campaigns,
    writers: Mapping[str, RawWriter],
    n_customers: int,
    seed: int,
    fmt: str,
    chunk_size: int,
    shape: str,
    cohort_days: float | None,
) -> None:
    pq.write_table(campaigns.table(), truth_dir / "campaigns.parquet")
    starts, ends = week_bounds()
    weeks = pa.table(
        {
            "week": pa.array(np.arange(N_WEEKS)),
            "week_start": timestamp_array(starts),
            "week_end": timestamp_array(ends),
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
        "shape": shape,
        "cohort_days": cohort_days,
        "cancel_prob": CANCEL_PROB if cohort_days is None else 0.0,
        "first_order_mean_delay_days": FIRST_ORDER_MEAN_DELAY_DAYS,
        "personas": {p.name: p.share for p in PERSONAS},
        "dirt_rates": dirt.DIRT_RATES,
        "dirt_counts": dirt.DIRT_COUNTS,
        "campaigns_affect_purchases": len(campaigns.sent_s) > 0,
        "campaign_effect_days": EFFECT_DAYS,
        "complement_pairs": [list(pair) for pair in COMPLEMENTS],
        "complement_prob": COMPLEMENT_PROB,
    }
    (truth_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    malformed = {
        name: writer.malformed_line_numbers
        for name, writer in writers.items()
        if writer.malformed_line_numbers
    }
    (truth_dir / "malformed_csv_lines.json").write_text(json.dumps(malformed, indent=2) + "\n")
