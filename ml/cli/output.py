"""What the CLI prints: rich tables that fit the terminal, and the same results as JSON.

Reports become plain data first (`*_data`: dicts of numbers, strings and lists, JSON-ready), then
tables (`*_tables`). A table keeps its most important columns: when the terminal is too narrow
for all of them, the least important are left out (the caption says how many, and `--json`
has them all) and long labels are cut with an ellipsis, so no row ever wraps onto a second line.
The full markdown reports stay available (`--markdown FILE`; training also saves its report as
`<models_dir>/<model_id>/report.md`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from ml.modelling.train_report import TrainReport
    from ml.registry import ModelMetadata
    from ml.run.pipeline import PipelineResult
    from ml.serving.scoring import ScoreReport

METRIC_HEADERS = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "lift_top_decile": "lift@10%",
    "brier": "Brier",
    "capture_top_decile": "capture@10%",
    "f1": "F1",
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
}
"""Metric columns, most important first: the order in which they survive a narrow terminal."""

SEGMENT_COLUMNS = {
    "n_customers": "customers",
    "share": "share",
    "revenue_share": "revenue",
    "mean_purchase_probability": "P(buy)",
    "mean_days_since_last_order": "recency",
    "mean_n_orders": "orders",
}
TOP_FEATURES = 10
TOP_DRIFT = 10


def _loaded(name: str) -> object | None:
    """Module `name` if something imported it. A numpy or pandas value exists only then: looking
    them up instead of importing them kept pandas (0.3 s) out of `segmart build`."""
    return sys.modules.get(name)


def plain(value: object) -> object:
    """A JSON-ready copy of `value`: numpy scalars as Python, NaN as None, dates as ISO text."""
    np, pd = _loaded("numpy"), _loaded("pandas")
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(item) for item in value]
    if pd is not None and isinstance(value, pd.DataFrame):
        return [plain(row) for row in value.to_dict(orient="records")]
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or (pd is not None and value is pd.NaT):
        return None
    # pandas' Timestamp is a datetime.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


# --- data ---------------------------------------------------------------------------------------


def train_data(report: TrainReport) -> dict:
    """A training run's key results: the model, its metrics against baselines, segments."""
    meta = report.metadata
    segments = report.segments.reset_index()
    importance = report.importance[["feature", "importance", "importance_std"]]
    return plain(
        {
            "model_id": meta.model_id,
            "model_dir": report.model_dir,
            "algorithm": meta.algorithm,
            "params": meta.params,
            "calibration": meta.calibration,
            "as_of": meta.as_of,
            "horizon_days": meta.horizon_days,
            "snapshots": meta.snapshots,
            "n_training_rows": meta.n_training_rows,
            "n_validation_rows": meta.n_validation_rows,
            "threshold": meta.threshold,
            "metrics": meta.metrics,
            "baselines": meta.baselines,
            "margins": report.margins,
            "backtest": _backtest_rows(report),
            "segments": segments.drop(columns="description", errors="ignore"),
            "top_features": importance.head(TOP_FEATURES),
            "dropped_inputs": meta.dropped_inputs,
            "warnings": report.warnings,
            "elapsed_seconds": report.elapsed_seconds,
        }
    )


def _backtest_rows(report: TrainReport) -> list[dict]:
    """Per scorer, the backtest's mean ROC-AUC and top-decile revenue capture."""
    if report.revenue is None or not report.revenue.backtest.windows:
        return []
    summary = report.revenue.backtest.summary()
    means = summary.pivot_table(index="scorer", columns="metric", values="mean", sort=False)
    wanted = ["roc_auc", "revenue_capture_top_decile", "revenue_gini", "total_ratio"]
    rows = means.reindex(columns=wanted).reset_index()
    rows.insert(1, "n_windows", len(report.revenue.backtest.windows))
    return rows.to_dict("records")


def score_data(report: ScoreReport) -> dict:
    """A scoring run's key results: deciles, segments, drift."""
    return plain(
        {
            "model_id": report.model_id,
            "as_of": report.as_of,
            "n_customers": report.n_customers,
            "deciles": report.deciles,
            "segments": report.segments.drop(columns="description", errors="ignore"),
            "drift": report.drift.head(TOP_DRIFT),
            "drifted_features": report.drifted_features,
            "warnings": report.warnings,
            "elapsed_seconds": report.elapsed_seconds,
        }
    )


