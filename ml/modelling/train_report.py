"""What a training run leaves behind: the report people read, the metadata and the run row.

`TrainReport.to_markdown()` is `models/<id>/report.md`; `record_metadata` is `metadata.json`;
`model_run_row` is the run's row in `predictions.model_runs`, which BI reads.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.modelling import evaluate
from ml.modelling.evaluate import DEFAULT_THRESHOLD, markdown_table
from ml.modelling.examples import (
    Examples,
    Split,
    built_as_of,
    built_horizon_days,
    training_data_sha256,
)
from ml.registry import ModelMetadata
from ml.segments import segments_markdown
from ml.value.revenue import REVENUE_METHOD
from ml.value.seasonality import SEASONAL_METHOD

if TYPE_CHECKING:
    from ml.modelling.input_overlap import InputOverlap
    from ml.modelling.propensity import Candidate
    from ml.modelling.training import Trained, TrainOptions
    from ml.modelling.value_training import RevenueFit
    from ml.segments import SegmentMatch
    from ml.value.customer_value import ValueFit


@dataclass(frozen=True)
class TrainReport:
    """What a training run produced; `to_markdown()` is the readable version."""

    metadata: ModelMetadata
    model_dir: Path
    candidates: list[Candidate]
    segments: pd.DataFrame
    importance: pd.DataFrame
    feature_selection: pd.DataFrame
    margins: dict[str, float]
    warnings: tuple[str, ...] = ()
    elapsed_seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)
    overlap: InputOverlap | None = None
    value: ValueFit | None = None
    segment_match: SegmentMatch | None = None
    revenue: RevenueFit | None = None

    @property
    def model_id(self) -> str:
        """The id of the saved model."""
        return self.metadata.model_id

    @property
    def metrics(self) -> dict[str, float]:
        """Validation metrics of the model."""
        return self.metadata.metrics

    @property
    def baselines(self) -> dict[str, dict[str, float]]:
        """Validation metrics of each naive baseline."""
        return self.metadata.baselines

    def to_markdown(self) -> str:
        """The report: metrics against baselines, search, segments, top features."""
        meta = self.metadata
        table = evaluate.metrics_table(meta.metrics, meta.baselines)
        if self.value is not None and not self.value.baselines:
            table.loc[f"baseline: bg_nbd (not fitted: {self.value.validation.reason})"] = np.nan
        best = max(self.margins, key=lambda name: meta.baselines[name]["roc_auc"])
        sections = [
            f"# Model {meta.model_id}",
            f"{meta.algorithm} {json.dumps(meta.params)} with {meta.calibration} calibration, "
            f"trained on {meta.n_training_rows:,} examples from the snapshots "
            f"{', '.join(meta.snapshots)} ({meta.horizon_days}-day horizon; as of {meta.as_of})"
            f" in {self.elapsed_seconds:.1f} s.",
            f"Validation: {meta.extra.get('validation', '')}. The metrics below are those of the"
            f" chosen candidate on the {meta.n_validation_rows:,} validation customers, with"
            " out-of-fold calibrated probabilities; accuracy, precision, recall and F1 count a"
            f" probability of at least {meta.threshold} as a predicted buyer.",
            "## Validation metrics",
            markdown_table(table.rename_axis("scorer")),
            f"ROC-AUC margin over the best baseline ({best}): {self.margins[best]:+.3f}; "
            + ", ".join(f"{name} {margin:+.3f}" for name, margin in self.margins.items())
            + ".",
            "## Hyperparameter search (validation ROC-AUC)",
            markdown_table(
                pd.DataFrame(
                    [(json.dumps(c.params), c.roc_auc, c.fit_seconds) for c in self.candidates],
                    columns=["params", "roc_auc", "fit_seconds"],
                ),
                index=False,
            ),
            "## Segments",
            segments_markdown(self.segments),
            "## Top features (permutation importance, ROC-AUC drop)",
            markdown_table(
                self.importance[["feature", "importance", "importance_std"]].head(10),
                digits=4,
                index=False,
            ),
            "## Feature selection (correlation and mutual information with the label)",
            markdown_table(self.feature_selection.head(15), digits=4, index=False),
        ]
        if self.segment_match is not None:
            at = sections.index("## Segments") + 1
            sections.insert(at, self.segment_match.to_markdown())
        if self.value is not None:
            at = sections.index("## Hyperparameter search (validation ROC-AUC)")
            sections[at:at] = [
                "## Customer value (BG/NBD and Gamma-Gamma)",
                _value_markdown(self.value),
            ]
        if self.revenue is not None:
            at = sections.index("## Hyperparameter search (validation ROC-AUC)")
            sections[at:at] = [
                "## Backtest (rolling origin, purchase and revenue)",
                f"{REVENUE_METHOD}.",
                _totals_markdown(self.revenue),
                self.revenue.backtest.to_markdown(),
            ]
        if self.overlap is not None:
            at = sections.index("## Hyperparameter search (validation ROC-AUC)")
            sections[at:at] = ["## Inputs left out before fitting", self.overlap.to_markdown()]
        if self.step_seconds:
            sections += ["## Time per step (wall seconds)", _steps_markdown(self.step_seconds)]
        if self.warnings:
            sections += ["## Warnings", *(f"- {warning}" for warning in self.warnings)]
        return "\n\n".join(sections) + "\n"


def _steps_markdown(step_seconds: dict[str, float]) -> str:
    steps = pd.DataFrame(
        {"step": list(step_seconds), "seconds": list(step_seconds.values())}
    ).assign(share=lambda frame: frame["seconds"] / frame["seconds"].sum())
    return markdown_table(steps, digits=2, index=False)


def _totals_markdown(revenue: RevenueFit) -> str:
    """Calibration of totals: the shipped factors, and how close the backtest's sums came."""
    lines = [f"Calibration of totals: {SEASONAL_METHOD}."]
    if revenue.spend is not None:
        season = revenue.season.describe() if revenue.season is not None else "none"
        lines.append(
            f"Shipped: spend level {revenue.spend.level:.3f}; {season} (training horizons"
            " of every snapshot)."
        )
    ratios = [
        w.revenue["model"]["total_ratio"]
        for w in revenue.backtest.windows
        if "total_ratio" in w.revenue.get("model", {})
    ]
    if ratios:
        # Rounded up: "within 11%" must hold for a miss of 10.4%.
        worst = math.ceil(100 * max(abs(ratio - 1.0) for ratio in ratios))
        lines.append(
            f"Backtest: predicted / realised revenue {min(ratios):.3f} to {max(ratios):.3f}"
            f" over {len(ratios)} windows, within {worst}% on every window."
        )
    return " ".join(lines)


