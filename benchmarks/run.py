"""The benchmark harness: how fast and how big segmart's stages are, against two references.

``python -m benchmarks.run --sizes S M`` generates a shop per size, then runs every stage as its
own subprocess, several times: ``segmart generate``, ``segmart build`` (dbt build with its tests),
``segmart train``, ``segmart score`` (with write-back), ``segmart run`` (end to end), plus the two
references that compute the same features on the same files: one hand-written DuckDB statement
(``benchmarks/single_query.sql``, the practical floor) and a seed-style pandas pipeline
(``benchmarks/pandas_reference.py``). Wall time, CPU time and peak RSS come from ``os.wait4`` on
each child, so every stage is measured on its own.

Before any time is compared, the warehouse's features (``int_customer_snapshots_featurized``,
``ml.customer_features``, ``ml.training_examples``) must equal both references' within
tolerance; otherwise the harness stops with the differences and a non-zero exit.

Results go to ``benchmarks/results/<timestamp>.json`` (git-ignored) and the Markdown summary to
``docs/benchmarks.md``. Methodology: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from string import Template
from typing import TypeVar

import duckdb

from ml.config import dbt_var_defaults

# The training snapshots dbt builds by default (its one home: dbt_project.yml).
N_SNAPSHOTS: int = dbt_var_defaults()["n_snapshots"]
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SINGLE_QUERY_SQL = Path(__file__).resolve().parent / "single_query.sql"
VOCABULARY_CSV = PROJECT_ROOT / "dbt_project" / "seeds" / "controlled_vocabulary.csv"
DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_DOCS = PROJECT_ROOT / "docs" / "benchmarks.md"
DEFAULT_DATA_ROOT = Path("/tmp/segmart-bench")
T = TypeVar("T")

SIZES: dict[str, int] = {"XS": 2_000, "S": 100_000, "M": 1_000_000}
DEFAULT_REPETITIONS: dict[str, int] = {"XS": 1, "S": 3, "M": 2}
FIXED_COST_SIZE = "XS"
"""The size whose `segmart build` time stands for dbt's fixed cost (start-up, parse, hooks,
per-node and per-test overhead): its data is so small that the work itself is negligible."""
SEED = 42

STAGES = ("generate", "dbt_parse", "build", "single_query", "pandas", "train", "score", "run")
ML_STAGES = ("train", "score", "run")
STAGE_LABELS = {
    "generate": "generate (`scripts.generate`)",
    "dbt_parse": "dbt parse, cold (no partial-parse cache)",
    "build": "`segmart build` (dbt build + tests)",
    "single_query": "single DuckDB query (floor)",
    "pandas": "pandas reference",
    "train": "`segmart train`",
    "score": "`segmart score` (with write-back)",
    "score_scaled": "`segmart score`, customers x{scale}",
    "run": "`segmart run` (end to end)",
}
# Columns of the marts that describe the fit rather than the customer.
METADATA_COLUMNS = frozenset({"feature_stats_fitted_as_of", "feature_stats_id"})
RTOL = 1e-6
ATOL = 1e-9

TARGET_BUILD_VS_FLOOR = 1.5
TARGET_SPEEDUP_VS_PANDAS = 2.5
TARGET_MEMORY_VS_PANDAS = 0.25
TARGET_TRAIN_SECONDS = 30.0
TARGET_SCORE_SECONDS = 10.0
TARGET_SCORE_MEMORY_GROWTH = 1.2
TARGET_RUN_SECONDS = 90.0
TARGET_RUN_RSS_BYTES = 4 * 1024**3


class BenchmarkError(RuntimeError):
    """A stage failed or the outputs disagree: the numbers would mean nothing."""


@dataclass(frozen=True)
class Measurement:
    """One run of one stage, as the kernel accounted it for that child process tree."""

    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    load_before: float
    load_after: float


@dataclass
class StageResult:
    """Every run of a stage at one size, and its summary."""

    runs: list[Measurement] = field(default_factory=list)
    skipped: str | None = None
    needs_more_than_bytes: int | None = None  # ran out of an address-space cap this size

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(r.seconds for r in self.runs) if self.runs else None

    @property
    def median_cpu_seconds(self) -> float | None:
        return statistics.median(r.cpu_seconds for r in self.runs) if self.runs else None

    @property
    def peak_rss_bytes(self) -> int | None:
        return max(r.peak_rss_bytes for r in self.runs) if self.runs else None

    def to_json(self) -> dict:
        return {
            "runs": [asdict(r) for r in self.runs],
            "median_seconds": self.median_seconds,
            "median_cpu_seconds": self.median_cpu_seconds,
            "peak_rss_bytes": self.peak_rss_bytes,
            "skipped": self.skipped,
            "needs_more_than_bytes": self.needs_more_than_bytes,
        }


# --------------------------------------------------------------------------------------------
# Measuring a child process


def measure(
    command: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    address_space_bytes: int | None = None,
) -> Measurement:
    """Run `command` to completion and return its wall time, CPU time and peak RSS.

    The peak RSS is the kernel's ``ru_maxrss`` for the child as reaped by ``os.wait4``: the
    largest resident set of the child or any descendant it waited for, not a sum.

    Raises
    ------
    BenchmarkError
        If the command exits non-zero; the message carries the tail of its output.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with open(log, "wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            preexec_fn=_address_space_limit(address_space_bytes),
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise BenchmarkError(
            f"{' '.join(command)} exited {process.returncode} (log {log}):\n" + "\n".join(tail)
        )
    return Measurement(
        seconds=round(seconds, 3),
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
        peak_rss_bytes=usage.ru_maxrss * 1024,  # KiB on Linux
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
    )


def _address_space_limit(limit: int | None) -> Callable[[], None] | None:
    """A preexec_fn capping the child's address space, so a runaway reference fails alone
    instead of waking the OOM killer on a shared machine."""
    if limit is None:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


# --------------------------------------------------------------------------------------------
# The single-query reference (also run as a child: `python -m benchmarks.run single-query`)


def single_query_sql(
    raw_dir: Path,
    as_of: date | None = None,
    horizon_days: int = 90,
    n_snapshots: int = N_SNAPSHOTS,
    snapshot_step_days: int = 30,
) -> str:
    """benchmarks/single_query.sql with its parameters filled in."""
    return Template(SINGLE_QUERY_SQL.read_text()).substitute(
        raw_dir=str(raw_dir.resolve()).replace("'", "''"),
        vocabulary_csv=str(VOCABULARY_CSV).replace("'", "''"),
        as_of=f"date '{as_of.isoformat()}'" if as_of else "cast(null as date)",
        horizon_days=int(horizon_days),
        n_snapshots=int(n_snapshots),
        snapshot_step_days=int(snapshot_step_days),
        max_money=100_000,
        max_quantity=1_000,
        min_valid_date="date '1990-01-01'",
    )


def run_single_query(
    raw_dir: Path, out: Path, memory_limit: str | None = None, **parameters: object
) -> None:
    """Run the single query into table `snapshot_features` of a fresh DuckDB file `out`.

    DuckDB's settings are the dev profile's (insertion order not preserved, DuckDB's default
    memory limit) unless `memory_limit` (e.g. "6GB") is given.
    """
    out.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {"preserve_insertion_order": False}
    if memory_limit:
        config["memory_limit"] = memory_limit
    with duckdb.connect(str(out), config=config) as con:
        con.execute(single_query_sql(raw_dir, **parameters))  # type: ignore[arg-type]


# `dbt parse` configured as `segmart build` configures dbt (same vars, profile, environment).
_DBT_PARSE = (
    "from ml.build import dbt_vars, run_dbt; from ml.config import Settings; "
    "settings = Settings(); run_dbt(settings, 'parse', dbt_vars(settings))"
)


# --------------------------------------------------------------------------------------------
# The equivalence check


@dataclass(frozen=True)
class Comparison:
    """One reference against one warehouse relation."""

    reference: str
    relation: str
    n_rows: int
    only_in_warehouse: int
    only_in_reference: int
    mismatched: dict[str, int]
    missing_columns: list[str]
    examples: list[str]

    @property
    def ok(self) -> bool:
        return not (
            self.only_in_warehouse
            or self.only_in_reference
            or self.mismatched
            or self.missing_columns
            or self.n_rows == 0
        )

    def describe(self) -> str:
        if self.ok:
            return f"{self.reference} = {self.relation}: {self.n_rows:,} rows equal"
        parts = [f"{self.reference} != {self.relation} ({self.n_rows:,} rows in the warehouse)"]
        if self.missing_columns:
            parts.append(f"  reference lacks columns: {', '.join(self.missing_columns)}")
        if self.only_in_warehouse or self.only_in_reference:
            parts.append(
                f"  rows only in the warehouse: {self.only_in_warehouse:,}, "
                f"only in the reference: {self.only_in_reference:,}"
            )
        for column, count in sorted(self.mismatched.items(), key=lambda kv: -kv[1]):
            parts.append(f"  {column}: {count:,} rows differ")
        parts.extend(f"  e.g. {example}" for example in self.examples)
        return "\n".join(parts)


# (relation, key column holding the snapshot date, reference filter, column -> reference column)
_CHECKED_RELATIONS = (
    ("intermediate.int_customer_snapshots_featurized", "snapshot_on", "true", "raw"),
    ("ml.customer_features", "as_of", "not is_training", "same"),
    ("ml.training_examples", "snapshot_on", "is_training", "same"),
)
_NUMERIC_TYPES = ("DOUBLE", "FLOAT", "INTEGER", "BIGINT", "HUGEINT", "SMALLINT", "DECIMAL")


def _reference_column(column: str, naming: str) -> str:
    if naming == "raw" and column not in ("is_training",):
        return f"{column}__raw"
    return column


def compare(
    con: duckdb.DuckDBPyConnection,
    reference_name: str,
    reference_relation: str,
    warehouse_relation: str,
    snapshot_key: str,
    reference_filter: str,
    naming: str,
) -> Comparison:
    """Join a warehouse relation to a reference on (customer, snapshot) and count differences.

    Numbers (and booleans) are equal when both are null or |a - b| <= ATOL + RTOL * |a|; other
    types must be identical.
    """
    described = con.sql(f"describe select * from wh.{warehouse_relation}").fetchall()
    reference_columns = {
        row[0] for row in con.sql(f"describe select * from {reference_relation}").fetchall()
    }
    columns = [
        (name, kind)
        for name, kind, *_ in described
        if name not in ("customer_id", snapshot_key) and name not in METADATA_COLUMNS
    ]
    missing = [
        name for name, _ in columns if _reference_column(name, naming) not in reference_columns
    ]
    columns = [(name, kind) for name, kind in columns if name not in missing]

    def equal(name: str, kind: str) -> str:
        left = f'w."{name}"'
        right = f'r."{_reference_column(name, naming)}"'
        if kind == "BOOLEAN" or kind.startswith(_NUMERIC_TYPES):
            left, right = f"cast({left} as double)", f"cast({right} as double)"
            return (
                f"(({left} is null and {right} is null) or "
                f"coalesce(abs({left} - {right}) <= {ATOL} + {RTOL} * abs({left}), false))"
            )
        return f"({left} is not distinct from {right})"

    counts = ",\n".join(
        f"count(*) filter (where w._present and r._present and not {equal(name, kind)})"
        for name, kind in columns
    )
    joined = f"""
        (select *, true as _present from wh.{warehouse_relation}) as w
        full outer join (
            select * replace (cast(snapshot_on as date) as snapshot_on), true as _present
            from {reference_relation}
            where {reference_filter}
        ) as r
            on w.customer_id = r.customer_id and w.{snapshot_key} = r.snapshot_on
    """
    row = con.sql(
        f"""
        select
            count(*) filter (where w._present),
            count(*) filter (where r._present is null),
            count(*) filter (where w._present is null),
            {counts}
        from {joined}
        """
    ).fetchall()[0]
    n_rows, only_in_warehouse, only_in_reference, *per_column = row
    mismatched = {
        name: count for (name, _), count in zip(columns, per_column, strict=True) if count
    }
    examples = []
    for name in sorted(mismatched, key=lambda n: -mismatched[n])[:3]:
        kind = dict(columns)[name]
        sample = con.sql(
            f"""
            select w.customer_id, w.{snapshot_key}, w."{name}",
                r."{_reference_column(name, naming)}"
            from {joined}
            where w._present and r._present and not {equal(name, kind)}
            limit 2
            """
        ).fetchall()
        examples.extend(
            f"{name} of {customer} at {snapshot}: warehouse {ours!r}, reference {theirs!r}"
            for customer, snapshot, ours, theirs in sample
        )
    return Comparison(
        reference=reference_name,
        relation=warehouse_relation,
        n_rows=n_rows,
        only_in_warehouse=only_in_warehouse,
        only_in_reference=only_in_reference,
        mismatched=mismatched,
        missing_columns=missing,
        examples=examples,
    )


def check_equivalence(
    warehouse: Path, pandas_output: Path | None, single_query_output: Path | None
) -> list[Comparison]:
    """Compare the warehouse's features with each reference's; raise if any differ.

    Raises
    ------
    BenchmarkError
        Listing every relation and column that differs, with examples.
    """
    comparisons = []
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        references = []
        if single_query_output is not None:
            con.execute(f"attach '{single_query_output}' as single_query (read_only)")
            references.append(("single query", "single_query.snapshot_features"))
        if pandas_output is not None:
            references.append(("pandas", f"read_parquet('{pandas_output}')"))
        for name, relation in references:
            for warehouse_relation, snapshot_key, reference_filter, naming in _CHECKED_RELATIONS:
                comparisons.append(
                    compare(
                        con,
                        name,
                        relation,
                        warehouse_relation,
                        snapshot_key,
                        reference_filter,
                        naming,
                    )
                )
    failed = [c for c in comparisons if not c.ok]
    if failed:
        raise BenchmarkError(
            "the references do not compute what the warehouse computes; no time is compared:\n"
            + "\n".join(c.describe() for c in failed)
        )
    return comparisons


def in_a_child(function: Callable[..., T], *args: object) -> T:
    """Call `function` in a spawned process, so the harness itself stays small.

    Linux carries a process's resident set at fork into the child's peak RSS (`ru_maxrss`):
    after a comparison that grew the harness to 5 GB at M, every later stage reported 5 GB;
    after scaling the mart in-process, the scaled score reported 1.4 GB instead of 0.9 GB.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# --------------------------------------------------------------------------------------------
# Machine and source


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """CPU, cores, memory, OS and the versions that matter, for the results file."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_bytes": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _package_version(name)
            for name in (
                "duckdb",
                "dbt-core",
                "dbt-duckdb",
                "pandas",
                "pyarrow",
                "numpy",
                "scikit-learn",
            )
        },
    }