def run_data(result: PipelineResult) -> dict:
    """A whole run: where its results are, its warnings, and the train and score results."""
    return plain(
        {
            "warehouse": result.warehouse,
            "published": result.published,
            "exports": result.exports,
            "exports_empty": result.exports_empty,
            "report": result.report,
            "warnings": result.warnings,
            "train": train_data(result.trained) if result.trained else None,
            "score": score_data(result.scored) if result.scored else None,
        }
    )


def model_summary(meta: ModelMetadata) -> dict:
    """One registry entry as `segmart models list --json` shows it."""
    return plain(
        {
            "model_id": meta.model_id,
            "trained_at": meta.trained_at,
            "algorithm": meta.algorithm,
            "as_of": meta.as_of,
            "horizon_days": meta.horizon_days,
            "metrics": meta.metrics,
        }
    )


def model_data(meta: ModelMetadata) -> dict:
    """One model's whole metadata (`metadata.json`), JSON-ready."""
    return plain(asdict(meta))


# --- tables -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A table column: its header, how to format a value, and whether it may be left out."""

    key: str
    header: str
    fmt: str = ""
    optional: bool = True


def _cell(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    np = _loaded("numpy")
    if fmt and (
        isinstance(value, int | float) or (np is not None and isinstance(value, np.number))
    ):
        return format(value, fmt)
    return str(value)


def fitted_table(
    title: str, columns: Sequence[Column], rows: Sequence[dict], width: int, console: Console
) -> Table:
    """A table of `rows` no wider than `width`: optional columns are dropped from the last.

    The first column is the label: it is never dropped and is cut with an ellipsis if even the
    remaining columns do not fit. Cells never wrap.
    """
    kept = list(columns)
    while True:
        table = Table(title=title, title_justify="left", expand=False)
        for index, column in enumerate(kept):
            table.add_column(
                column.header,
                justify="right" if index > 0 and column.fmt else "left",
                no_wrap=True,
                overflow="ellipsis",
                min_width=min(8, len(column.header)) if index == 0 else None,
            )
        for row in rows:
            table.add_row(*(_cell(row.get(column.key), column.fmt) for column in kept))
        droppable = [column for column in kept[1:] if column.optional]
        natural = Measurement.get(console, console.options.update(width=10_000), table).maximum
        if natural <= width or not droppable:
            break
        kept.remove(droppable[-1])
    if len(kept) < len(columns):
        hidden = len(columns) - len(kept)
        table.caption = f"{hidden} more column{'s' * (hidden > 1)}: widen the terminal or --json"
        table.caption_justify = "left"
    return table


def metrics_table(data: dict, width: int, console: Console) -> Table:
    """Validation metrics of the model and of each baseline, one row per scorer."""
    rows = [{"scorer": f"model ({data['algorithm']})", **data["metrics"]}]
    rows += [{"scorer": f"baseline: {name}", **m} for name, m in data["baselines"].items()]
    columns = [Column("scorer", "scorer", optional=False)]
    columns += [Column(key, header, ".3f") for key, header in METRIC_HEADERS.items()]
    return fitted_table("validation metrics", columns, rows, width, console)


def segments_table(segments: list[dict], width: int, console: Console) -> Table:
    """One row per segment: size, revenue share, purchase probability, recency, orders."""
    columns = [Column("segment_name", "segment", optional=False)]
    formats = {"n_customers": ",", "share": ".0%", "revenue_share": ".0%"}
    formats |= {"mean_purchase_probability": ".0%", "mean_days_since_last_order": ".0f"}
    columns += [
        Column(key, header, formats.get(key, ".1f")) for key, header in SEGMENT_COLUMNS.items()
    ]
    return fitted_table("segments", columns, segments, width, console)


def train_tables(data: dict, width: int, console: Console) -> list[RenderableType]:
    """What `segmart train` prints: a headline, metrics, segments, top features."""
    margins = data["margins"]
    best = max(margins, key=lambda name: data["baselines"][name]["roc_auc"]) if margins else None
    headline = (
        f"model {data['model_id']}: {data['algorithm']} ({data['calibration']} calibration),"
        f" {data['n_training_rows']:,} training and {data['n_validation_rows']:,} validation"
        f" rows, as of {data['as_of']}, {data['horizon_days']}-day horizon,"
        f" {data['elapsed_seconds']:.1f} s"
    )
    parts: list[RenderableType] = [Text(headline), metrics_table(data, width, console)]
    if best is not None:
        parts.append(Text(f"ROC-AUC margin over the best baseline ({best}): {margins[best]:+.3f}"))
    if data.get("backtest"):
        columns = [
            Column("scorer", "scorer", optional=False),
            Column("roc_auc", "ROC-AUC", ".3f"),
            Column("revenue_capture_top_decile", "revenue@10%", ".3f"),
            Column("revenue_gini", "revenue Gini", ".3f"),
            Column("total_ratio", "predicted/realised", ".2f"),
        ]
        title = f"backtest: mean over {data['backtest'][0]['n_windows']} rolling-origin windows"
        parts.append(fitted_table(title, columns, data["backtest"], width, console))
    parts.append(segments_table(data["segments"], width, console))
    features = [
        Column("feature", "feature", optional=False),
        Column("importance", "AUC drop", ".4f"),
        Column("importance_std", "std", ".4f"),
    ]
    parts.append(fitted_table("top features", features, data["top_features"], width, console))
    parts.append(Text(f"full report: {Path(data['model_dir']) / 'report.md'}"))
    return parts


def score_tables(data: dict, width: int, console: Console) -> list[RenderableType]:
    """What `segmart score` prints: a headline, deciles, segments, drift."""
    headline = (
        f"{data['n_customers']:,} customers scored as of {data['as_of']} with model"
        f" {data['model_id']} in {data['elapsed_seconds']:.1f} s"
    )
    deciles = [
        Column("propensity_decile", "decile", optional=False),
        Column("n_customers", "customers", ","),
        Column("mean_probability", "mean P(buy)", ".3f"),
        Column("min_probability", "min P(buy)", ".3f"),
    ]
    drift = [
        Column("feature", "feature", optional=False),
        Column("psi", "PSI", ".3f"),
        Column("is_drifted", "drifted"),
    ]
    return [
        Text(headline),
        fitted_table("propensity deciles", deciles, data["deciles"], width, console),
        segments_table(data["segments"], width, console),
        fitted_table("feature drift (PSI, top 10)", drift, data["drift"], width, console),
    ]


def models_table(models: list[dict], width: int, console: Console) -> Table:
    """`segmart models list`: one row per model, newest first."""
    rows = [{**model, "roc_auc": model["metrics"].get("roc_auc")} for model in models]
    columns = [
        Column("model_id", "model_id", optional=False),
        Column("roc_auc", "ROC-AUC", ".3f"),
        Column("algorithm", "algorithm"),
        Column("as_of", "as_of"),
        Column("trained_at", "trained"),
    ]
    return fitted_table("models", columns, rows, width, console)


def model_tables(data: dict, width: int, console: Console) -> list[RenderableType]:
    """`segmart models show`: the model's facts, then its metrics against the baselines."""
    facts = ["algorithm", "calibration", "trained_at", "as_of", "horizon_days", "snapshots"]
    facts += ["n_training_rows", "n_validation_rows", "threshold", "feature_stats_id"]
    rows = [{"field": key, "value": _cell(data.get(key), "")} for key in facts]
    rows.append({"field": "n_features", "value": str(len(data["feature_columns"]))})
    about = [Column("field", "field", optional=False), Column("value", "value", optional=False)]
    return [
        fitted_table(f"model {data['model_id']}", about, rows, width, console),
        metrics_table(data, width, console),
    ]


def printable(parts: list[RenderableType]) -> Group:
    """The parts separated by blank lines, as one renderable."""
    spaced: list[RenderableType] = []
    for part in parts:
        spaced += [part, Text("")]
    return Group(*spaced[:-1])