def _value_markdown(value: ValueFit) -> str:
    validation, shipped = value.validation, value.shipped
    lines = [
        f"BG/NBD and Gamma-Gamma are fitted without labels on the customers' purchase histories"
        " (a sample of them on a large shop: n_customers below)"
        f" before the validation snapshot ({validation.snapshot_on}) to score the validation"
        f" customers (the `bg_nbd` rows above: expected purchases in the {validation.horizon_days}"
        " days, and probability alive; customers without a purchase before the snapshot rank"
        f" last), and again before as_of ({shipped.snapshot_on}) for scoring.",
    ]
    totals = value.revenue_totals
    if totals:
        lines.append(
            "BG/NBD x Gamma-Gamma's calibration of totals on the validation customers"
            " (the model's own is in the backtest below): predicted revenue"
            f" {totals['predicted_revenue']:,.0f} vs realised {totals['realised_revenue']:,.0f}"
            f" (ratio {totals['ratio']:.3f}); {totals['realised_revenue_without_history']:,.0f}"
            " of the realised revenue came from customers without a purchase before the"
            " snapshot, whom BG/NBD does not predict."
        )
    for name, models in (("validation", validation), ("as_of", shipped)):
        params = models.parameters()
        fitted = [
            f"{model} " + ", ".join(f"{k} {v:.4g}" for k, v in params[key].items())
            for model, key in (("BG/NBD", "bg_nbd"), ("Gamma-Gamma", "gamma_gamma"))
            if key in params
        ]
        if models.reason is not None:
            fitted.append(f"not fitted: {models.reason}")
        lines.append(f"- {name} fit ({models.snapshot_on}): " + "; ".join(fitted))
    lines.append(f"predicted_clv: {shipped.parameters()['clv_method']}.")
    return "\n\n".join(lines)


def _library_versions() -> dict[str, str]:
    packages = ("scikit-learn", "numpy", "pandas", "pyarrow", "duckdb", "skops")
    return {"python": platform.python_version(), **{p: version(p) for p in packages}}


def _model_id(trained_at: datetime, data_sha256: str, options: TrainOptions) -> str:
    # The full timestamp is hashed in: two trainings on the same data within one second (a
    # small shop trains in under one) must still get two ids.
    seed = data_sha256 + json.dumps(asdict(options)) + trained_at.isoformat()
    fingerprint = hashlib.sha256(seed.encode())
    return f"{trained_at:%Y%m%dT%H%M%SZ}-{fingerprint.hexdigest()[:8]}"


