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
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.machine import machine_info, source_info
from benchmarks.measure import BenchmarkError
from benchmarks.references import run_single_query, scan_floor
from benchmarks.render import markdown, targets
from benchmarks.settings import (
    DEFAULT_DATA_ROOT,
    DEFAULT_DOCS,
    DEFAULT_REPETITIONS,
    DEFAULT_RESULTS_DIR,
    FIXED_COST_SIZE,
    N_SNAPSHOTS,
    PROJECT_ROOT,
    SIZES,
    STAGES,
)
from benchmarks.sizes import Options, SizeResult, _log, run_size


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


def _scan_floor_child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run scan-floor")
    parser.add_argument("--raw-dir", type=Path, required=True)
    rows = scan_floor(parser.parse_args(argv).raw_dir)
    _log(f"scan floor: {rows:,} rows read")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "single-query":
        return _child(argv)
    if argv and argv[0] == "scan-floor":
        return _scan_floor_child(argv[1:])
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
