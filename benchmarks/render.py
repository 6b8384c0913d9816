"""Reporting: targets met or missed, and the Markdown summary in docs/benchmarks.md."""

from __future__ import annotations

from benchmarks.settings import (
    FIXED_COST_SIZE,
    ML_STAGES,
    RTOL,
    SIZES,
    STAGE_LABELS,
    STAGES,
    TARGET_BUILD_VS_FLOOR,
    TARGET_FIXED_COST_SECONDS,
    TARGET_INCREMENTAL_RUN_SECONDS,
    TARGET_MEMORY_VS_PANDAS,
    TARGET_QUERY_VS_SCAN,
    TARGET_RUN,
    TARGET_SCORE_MEMORY_GROWTH,
    TARGET_SCORE_SECONDS,
    TARGET_SPEEDUP_VS_PANDAS,
    TARGET_TRAIN_SECONDS,
)


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
        # The targets are about scale; the fixed-cost size has only its own.
        for row in (_fixed_cost_target(sizes, size) if size == FIXED_COST_SIZE else [])
        + (_targets_at(sizes, size) if size != FIXED_COST_SIZE else [])
    ]


def _fixed_cost_target(sizes: dict, size: str) -> list[dict]:
    build = _stage(sizes, size, "build").get("median_seconds")
    if build is None:
        return []
    return [
        {
            "size": size,
            "target": f"build (dbt's fixed cost) <= {TARGET_FIXED_COST_SECONDS:.0f} s",
            "measured": _seconds(build),
            "met": build <= TARGET_FIXED_COST_SECONDS,
        }
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

    scan = get("scan_floor", "median_seconds")
    if floor is not None and scan is not None:
        add(
            f"single query <= {TARGET_QUERY_VS_SCAN:.0f} x the scan floor",
            f"{_seconds(floor)} vs {TARGET_QUERY_VS_SCAN:.0f} x {_seconds(scan)} "
            f"= {_seconds(TARGET_QUERY_VS_SCAN * scan)}",
            floor <= TARGET_QUERY_VS_SCAN * scan,
        )
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
    if run_s is not None and size in TARGET_RUN:
        seconds, rss = TARGET_RUN[size]
        add(
            f"run <= {seconds:.0f} s" + (f" and <= {_bytes(rss)}" if rss else ""),
            f"{_seconds(run_s)}, {_bytes(run_rss)}",
            run_s <= seconds and (rss is None or (run_rss or 0) <= rss),
        )
    weekly = get("incremental_run", "median_seconds")
    if weekly is not None:
        add(
            f"weekly incremental run (no retrain) <= {TARGET_INCREMENTAL_RUN_SECONDS:.0f} s",
            _seconds(weekly),
            weekly <= TARGET_INCREMENTAL_RUN_SECONDS,
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
    stages = [
        *STAGES[: STAGES.index("score") + 1],
        *("score_scaled", "run", "incremental_build", "incremental_run"),
    ]
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
            f"## Targets ({machine['cores']} cores)",
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
