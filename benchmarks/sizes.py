"""One size: generate its shop, check equivalence, then measure every stage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from benchmarks.compare import check_equivalence
from benchmarks.measure import BenchmarkError, Measurement, StageResult, in_a_child, measure
from benchmarks.references import _DBT_PARSE
from benchmarks.render import _bytes
from benchmarks.settings import FIXED_COST_SIZE, ML_STAGES, PROJECT_ROOT, SEED, SIZES
from benchmarks.weekly import add_week, remove_week, split_last_week


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
        [_python(), "-c", "import ml.modelling.training, ml.serving.scoring"],
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


def _checkpoint(warehouse: Path, copy: Path) -> None:
    """Keep a closed warehouse (its write-ahead log folded in) to restore before each run."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("checkpoint")
    shutil.copy(warehouse, copy)


def _restore(copy: Path, warehouse: Path) -> None:
    _remove_warehouse(warehouse)
    shutil.copy(copy, warehouse)


def _same_data(marker: Path, wanted: dict) -> bool:
    """Whether a marker file records the shop (size and seed) wanted."""
    return marker.exists() and json.loads(marker.read_text()) == wanted


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
    return _SizeRun(options, size, progress).measure_all()


class _SizeRun:
    """The stages of one size, each a method, run in the order of `STAGES`."""

    def __init__(
        self, options: Options, size: str, progress: Callable[[SizeResult], None]
    ) -> None:
        self.options, self.size, self.progress = options, size, progress
        self.result = SizeResult(size=size, n_customers=SIZES[size])
        self.root = options.data_root / size
        self.raw_dir, self.work = self.root / "raw", self.root / "work"
        self.warehouse = self.work / "segmart.duckdb"
        self.env = _environment(options, self.raw_dir, self.work, self.warehouse)
        self.marker = self.root / ".generated.json"
        self.wanted = {"n_customers": SIZES[size], "seed": options.seed}
        self.have_data = _same_data(self.marker, self.wanted)
        self.built = self.work / ".built.json"  # which data the warehouse in work/ was built from
        self.single_query_out = self.work / "single_query.duckdb"
        self.pandas_out = self.work / "pandas_features.parquet"
        self.checked = self.pandas_failed = False
        self.stages = self._available(options.stages_at(size))

    def _available(self, stages: tuple[str, ...]) -> tuple[str, ...]:
        """The stages that can run from `options.source`; the others are recorded as skipped."""
        if not set(stages) & set(ML_STAGES):
            return stages
        unavailable = _ml_available(self.options, self.env)
        if not unavailable:
            return stages
        for stage in ML_STAGES:
            if stage in stages:
                self.result.stages[stage] = StageResult(skipped=unavailable)
        _log(f"[{self.size}] {', '.join(ML_STAGES)} skipped: {unavailable}")
        return tuple(s for s in stages if s not in ML_STAGES)

    def measure_all(self) -> SizeResult:
        self.work.mkdir(parents=True, exist_ok=True)
        if {"dbt_parse", "build", "run"} & set(self.stages):
            # A cold parse, timed once; it also leaves the partial-parse cache every build uses.
            shutil.rmtree(self.work / "dbt_target", ignore_errors=True)
            self.timed("dbt_parse", 1, [_python(), "-c", _DBT_PARSE])
        for repetition in range(1, self.options.repetitions[self.size] + 1):
            self.repetition(repetition)
        if not self.options.keep_data:
            shutil.rmtree(self.root, ignore_errors=True)
        return self.result

    def repetition(self, repetition: int) -> None:
        if "generate" in self.stages and not (self.options.reuse_data and self.have_data):
            self.generate(repetition)
        if not self.have_data:
            raise BenchmarkError(
                f"no data for size {self.size} in {self.root}: include stage generate"
            )
        if not self.result.row_counts:
            self.result.row_counts = _row_counts(self.raw_dir)
        for stage in ("scan_floor", "build", "single_query", "pandas"):
            if stage in self.stages:
                getattr(self, stage)(repetition)
        self.check_equivalence()
        for stage in ("train", "score", "run", "incremental"):
            if stage in self.stages:
                getattr(self, stage)(repetition)

    def timed(
        self,
        stage: str,
        repetition: int,
        command: Sequence[str],
        reference: bool = False,
        address_space_bytes: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Measurement:
        """Time one run; references run from this checkout, segmart from options.source."""
        log = self.work / "logs" / f"{stage}-{repetition}.log"
        env = env or self.env
        if reference:
            reference_env = env | {"PYTHONPATH": str(PROJECT_ROOT)}
            measurement = measure(command, reference_env, PROJECT_ROOT, log, address_space_bytes)
        else:
            measurement = measure(command, env, self.options.source, log)
        self.result.stages.setdefault(stage, StageResult()).runs.append(measurement)
        repetitions = self.options.repetitions[self.size]
        _report_run(self.size, stage, f"{repetition}/{repetitions}", measurement)
        self.progress(self.result)
        return measurement

    def generate(self, repetition: int) -> None:
        shutil.rmtree(self.raw_dir, ignore_errors=True)
        self.marker.unlink(missing_ok=True)
        command = _generate(self.result.n_customers, self.options.seed, self.root)
        self.timed("generate", repetition, command)
        self.marker.write_text(json.dumps(self.wanted))
        self.have_data = True

    def scan_floor(self, repetition: int) -> None:
        command = [_python(), "-m", "benchmarks.run", "scan-floor", "--raw-dir", str(self.raw_dir)]
        self.timed("scan_floor", repetition, command, reference=True)

    def build(self, repetition: int) -> None:
        _remove_warehouse(self.warehouse)
        self.built.unlink(missing_ok=True)
        self.timed("build", repetition, _segmart("build", "--raw-dir", str(self.raw_dir)))
        self.built.write_text(json.dumps(self.wanted))
        self.result.dbt_nodes = _dbt_nodes(self.work / "dbt_target")

    def single_query(self, repetition: int) -> None:
        limit = self.options.single_query_memory_limit
        command = [
            *[_python(), "-m", "benchmarks.run", "single-query"],
            *["--raw-dir", str(self.raw_dir), "--out", str(self.single_query_out)],
            *(["--memory-limit", limit] if limit else []),
        ]
        self.timed("single_query", repetition, command, reference=True)

    def pandas(self, repetition: int) -> None:
        if self.pandas_failed:
            return
        command = [
            *[_python(), "-m", "benchmarks.pandas_reference"],
            *["--raw-dir", str(self.raw_dir), "--out", str(self.pandas_out)],
        ]
        limit = self.options.pandas_memory_limit
        try:
            self.timed("pandas", repetition, command, reference=True, address_space_bytes=limit)
        except BenchmarkError as error:
            if limit is None:
                raise
            # Under a memory cap, running out is a result: pandas needs more than the cap.
            self.pandas_failed = True
            self.result.stages["pandas"] = StageResult(
                skipped=f"failed under a {_bytes(limit)} address-space "
                f"cap: {str(error).strip().splitlines()[-1]}",
                needs_more_than_bytes=limit,
            )
            _log(f"[{self.size}] pandas: {self.result.stages['pandas'].skipped}")

    def check_equivalence(self) -> None:
        """Once per size: the warehouse's features equal the references' before times count."""
        pandas_ran = "pandas" in self.stages and not self.pandas_failed
        references_ran = "single_query" in self.stages or pandas_ran
        current = _same_data(self.built, self.wanted)
        if self.checked or not references_ran or not current:
            return
        comparisons = in_a_child(
            check_equivalence,
            self.warehouse,
            self.pandas_out if pandas_ran else None,
            self.single_query_out if "single_query" in self.stages else None,
        )
        self.result.equivalence = [c.describe() for c in comparisons]
        self.progress(self.result)
        for line in self.result.equivalence:
            _log(f"[{self.size}] equal: {line}")
        self.checked = True

    def train(self, repetition: int) -> None:
        self.timed("train", repetition, _segmart("train"))

    def score(self, repetition: int) -> None:
        self.timed("score", repetition, _segmart("score"))
        scale = self.options.score_scale
        if scale > 1 and self.size != "XS" and self.size == self.options.sizes[-1]:
            self.result.score_scale = scale
            scaled = self.work / "scaled.duckdb"
            _remove_warehouse(scaled)
            in_a_child(_scale_customer_features, self.warehouse, scaled, scale)
            self.timed("score_scaled", repetition, _segmart("score", "--warehouse", str(scaled)))
            _remove_warehouse(scaled)

    def run(self, repetition: int) -> None:
        # End to end from nothing: a champion kept from an earlier run (or repetition) would
        # stop this run, its feature statistics gone with the warehouse.
        _remove_warehouse(self.warehouse)
        shutil.rmtree(self.work / "models", ignore_errors=True)
        self.built.unlink(missing_ok=True)
        self.timed("run", repetition, _segmart("run", "--raw-dir", str(self.raw_dir)))

    def incremental(self, repetition: int) -> None:
        """The weekly drop: on the warehouse of the shop's history (built, trained and run
        once, untimed), `segmart build` and then `segmart run` with the last week added."""
        weekly = self.root / "weekly"
        raw, week, work = weekly / "raw", weekly / "week", weekly / "work"
        warehouse, kept = work / "segmart.duckdb", weekly / "history.duckdb"
        env = _environment(self.options, raw, work, warehouse)
        if not kept.exists():
            work.mkdir(parents=True, exist_ok=True)
            first_day = in_a_child(split_last_week, self.raw_dir, raw, week)
            _log(f"[{self.size}] weekly drop from {first_day}: history run (untimed)")
            measure(
                _segmart("run", "--raw-dir", str(raw)),
                env,
                self.options.source,
                work / "logs" / "history-run.log",
            )
            _checkpoint(warehouse, kept)
        for stage, command in (("incremental_build", "build"), ("incremental_run", "run")):
            remove_week(week, raw)
            _restore(kept, warehouse)
            add_week(week, raw)
            self.timed(stage, repetition, _segmart(command, "--raw-dir", str(raw)), env=env)