def source_info(source: Path) -> dict:
    """Which code was measured: the git commit of `source` and whether the tree was dirty."""
    info: dict = {"dir": str(source), "commit": None, "dirty": None}
    try:
        info["commit"] = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info["dirty"] = bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


# --------------------------------------------------------------------------------------------
# One size


@dataclass
class SizeResult:
    """Everything measured at one size."""

    size: str
    n_customers: int
    row_counts: dict[str, int] = field(default_factory=dict)
    stages: dict[str, StageResult] = field(default_factory=dict)
    equivalence: list[str] = field(default_factory=list)
    dbt_nodes: list[dict] = field(default_factory=list)
    score_scale: int | None = None

    def to_json(self) -> dict:
        return {
            "n_customers": self.n_customers,
            "row_counts": self.row_counts,
            "stages": {name: stage.to_json() for name, stage in self.stages.items()},
            "equivalence": self.equivalence,
            "dbt_nodes": self.dbt_nodes,
            "score_scale": self.score_scale,
        }


@dataclass(frozen=True)
class Options:
    """What to run, how often and where."""

    sizes: tuple[str, ...]
    repetitions: dict[str, int]
    stages: tuple[str, ...]
    data_root: Path
    source: Path
    reuse_data: bool
    keep_data: bool
    score_scale: int
    seed: int = SEED
    pandas_memory_limit: int | None = None
    single_query_memory_limit: str | None = None

    def stages_at(self, size: str) -> tuple[str, ...]:
        """The stages to run at a size: the fixed-cost size, when only added for the fixed
        cost, runs generate and build alone."""
        if size == FIXED_COST_SIZE and size not in self.requested_sizes:
            return tuple(s for s in self.stages if s in ("generate", "dbt_parse", "build"))
        return self.stages

    @property
    def requested_sizes(self) -> tuple[str, ...]:
        return self.asked_for or self.sizes

    asked_for: tuple[str, ...] = ()


