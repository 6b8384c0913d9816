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