def record_metadata(
    trained: Trained,
    examples: Examples,
    split: Split,
    table: pa.Table,
    column_dtypes: dict[str, str],
    options: TrainOptions,
    overlap: InputOverlap | None = None,
    levels: dict[str, str] | None = None,
    value: ValueFit | None = None,
) -> ModelMetadata:
    trained_at = datetime.now(UTC)
    data_sha = training_data_sha256(examples)
    snapshots = sorted({str(d) for d in np.asarray(examples.snapshot_on, "datetime64[D]")})
    segments = trained.segments
    return ModelMetadata(
        model_id=_model_id(trained_at, data_sha, options),
        trained_at=trained_at.isoformat(),
        algorithm=options.algorithm,
        params=trained.params,
        random_state=options.random_state,
        feature_columns=examples.inputs,
        column_dtypes=column_dtypes,
        feature_stats_id=table.column("feature_stats_id")[0].as_py(),
        feature_stats_fitted_as_of=str(table.column("feature_stats_fitted_as_of")[0].as_py()),
        snapshots=tuple(snapshots),
        validation_snapshot=snapshots[-1],
        as_of=str(built_as_of(table)),
        horizon_days=built_horizon_days(table),
        n_training_rows=len(examples.label),
        n_validation_rows=len(split.validation.label),
        training_data_sha256=data_sha,
        threshold=DEFAULT_THRESHOLD,
        calibration=trained.calibration,
        metrics=trained.metrics,
        baselines=trained.baselines,
        segments={
            "population": f"customers of the {snapshots[-1]} snapshot",
            "n_segments": int(trained.segmenter.n_segments_),
            "silhouette_by_k": {str(k): v for k, v in trained.segmenter.silhouette_by_k_.items()},
            "min_share_by_k": {str(k): v for k, v in trained.segmenter.min_share_by_k_.items()},
            "names": {
                str(k): {"name": n, "blurb": b} for k, (n, b) in trained.segment_names.items()
            },
            "profiles": json.loads(segments.reset_index().to_json(orient="records")),
            # Ids kept from the promoted model, new and vanished (None: first-time ids).
            "stable_ids": (
                trained.segment_match.to_json() if trained.segment_match is not None else None
            ),
        },
        library_versions=_library_versions(),
        dropped_inputs=overlap.dropped if overlap is not None else {},
        one_hot_levels=dict(levels or {}),
        extra={
            "validation": (
                f"candidates fitted on {len(split.fit.label):,} rows of the earlier snapshots of"
                f" half the customers, compared and calibrated on the {snapshots[-1]} snapshot"
                " of the other half; final model: one per half on every snapshot, each"
                " calibrated on the other half's latest snapshot, probabilities averaged"
            ),
            # For the run report (ml/report/): curves and importances of the validation.
            "validation_curves": trained.curves,
            "feature_importance": trained.importance[["feature", "importance"]].to_dict("records"),
            "feature_selection": trained.feature_selection.to_dict("records"),
            "calibration_brier_by_method": trained.calibration_brier,
            "search": [asdict(candidate) for candidate in trained.candidates],
            "value_models": value.to_json() if value is not None else None,
        },
    )


def model_run_row(metadata: ModelMetadata, model_dir: Path) -> pa.Table:
    best = max(metadata.baselines, key=lambda name: metadata.baselines[name]["roc_auc"])
    row = {
        "model_id": metadata.model_id,
        "trained_at": datetime.fromisoformat(metadata.trained_at).replace(tzinfo=None),
        "algorithm": metadata.algorithm,
        "as_of": date.fromisoformat(metadata.as_of),
        "horizon_days": metadata.horizon_days,
        "feature_stats_id": metadata.feature_stats_id,
        "training_data_sha256": metadata.training_data_sha256,
        "artifact_sha256": metadata.artifact_sha256,
        "n_training_rows": metadata.n_training_rows,
        "n_validation_rows": metadata.n_validation_rows,
        **{name: metadata.metrics[name] for name in ("roc_auc", "pr_auc", "brier")},
        "lift_top_decile": metadata.metrics["lift_top_decile"],
        "best_baseline": best,
        "best_baseline_roc_auc": metadata.baselines[best]["roc_auc"],
        "n_segments": metadata.segments["n_segments"],
        "model_dir": str(model_dir),
        **_backtest_columns(metadata.extra.get("revenue_model") or {}),
        "value_models_note": _value_models_note(metadata.extra),
    }
    return pa.Table.from_pylist([row])


def _backtest_columns(revenue_model: dict) -> dict[str, float | None]:
    """The backtest's means that BI compares across runs (None without a backtest)."""
    backtest = revenue_model.get("backtest") or {}
    windows = backtest.get("windows") or []
    columns = {
        "backtest_roc_auc": ("purchase", "model", "roc_auc"),
        "backtest_bg_nbd_roc_auc": ("purchase", "bg_nbd", "roc_auc"),
        "backtest_revenue_capture": ("revenue", "model", "revenue_capture_top_decile"),
        "backtest_bg_nbd_revenue_capture": (
            "revenue",
            "bg_nbd_gamma_gamma",
            "revenue_capture_top_decile",
        ),
    }
    out = {}
    for column, (task, scorer, metric) in columns.items():
        values = [w[task][scorer][metric] for w in windows if scorer in w.get(task, {})]
        out[column] = float(np.mean(values)) if values else None
    return out


def _value_models_note(extra: dict) -> str | None:
    """Why a value column will be null: the BG/NBD, Gamma-Gamma or spend fit that failed."""
    notes = []
    shipped = (extra.get("value_models") or {}).get("as_of") or {}
    if shipped.get("reason"):
        notes.append(f"value models as of {shipped.get('snapshot_on')}: {shipped['reason']}")
    revenue = extra.get("revenue_model") or {}
    if revenue.get("reason"):
        notes.append(f"spend model: {revenue['reason']}")
    return "; ".join(notes) or None