def _python() -> str:
    return sys.executable


def _segmart(*arguments: str) -> list[str]:
    return [_python(), "-m", "ml.cli", *arguments]


def _generate(n_customers: int, seed: int, out: Path) -> list[str]:
    """What `segmart generate` runs, without the CLI's progress bar and summary table."""
    code = (
        "from pathlib import Path; from scripts.generate import generate; "
        f"generate({n_customers}, {seed}, Path({str(out)!r}), 'parquet')"
    )
    return [_python(), "-c", code]


def _environment(options: Options, raw_dir: Path, work: Path, warehouse: Path) -> dict[str, str]:
    return os.environ | {
        "PYTHONPATH": str(options.source),
        "SEGMART_RAW_DIR": str(raw_dir),
        "SEGMART_WAREHOUSE": str(warehouse),
        "SEGMART_MODELS_DIR": str(work / "models"),
        "SEGMART_PUBLISHED_DIR": str(work / "published"),
        "SEGMART_REPORTS_DIR": str(work / "reports"),
        "SEGMART_EXPORTS_DIR": str(work / "exports"),
        # A private dbt target: its partial-parse cache is this benchmark's, not a colleague's.
        "DBT_TARGET_PATH": str(work / "dbt_target"),
    }


def _remove_warehouse(warehouse: Path) -> None:
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        path.unlink(missing_ok=True)


def _ml_available(options: Options, env: dict[str, str]) -> str | None:
    """Why train/score/run cannot run from `source`, or None when they can."""
    probe = subprocess.run(
        [_python(), "-c", "import ml.training, ml.scoring"],
        env=env,
        cwd=options.source,
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        return None
    lines = probe.stderr.strip().splitlines()
    return f"not available in this checkout ({lines[-1] if lines else 'import failed'})"


def _row_counts(raw_dir: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    return {
        path.stem: pq.read_metadata(path).num_rows for path in sorted(raw_dir.glob("*.parquet"))
    }


def _dbt_nodes(target: Path) -> list[dict]:
    """Per-node execution times of the last dbt invocation, slowest first."""
    path = target / "run_results.json"
    if not path.exists():
        return []
    results = json.loads(path.read_text())
    nodes = [
        {
            "node": r["unique_id"],
            "status": r["status"],
            "seconds": round(r["execution_time"], 3),
        }
        for r in results.get("results", [])
    ]
    nodes.sort(key=lambda n: -n["seconds"])
    total = {
        "node": "(dbt's elapsed time, whole invocation)",
        "seconds": results.get("elapsed_time"),
    }
    return [total, *nodes]


def _scale_customer_features(source: Path, target: Path, factor: int) -> None:
    """Copy a warehouse and repeat every row of ml.customer_features `factor` times under new
    customer ids (`<id>~<copy>`), so scoring sees `factor` times the customers."""
    shutil.copy(source, target)
    with duckdb.connect(str(target)) as con:
        copies = " union all ".join(
            "select * replace (customer_id || '~" + str(copy) + "' as customer_id)"
            " from ml.customer_features"
            for copy in range(1, factor)
        )
        con.execute(
            "create or replace table ml.customer_features as "
            f"select * from ml.customer_features union all {copies}"
        )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _report_run(size: str, stage: str, repetition: str, m: Measurement) -> None:
    _log(
        f"[{size} {repetition}] {stage}: {m.seconds:.1f} s wall, {m.cpu_seconds:.1f} s CPU, "
        f"{m.peak_rss_bytes / 1024**2:,.0f} MiB peak RSS, load {m.load_before:.1f}->"
        f"{m.load_after:.1f}"
    )


def run_size(
    options: Options, size: str, progress: Callable[[SizeResult], None] = lambda _: None
) -> SizeResult:
    """Measure every selected stage at one size; check equivalence before the timings count.

    `progress` gets the partial result after every run, so an interrupted benchmark keeps what
    it measured.
    """
    n_customers = SIZES[size]
    result = SizeResult(size=size, n_customers=n_customers)
    root = options.data_root / size
    raw_dir, work = root / "raw", root / "work"
    warehouse = work / "segmart.duckdb"
    env = _environment(options, raw_dir, work, warehouse)
    marker = root / ".generated.json"
    wanted = {"n_customers": n_customers, "seed": options.seed}
    have_data = marker.exists() and json.loads(marker.read_text()) == wanted
    stages = options.stages_at(size)
    unavailable = _ml_available(options, env) if set(stages) & set(ML_STAGES) else None
    if unavailable:
        for stage in ML_STAGES:
            if stage in stages:
                result.stages[stage] = StageResult(skipped=unavailable)
        stages = tuple(s for s in stages if s not in ML_STAGES)
        _log(f"[{size}] train, score and run skipped: {unavailable}")

    def timed(
        stage: str,
        repetition: int,
        command: Sequence[str],
        reference: bool = False,
        address_space_bytes: int | None = None,
    ) -> Measurement:
        """Time one run; references run from this checkout, segmart from options.source."""
        log = work / "logs" / f"{stage}-{repetition}.log"
        if reference:
            measurement = measure(
                command,
                env | {"PYTHONPATH": str(PROJECT_ROOT)},
                PROJECT_ROOT,
                log,
                address_space_bytes,
            )
        else:
            measurement = measure(command, env, options.source, log)
        result.stages.setdefault(stage, StageResult()).runs.append(measurement)
        _report_run(size, stage, f"{repetition}/{options.repetitions[size]}", measurement)
        progress(result)
        return measurement

    work.mkdir(parents=True, exist_ok=True)
    if "dbt_parse" in stages or "build" in stages or "run" in stages:
        # A cold parse, timed once; it also leaves the partial-parse cache every build uses.
        shutil.rmtree(work / "dbt_target", ignore_errors=True)
        timed("dbt_parse", 1, [_python(), "-c", _DBT_PARSE])

    checked = pandas_failed = False
    built = work / ".built.json"  # which data the warehouse in work/ was built from
    single_query_out = work / "single_query.duckdb"
    pandas_out = work / "pandas_features.parquet"
    for repetition in range(1, options.repetitions[size] + 1):
        if "generate" in stages and not (options.reuse_data and have_data):
            shutil.rmtree(raw_dir, ignore_errors=True)
            marker.unlink(missing_ok=True)
            timed("generate", repetition, _generate(n_customers, options.seed, root))
            marker.write_text(json.dumps(wanted))
            have_data = True
        if not have_data:
            raise BenchmarkError(f"no data for size {size} in {root}: include stage generate")
        if not result.row_counts:
            result.row_counts = _row_counts(raw_dir)
        if "build" in stages:
            _remove_warehouse(warehouse)
            built.unlink(missing_ok=True)
            timed("build", repetition, _segmart("build", "--raw-dir", str(raw_dir)))
            built.write_text(json.dumps(wanted))
            result.dbt_nodes = _dbt_nodes(work / "dbt_target")
        if "single_query" in stages:
            timed(
                "single_query",
                repetition,
                [
                    _python(),
                    "-m",
                    "benchmarks.run",
                    "single-query",
                    "--raw-dir",
                    str(raw_dir),
                    "--out",
                    str(single_query_out),
                    *(
                        ["--memory-limit", options.single_query_memory_limit]
                        if options.single_query_memory_limit
                        else []
                    ),
                ],
                reference=True,
            )
        if "pandas" in stages and not pandas_failed:
            try:
                timed(
                    "pandas",
                    repetition,
                    [
                        _python(),
                        "-m",
                        "benchmarks.pandas_reference",
                        "--raw-dir",
                        str(raw_dir),
                        "--out",
                        str(pandas_out),
                    ],
                    reference=True,
                    address_space_bytes=options.pandas_memory_limit,
                )
            except BenchmarkError as error:
                if options.pandas_memory_limit is None:
                    raise
                # Under a memory cap, running out is a result: pandas needs more than the cap.
                pandas_failed = True
                result.stages["pandas"] = StageResult(
                    skipped=f"failed under a {_bytes(options.pandas_memory_limit)} address-space "
                    f"cap: {str(error).strip().splitlines()[-1]}",
                    needs_more_than_bytes=options.pandas_memory_limit,
                )
                _log(f"[{size}] pandas: {result.stages['pandas'].skipped}")
        references_ran = "single_query" in stages or ("pandas" in stages and not pandas_failed)
        warehouse_current = built.exists() and json.loads(built.read_text()) == wanted
        if not checked and references_ran and warehouse_current:
            comparisons = in_a_child(
                check_equivalence,
                warehouse,
                pandas_out if "pandas" in stages and not pandas_failed else None,
                single_query_out if "single_query" in stages else None,
            )
            result.equivalence = [c.describe() for c in comparisons]
            progress(result)
            for line in result.equivalence:
                _log(f"[{size}] equal: {line}")
            checked = True
        if "train" in stages:
            timed("train", repetition, _segmart("train"))
        if "score" in stages:
            timed("score", repetition, _segmart("score"))
            if options.score_scale > 1 and size != "XS" and size == options.sizes[-1]:
                result.score_scale = options.score_scale
                scaled = work / "scaled.duckdb"
                _remove_warehouse(scaled)
                in_a_child(_scale_customer_features, warehouse, scaled, options.score_scale)
                timed("score_scaled", repetition, _segmart("score", "--warehouse", str(scaled)))
                _remove_warehouse(scaled)
        if "run" in stages:
            _remove_warehouse(warehouse)
            built.unlink(missing_ok=True)
            timed("run", repetition, _segmart("run", "--raw-dir", str(raw_dir)))

    if not options.keep_data:
        shutil.rmtree(root, ignore_errors=True)
    return result


# --------------------------------------------------------------------------------------------
# Reporting


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024**3:,.2f} GiB" if value >= 1024**3 else f"{value / 1024**2:,.0f} MiB"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}x"


def _stage(sizes: dict[str, dict], size: str, stage: str) -> dict:
    return sizes.get(size, {}).get("stages", {}).get(stage, {})


def targets(results: dict) -> list[dict]:
    """Each target of the issue at every size but the fixed-cost one: measured, met or not."""
    sizes = results["sizes"]
    return [
        row
        for size in sorted(sizes, key=lambda s: -sizes[s]["n_customers"])
        if size != FIXED_COST_SIZE  # the targets are about scale
        for row in _targets_at(sizes, size)
    ]


def _targets_at(sizes: dict, size: str) -> list[dict]:
    def get(stage: str, key: str, at: str = size) -> float | None:
        return _stage(sizes, at, stage).get(key)

    build, floor = get("build", "median_seconds"), get("single_query", "median_seconds")
    build_cpu = get("build", "median_cpu_seconds")
    floor_cpu = get("single_query", "median_cpu_seconds")
    fixed_cpu = (
        get("build", "median_cpu_seconds", FIXED_COST_SIZE) if FIXED_COST_SIZE in sizes else None
    )
    pandas_cpu = get("pandas", "median_cpu_seconds")
    pandas_floor = get("pandas", "needs_more_than_bytes")
    fixed = get("build", "median_seconds", FIXED_COST_SIZE) if FIXED_COST_SIZE in sizes else None
    pandas_s, pandas_rss = get("pandas", "median_seconds"), get("pandas", "peak_rss_bytes")
    build_rss = get("build", "peak_rss_bytes")
    rows: list[dict] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        rows.append({"size": size, "target": target, "measured": measured, "met": met})

    if build is not None and floor is not None:
        allowed = TARGET_BUILD_VS_FLOOR * floor + (fixed or 0.0)
        fixed_text = (
            f" + fixed {_seconds(fixed)}" if fixed is not None else " (fixed cost unknown)"
        )
        add(
            f"build <= {TARGET_BUILD_VS_FLOOR} x single query + dbt fixed cost",
            f"{_seconds(build)} vs {TARGET_BUILD_VS_FLOOR} x {_seconds(floor)}{fixed_text}"
            f" = {_seconds(allowed)}",
            build <= allowed if fixed is not None else None,
        )
    for reference, value in (("single query", floor), ("pandas reference", pandas_s)):
        if build is not None and value is None:
            add(
                f"build against the {reference}",
                f"build {_seconds(build)} ({build_cpu or 0:,.0f} s CPU, "
                f"{_bytes(build_rss)} peak RSS); the {reference} was not measured at this size",
                None,
            )
    if build_cpu is not None and floor_cpu is not None and fixed_cpu is not None:
        allowed_cpu = TARGET_BUILD_VS_FLOOR * floor_cpu + fixed_cpu
        add(
            "the same, in CPU seconds (steadier on a shared machine)",
            f"{build_cpu:,.0f} s vs {TARGET_BUILD_VS_FLOOR} x {floor_cpu:,.0f} s + fixed "
            f"{fixed_cpu:,.0f} s = {allowed_cpu:,.0f} s CPU",
            build_cpu <= allowed_cpu,
        )
    if build and pandas_s:
        add(
            f"build >= {TARGET_SPEEDUP_VS_PANDAS}x faster than pandas",
            f"{pandas_s / build:.2f}x ({_seconds(build)} vs {_seconds(pandas_s)})",
            pandas_s / build >= TARGET_SPEEDUP_VS_PANDAS,
        )
    if build_cpu and pandas_cpu:
        add(
            "the same, in CPU seconds",
            f"{pandas_cpu / build_cpu:.2f}x ({build_cpu:,.0f} s vs {pandas_cpu:,.0f} s CPU)",
            pandas_cpu / build_cpu >= TARGET_SPEEDUP_VS_PANDAS,
        )
    if build_rss and pandas_rss:
        add(
            f"build peak RSS <= {TARGET_MEMORY_VS_PANDAS} x pandas'",
            f"{build_rss / pandas_rss:.2f}x ({_bytes(build_rss)} vs {_bytes(pandas_rss)})",
            build_rss <= TARGET_MEMORY_VS_PANDAS * pandas_rss,
        )
    elif build_rss and pandas_floor:
        add(
            f"build peak RSS <= {TARGET_MEMORY_VS_PANDAS} x pandas'",
            f"{_bytes(build_rss)}; pandas ran out of a {_bytes(pandas_floor)} cap, so the ratio "
            f"is below {build_rss / pandas_floor:.2f}x",
            True if build_rss <= TARGET_MEMORY_VS_PANDAS * pandas_floor else None,
        )
    train = get("train", "median_seconds")
    if train is not None:
        add(
            f"train <= {TARGET_TRAIN_SECONDS:.0f} s",
            _seconds(train),
            train <= TARGET_TRAIN_SECONDS,
        )
    score = get("score", "median_seconds")
    if score is not None:
        add(
            f"score <= {TARGET_SCORE_SECONDS:.0f} s",
            _seconds(score),
            score <= TARGET_SCORE_SECONDS,
        )
    score_rss, scaled_rss = get("score", "peak_rss_bytes"), get("score_scaled", "peak_rss_bytes")
    scale = sizes[size].get("score_scale")
    if score_rss and scaled_rss and scale:
        growth = scaled_rss / score_rss
        add(
            f"score peak RSS flat in customers (x{scale} customers: <= "
            f"{TARGET_SCORE_MEMORY_GROWTH}x memory)",
            f"{growth:.2f}x ({_bytes(score_rss)} -> {_bytes(scaled_rss)})",
            growth <= TARGET_SCORE_MEMORY_GROWTH,
        )
    run_s, run_rss = get("run", "median_seconds"), get("run", "peak_rss_bytes")
    if run_s is not None:
        add(
            f"run <= {TARGET_RUN_SECONDS:.0f} s and <= {_bytes(TARGET_RUN_RSS_BYTES)}",
            f"{_seconds(run_s)}, {_bytes(run_rss)}",
            run_s <= TARGET_RUN_SECONDS and (run_rss or 0) <= TARGET_RUN_RSS_BYTES,
        )
    for stage in ML_STAGES:
        skipped = _stage(sizes, size, stage).get("skipped")
        if skipped:
            add(stage, f"not measured: {skipped}", None)
    return rows


def _node_seconds(nodes: list[dict], kind: str) -> float:
    return sum(n["seconds"] or 0 for n in nodes if n["node"].startswith(f"{kind}."))


def markdown(results: dict) -> str:
    """docs/benchmarks.md: machine, scope, the stage x size table, ratios and targets."""
    machine, sizes = results["machine"], results["sizes"]
    order = [s for s in SIZES if s in sizes]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    source = results["source"]
    commit = (source.get("commit") or "unknown")[:10]
    dirty = " (with uncommitted changes)" if source.get("dirty") else ""
    loads = [
        load
        for s in sizes.values()
        for stage in s["stages"].values()
        for run in stage["runs"]
        for load in (run["load_before"], run["load_after"])
    ]
    load_text = f"{min(loads):.1f} to {max(loads):.1f}" if loads else "unknown"
    lines = [
        "# Benchmarks",
        "",
        "_Written by `python -m benchmarks.run` (`make bench`); rerun it rather than editing. "
        "How it measures: [benchmarks/README.md](../benchmarks/README.md)._",
        "",
        f"- **Date:** {results['finished_at'][:16].replace('T', ' ')} UTC",
        f"- **Machine:** {machine['cpu']}, {machine['cores']} cores, "
        f"{_bytes(machine['memory_bytes'])} RAM; {machine['os']}",
        f"- **Software:** Python {machine['python']}; {versions}",
        f"- **Code:** commit `{commit}`{dirty}",
        f"- **Load average (1 min) while measuring:** {load_text} on {machine['cores']} cores "
        "(the machine is shared: read CPU seconds next to wall seconds)",
        "- **Data:** `segmart generate --seed 42`; "
        + "; ".join(
            f"{s}: {sizes[s]['n_customers']:,} customers, "
            f"{sizes[s]['row_counts'].get('orders', 0):,} orders, "
            f"{sizes[s]['row_counts'].get('web_events', 0):,} web events"
            for s in order
        ),
        "",
        "## What is compared",
        "",
        "All three compute the same thing from the same raw Parquet files: one row per customer "
        "per snapshot for **the same snapshot dates** (the `as_of` snapshot and the 4 training "
        "snapshots of `int_snapshot_dates`), with the raw features, the preprocessing fitted on "
        "the training snapshots (mean imputation, log1p, z-score, one-hot over fixed levels) "
        "applied to every row, and the purchase label of the training rows. The harness checks "
        f"that `int_customer_snapshots_featurized`, `ml.customer_features` and "
        f"`ml.training_examples` equal both references (relative tolerance {RTOL:g}) before it "
        "reports any time.",
        "",
        "`segmart build` does more than the references: it lands and types every raw table, "
        "quarantines and reconciles every row, builds the core marts, and runs the dbt tests. "
        "The references apply only the staging rules that can change a feature "
        "(benchmarks/README.md lists them). The dbt fixed cost is the build time at "
        f"{FIXED_COST_SIZE} ({SIZES[FIXED_COST_SIZE]:,} customers), where the work itself is "
        "negligible.",
        "",
        "## Median wall time and peak RSS per stage",
        "",
        "Median wall time over the repetitions (n) with the median CPU time (user + system) in "
        "brackets; peak RSS is the largest of the repetitions.",
        "",
        "| stage | " + " | ".join(f"{s} time (CPU) | {s} peak RSS" for s in order) + " |",
        "|---|" + "---:|---:|" * len(order),
    ]
    stages = [*STAGES[:5], *ML_STAGES[:2], "score_scaled", "run"]
    for stage in stages:
        if not any(_stage(sizes, s, stage) for s in order):
            continue
        scales = [sizes[s]["score_scale"] for s in order if sizes[s].get("score_scale")]
        label = STAGE_LABELS[stage].format(scale=scales[0] if scales else "")
        cells = []
        for s in order:
            st = _stage(sizes, s, stage)
            if st.get("skipped"):
                cells += ["not run", "-"]
            elif st.get("runs"):
                n = len(st["runs"])
                cells += [
                    f"{_seconds(st['median_seconds'])} ({st['median_cpu_seconds']:,.1f}) n={n}",
                    _bytes(st["peak_rss_bytes"]),
                ]
            else:
                cells += ["-", "-"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    notes = [
        f"- {s} {STAGE_LABELS[name].format(scale='')}: {stage['note']}"
        for s in order
        for name, stage in sizes[s]["stages"].items()
        if stage.get("note") and name in STAGE_LABELS
    ] + [f"- {note}" for note in results.get("notes", [])]
    if notes:
        lines += ["", *notes]
    lines += [
        "",
        "## segmart build against the references",
        "",
        "| size | build | single query | pandas | build / single query | build / pandas "
        "| build RSS / pandas RSS | build CPU / single query CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in order:
        build, floor, pandas_stage = (
            _stage(sizes, s, "build"),
            _stage(sizes, s, "single_query"),
            _stage(sizes, s, "pandas"),
        )
        if not build.get("runs") or not (floor.get("runs") or pandas_stage.get("runs")):
            continue
        lines.append(
            f"| {s} | {_seconds(build.get('median_seconds'))} | "
            f"{_seconds(floor.get('median_seconds'))} | "
            f"{_seconds(pandas_stage.get('median_seconds'))} | "
            f"{_ratio(build.get('median_seconds'), floor.get('median_seconds'))} | "
            f"{_ratio(build.get('median_seconds'), pandas_stage.get('median_seconds'))} | "
            f"{_ratio(build.get('peak_rss_bytes'), pandas_stage.get('peak_rss_bytes'))} | "
            f"{_ratio(build.get('median_cpu_seconds'), floor.get('median_cpu_seconds'))} |"
        )
    target_rows = results.get("targets") or []
    if target_rows:
        lines += [
            "",
            f"## Targets ({machine['cores']} cores; set for M)",
            "",
            "| size | target | measured | met |",
            "|---|---|---|---|",
        ]
        for row in target_rows:
            met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
            lines.append(f"| {row['size']} | {row['target']} | {row['measured']} | {met} |")
    with_nodes = [s for s in order if sizes[s].get("dbt_nodes")]
    largest = with_nodes[-1] if with_nodes else None
    nodes = sizes[largest]["dbt_nodes"] if largest else []
    if nodes:
        lines += [
            "",
            f"## Slowest dbt nodes in the last build at {largest}",
            "",
            "Wall time of each node as dbt reports it (with several dbt threads they overlap). "
            "Summed by kind: "
            + ", ".join(
                f"{kind}s {_node_seconds(nodes, kind):,.0f} s"
                for kind in ("model", "test", "unit_test")
            )
            + ".",
            "",
            "| node | seconds |",
            "|---|---:|",
        ]
        lines += [f"| `{n['node']}` | {n['seconds'] or 0:,.1f} |" for n in nodes[:12]]
    equivalence = [line for s in order for line in sizes[s].get("equivalence", [])]
    if equivalence:
        lines += ["", "## Equivalence", ""]
        lines += [f"- {s}: {line}" for s in order for line in sizes[s].get("equivalence", [])]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Command line


def benchmark(
    options: Options,
    merge: Sequence[Path] = (),
    save: Callable[[dict], None] = lambda _: None,
) -> dict:
    """Run every size; return the results (machine, source, sizes, targets).

    `save` gets the results so far after every run (marked ``"partial": true``).
    """
    started = datetime.now(UTC)
    results: dict = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "source": source_info(options.source),
        "options": {
            "sizes": list(options.sizes),
            "repetitions": options.repetitions,
            "stages": list(options.stages),
            "score_scale": options.score_scale,
            "seed": options.seed,
        },
        "sizes": {},
        "partial": True,
    }

    def progress(size_result: SizeResult) -> None:
        results["sizes"][size_result.size] = size_result.to_json()
        save(results)

    for size in options.sizes:
        results["sizes"][size] = run_size(options, size, progress).to_json()
    for path in merge:
        earlier = json.loads(path.read_text())
        for size, value in earlier["sizes"].items():
            if size not in results["sizes"]:
                value["merged_from"] = str(path)
                results["sizes"][size] = value
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["targets"] = targets(results)
    results["partial"] = False
    save(results)
    return results


def summarize(paths: Sequence[Path]) -> dict:
    """Results files merged stage by stage within each size (later files win), with the
    targets recomputed: sizes and stages measured in separate invocations make one summary."""
    merged: dict = {"sizes": {}}
    for path in paths:
        results = json.loads(path.read_text())
        for size, value in results["sizes"].items():
            into = merged["sizes"].setdefault(size, {**value, "stages": {}, "equivalence": []})
            into["stages"].update(
                {name: stage for name, stage in value["stages"].items() if stage.get("runs")}
                | {
                    name: stage  # a later skip replaces an earlier skip, never a measurement
                    for name, stage in value["stages"].items()
                    if not stage.get("runs") and not into["stages"].get(name, {}).get("runs")
                }
            )
            into["equivalence"] += value.get("equivalence", [])
            into["dbt_nodes"] = value.get("dbt_nodes") or into.get("dbt_nodes", [])
            into["score_scale"] = value.get("score_scale") or into.get("score_scale")
            into["row_counts"] = value.get("row_counts") or into.get("row_counts", {})
        notes = [*merged.get("notes", []), *results.get("notes", [])]
        merged |= {k: v for k, v in results.items() if k != "sizes"}
        merged["notes"] = notes
    merged.setdefault("finished_at", merged.get("started_at", ""))
    merged["sizes"] = dict(sorted(merged["sizes"].items(), key=lambda kv: SIZES[kv[0]]))
    merged["targets"] = targets(merged)
    return merged


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Time segmart's stages against a pandas and a single-query reference.",
    )
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=["S", "M"])
    parser.add_argument(
        "--repetitions",
        type=int,
        default=None,
        help="Runs per stage at every size (default: XS 1, S 3, M 2).",
    )
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    parser.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help="Where generated shops and warehouses go (default: %(default)s).",
    )
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help="Keep a shop already generated for a size (same customers and seed): no generate.",
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="Leave data and warehouses under --data-root."
    )
    parser.add_argument(
        "--score-scale",
        type=int,
        default=3,
        help="At the largest size, also score a warehouse with this many times the customers "
        "(1: off).",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=PROJECT_ROOT,
        help="Checkout whose segmart is measured (default: this one).",
    )
    parser.add_argument(
        "--pandas-memory-limit-gb",
        type=float,
        default=None,
        help="Cap the pandas reference's address space; running out is then reported, not fatal.",
    )
    parser.add_argument(
        "--single-query-memory-limit",
        default=None,
        help="DuckDB memory_limit for the single query (e.g. 6GB); default: DuckDB's own.",
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument(
        "--docs",
        type=Path,
        default=DEFAULT_DOCS,
        help="Markdown summary to (re)write; 'none' to skip (default: %(default)s).",
    )
    parser.add_argument(
        "--summarize",
        type=Path,
        nargs="+",
        default=None,
        metavar="RESULTS_JSON",
        help="Run nothing: rewrite the summary from these results files (later files win per "
        "size).",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="Earlier results files whose other sizes join this summary.",
    )
    return parser


def _child(argv: list[str]) -> int:
    """The stages the harness runs as its own children."""
    command, rest = argv[0], argv[1:]
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.run {command}")
    parser.add_argument("--raw-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--n-snapshots", type=int, default=N_SNAPSHOTS)
    parser.add_argument("--snapshot-step-days", type=int, default=30)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 6GB.")
    args = parser.parse_args(rest)
    run_single_query(
        args.raw_dir,
        args.out,
        memory_limit=args.memory_limit,
        as_of=args.as_of,
        horizon_days=args.horizon_days,
        n_snapshots=args.n_snapshots,
        snapshot_step_days=args.snapshot_step_days,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "single-query":
        return _child(argv)
    args = _parser().parse_args(argv)
    if args.summarize:
        results = summarize(args.summarize)
        args.docs.parent.mkdir(parents=True, exist_ok=True)
        args.docs.write_text(markdown(results))
        _log(f"summary: {args.docs}")
        return 0
    asked_for = tuple(sorted(set(args.sizes), key=lambda s: SIZES[s]))
    sizes = asked_for
    if "build" in args.stages and FIXED_COST_SIZE not in sizes:
        sizes = (FIXED_COST_SIZE, *sizes)  # the dbt fixed cost the build target allows for
    repetitions = {
        s: args.repetitions if args.repetitions else DEFAULT_REPETITIONS[s] for s in sizes
    }
    if FIXED_COST_SIZE not in asked_for and FIXED_COST_SIZE in sizes and not args.repetitions:
        repetitions[FIXED_COST_SIZE] = max(repetitions.values())
    options = Options(
        sizes=sizes,
        repetitions=repetitions,
        stages=tuple(s for s in STAGES if s in args.stages),
        data_root=args.data_root.resolve(),
        source=args.source.resolve(),
        reuse_data=args.reuse_data,
        keep_data=args.keep_data,
        score_scale=args.score_scale,
        asked_for=asked_for,
        single_query_memory_limit=args.single_query_memory_limit,
        pandas_memory_limit=(
            int(args.pandas_memory_limit_gb * 1024**3) if args.pandas_memory_limit_gb else None
        ),
    )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / (datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json")

    def save(results: dict) -> None:
        path.write_text(json.dumps(results, indent=2) + "\n")

    try:
        results = benchmark(options, args.merge, save)
    except BenchmarkError as error:
        _log(f"benchmark failed: {error}\npartial results: {path}")
        return 2
    _log(f"results: {path}")
    if str(args.docs) != "none":
        args.docs.parent.mkdir(parents=True, exist_ok=True)
        args.docs.write_text(markdown(results))
        _log(f"summary: {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
