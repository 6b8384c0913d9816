"""The run report: one self-contained HTML file of charts on segments, propensity and audiences.

plotly.js is inlined once, so the file opens offline, from a mail attachment or a file share.
Every chart sits in `<section class="segmart-chart" id="chart-<name>">` and says under its title
which data it shows. Model-quality charts draw on up to two sources, each labelled:

* **validation**: the ML step's held-out snapshot, from the model registry: the curve points
  `extra.validation_curves` (roc, deciles, calibration) and `extra.feature_importance` in
  `<models_dir>/<model_id>/metadata.json`, or per-row `validation_predictions.parquet`
  (`y_true`, `score`) in the same directory if the ML step ever writes it;
* **out of time**: the scores written at as_of against the purchases the warehouse holds in
  [as_of, as_of + horizon) - present only when the data already covers that window (a backtest
  with an earlier `--as-of`), never for a live run.

A chart whose data is missing still renders, with a note saying what is missing. The report only
reads: a read-only connection to the warehouse and the registry's files.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots
from sklearn.metrics import roc_auc_score, roc_curve

from ml.config import Settings
from ml.errors import SegmartError
from ml.warehouse import connect, query, table_exists

REPORT_NAME = "segmart_report.html"
N_BINS = 10
PSI_THRESHOLD = 0.2
"""The usual reading of a population stability index: above 0.2 the population has moved."""


@dataclass(frozen=True)
class Outcomes:
    """Scores next to what happened, and where both come from."""

    name: str
    description: str
    y_true: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class Chart:
    """One figure of the report with the sentence saying what data it shows."""

    name: str
    title: str
    source: str
    figure: go.Figure


@dataclass
class ReportData:
    """Everything the report shows, read once from the warehouse and the registry."""

    model_id: str | None
    as_of: date | None
    horizon_days: int
    model_run: dict = field(default_factory=dict)
    segment_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    segment_profiles: pd.DataFrame = field(default_factory=pd.DataFrame)
    rfm_cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    audience_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    campaign_results: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    reason_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_importance: pd.DataFrame = field(default_factory=pd.DataFrame)
    outcomes: list[Outcomes] = field(default_factory=list)
    validation_curves: dict = field(default_factory=dict)
    validation_description: str = ""
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Curves: arrays in, tables out


def roc_points(y_true: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """False and true positive rates of the ROC curve (sklearn's, without redundant points)."""
    fpr, tpr, _ = roc_curve(y_true, score, drop_intermediate=True)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def decile_table(y_true: np.ndarray, score: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Buyers per score decile (1 = highest scores), with lift and cumulative gain.

    Rows are ordered by score descending with ties kept in input order (a stable sort), then cut
    into `n_bins` groups of equal size as numpy.array_split does.
    """
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    y_sorted = np.asarray(y_true, dtype=np.float64)[order]
    groups = np.array_split(y_sorted, n_bins)
    n = np.array([len(group) for group in groups], dtype=np.float64)
    n_positive = np.array([group.sum() for group in groups])
    overall_rate = y_sorted.mean() if len(y_sorted) else math.nan
    table = pd.DataFrame({"decile": np.arange(1, n_bins + 1), "n": n, "n_positive": n_positive})
    table["rate"] = table["n_positive"] / table["n"].where(table["n"] > 0)
    table["lift"] = table["rate"] / overall_rate if overall_rate else math.nan
    table["share_targeted"] = table["n"].cumsum() / n.sum()
    total_positive = n_positive.sum()
    table["share_of_buyers"] = (
        table["n_positive"].cumsum() / total_positive if total_positive else math.nan
    )
    return table


def calibration_table(y_true: np.ndarray, score: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Mean predicted probability against the observed rate in score-quantile bins."""
    frame = pd.DataFrame({"y": np.asarray(y_true, float), "p": np.asarray(score, float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), n_bins, labels=False)
    return (
        frame.groupby("bin")
        .agg(mean_predicted=("p", "mean"), fraction_positive=("y", "mean"), n=("y", "size"))
        .reset_index(drop=True)
    )


# ---------------------------------------------------------------------------------------------
# Charts: tables in, figures out


def _layout(figure: go.Figure, **overrides: object) -> go.Figure:
    layout = {
        "template": "plotly_white",
        "height": 420,
        "margin": {"l": 60, "r": 30, "t": 40, "b": 60},
        "legend": {"orientation": "h", "y": -0.2},
    }
    figure.update_layout(**(layout | overrides))
    return figure


def _missing(message: str) -> go.Figure:
    """An empty chart that says why it is empty (it still renders, so a reader sees the gap)."""
    figure = go.Figure()
    figure.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font_size=14
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _layout(figure, height=260)


def segment_sizes_chart(summary: pd.DataFrame) -> go.Figure:
    """Share of customers next to share of revenue and of expected value, per segment."""
    if summary.empty:
        return _missing("no segments: marketing.segment_summary is empty or missing")
    summary = summary.sort_values("segment_id")
    expected = summary["expected_value"].astype(float)
    figure = go.Figure(
        [
            go.Bar(
                name="share of customers", x=summary["segment_name"], y=summary["customer_share"]
            ),
            go.Bar(
                name="share of revenue before as_of",
                x=summary["segment_name"],
                y=summary["revenue_share"],
            ),
            go.Bar(
                name="share of expected value (horizon)",
                x=summary["segment_name"],
                y=expected / expected.sum() if expected.sum() else expected,
            ),
        ]
    )
    figure.update_yaxes(tickformat=".0%", title="share")
    return _layout(figure, barmode="group")


def segment_profile_chart(profiles: pd.DataFrame) -> go.Figure:
    """Heatmap of each segment's feature means, coloured by z-score across segments."""
    means = [c for c in profiles.columns if c.startswith("mean_")] if not profiles.empty else []
    if not means:
        return _missing("no segment profiles: predictions.segment_profiles has no mean_* columns")
    profiles = profiles.sort_values("segment_id")
    values = profiles[means].astype(float)
    spread = values.std(ddof=0).replace(0, 1.0)
    zscores = (values - values.mean()) / spread
    labels = [c.removeprefix("mean_") for c in means]
    figure = go.Figure(
        go.Heatmap(
            z=zscores.to_numpy(),
            x=labels,
            y=profiles["segment_name"],
            text=values.map(lambda v: "" if pd.isna(v) else f"{v:,.3g}").to_numpy(),
            texttemplate="%{text}",
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            colorbar={"title": "z across<br>segments"},
        )
    )
    return _layout(figure, height=max(320, 60 * len(profiles) + 140))


def rfm_grid_chart(cells: pd.DataFrame) -> go.Figure:
    """Customers per recency x frequency cell, each cell labelled with its RFM group."""
    if cells.empty:
        return _missing("no RFM scores: marketing.rfm_scores is empty or missing")
    scores = list(range(1, 6))
    counts = cells.pivot_table(
        index="recency_score", columns="frequency_score", values="n_customers", aggfunc="sum"
    ).reindex(index=scores, columns=scores)
    groups = cells.drop_duplicates(["recency_score", "frequency_score"]).pivot(
        index="recency_score", columns="frequency_score", values="rfm_group"
    )
    groups = groups.reindex(index=scores, columns=scores)
    text = [
        [
            f"{groups.loc[r, f] if isinstance(groups.loc[r, f], str) else ''}<br>"
            f"{0 if pd.isna(counts.loc[r, f]) else int(counts.loc[r, f]):,}"
            for f in scores
        ]
        for r in scores
    ]
    figure = go.Figure(
        go.Heatmap(
            z=counts.fillna(0).to_numpy(),
            x=[f"F{f}" for f in scores],
            y=[f"R{r}" for r in scores],
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar={"title": "customers"},
        )
    )
    figure.update_xaxes(title="frequency score (5 = most orders)")
    figure.update_yaxes(title="recency score (5 = most recent)")
    return _layout(figure, height=480)


def roc_chart(outcomes: list[Outcomes], curves: dict) -> go.Figure:
    """ROC curves of every available source, with the chance diagonal."""
    figure = go.Figure()
    for outcome in outcomes:
        points = roc_points(outcome.y_true, outcome.score)
        auc = roc_auc_score(outcome.y_true, outcome.score)
        figure.add_scatter(
            x=points["fpr"], y=points["tpr"], mode="lines", name=f"{outcome.name} (AUC {auc:.3f})"
        )
    if "roc" in curves:
        figure.add_scatter(
            x=curves["roc"]["fpr"],
            y=curves["roc"]["tpr"],
            mode="lines",
            name="validation (held-out snapshot)",
        )
    if not figure.data:
        return _missing(_NO_OUTCOMES)
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "grey"}
    )
    figure.update_xaxes(title="false positive rate", range=[0, 1])
    figure.update_yaxes(title="true positive rate", range=[0, 1])
    return _layout(figure)


def lift_chart(outcomes: list[Outcomes], curves: dict) -> go.Figure:
    """Buyer rate per score decile relative to the overall rate."""
    figure = go.Figure()
    for outcome in outcomes:
        table = decile_table(outcome.y_true, outcome.score)
        figure.add_bar(x=table["decile"], y=table["lift"], name=outcome.name)
    if "deciles" in curves and "lift" in curves["deciles"]:
        deciles = curves["deciles"]
        figure.add_bar(
            x=deciles["decile"], y=deciles["lift"], name="validation (held-out snapshot)"
        )
    if not figure.data:
        return _missing(_NO_OUTCOMES)
    figure.add_hline(y=1, line_dash="dot", line_color="grey", annotation_text="no model")
    figure.update_xaxes(title="score decile (1 = highest scores)", dtick=1)
    figure.update_yaxes(title="lift (decile buyer rate / overall)")
    return _layout(figure, barmode="group")


def gain_chart(outcomes: list[Outcomes], curves: dict) -> go.Figure:
    """Cumulative share of buyers reached when targeting the top-scored share of customers."""
    figure = go.Figure()
    for outcome in outcomes:
        table = decile_table(outcome.y_true, outcome.score)
        figure.add_scatter(
            x=[0, *table["share_targeted"]],
            y=[0, *table["share_of_buyers"]],
            mode="lines+markers",
            name=outcome.name,
        )
    if "deciles" in curves and "share_of_buyers" in curves["deciles"]:
        deciles = curves["deciles"]
        n_bins = len(deciles["share_of_buyers"])
        targeted = deciles.get("share_targeted") or [(k + 1) / n_bins for k in range(n_bins)]
        figure.add_scatter(
            x=[0, *targeted],
            y=[0, *deciles["share_of_buyers"]],
            mode="lines+markers",
            name="validation (held-out snapshot)",
        )
    if not figure.data:
        return _missing(_NO_OUTCOMES)
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="random", line={"dash": "dot", "color": "grey"}
    )
    figure.update_xaxes(title="share of customers targeted", tickformat=".0%")
    figure.update_yaxes(title="share of buyers reached", tickformat=".0%")
    return _layout(figure)


def calibration_chart(outcomes: list[Outcomes], curves: dict) -> go.Figure:
    """Mean predicted probability against the observed purchase rate, in score deciles."""
    figure = go.Figure()
    for outcome in outcomes:
        table = calibration_table(outcome.y_true, outcome.score)
        figure.add_scatter(
            x=table["mean_predicted"],
            y=table["fraction_positive"],
            mode="lines+markers",
            name=outcome.name,
        )
    if "calibration" in curves:
        figure.add_scatter(
            x=curves["calibration"]["mean_predicted"],
            y=curves["calibration"]["fraction_positive"],
            mode="lines+markers",
            name="validation (held-out snapshot)",
        )
    if not figure.data:
        return _missing(_NO_OUTCOMES)
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dot", "color": "grey"}
    )
    figure.update_xaxes(title="mean predicted probability", range=[0, 1])
    figure.update_yaxes(title="observed purchase rate", range=[0, 1])
    return _layout(figure)


def feature_importance_chart(importance: pd.DataFrame, reasons: pd.DataFrame) -> go.Figure:
    """The model's feature importance, else how often each feature is a customer's top reason."""
    if not importance.empty:
        top = importance.sort_values("importance").tail(20)
        figure = go.Figure(go.Bar(x=top["importance"], y=top["feature"], orientation="h"))
        figure.update_xaxes(
            title="permutation importance: drop in validation ROC-AUC when shuffled"
        )
        return _layout(figure, height=max(320, 24 * len(top) + 120))
    if not reasons.empty:
        top = reasons.sort_values("share").tail(20)
        figure = go.Figure(go.Bar(x=top["share"], y=top["feature"], orientation="h"))
        figure.update_xaxes(title="share of customers whose first reason it is", tickformat=".0%")
        return _layout(figure, height=max(320, 24 * len(top) + 120))
    return _missing("no feature importance in the registry and no reasons in customer_scores")


def audience_chart(summary: pd.DataFrame) -> go.Figure:
    """Treatment and control sizes per audience, next to how many matched the rule."""
    if summary.empty:
        return _missing("no audiences: marketing.audience_summary is empty or missing")
    summary = summary.sort_values("priority")
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_bar(x=summary["audience"], y=summary["n_treatment"], name="treatment (contact)")
    figure.add_bar(x=summary["audience"], y=summary["n_control"], name="control (hold out)")
    figure.add_scatter(
        x=summary["audience"],
        y=summary["n_matching"],
        mode="markers",
        marker={"symbol": "diamond", "size": 10},
        name="matched the rule (before priority and cap)",
    )
    figure.add_scatter(
        x=summary["audience"],
        y=summary["expected_value_treatment"].astype(float),
        mode="lines+markers",
        name="expected value of treatment",
        secondary_y=True,
    )
    figure.update_yaxes(title="customers", secondary_y=False)
    figure.update_yaxes(title="expected value", secondary_y=True, showgrid=False)
    return _layout(figure, barmode="stack")


def campaign_chart(results: pd.DataFrame) -> go.Figure:
    """Absolute conversion lift per past campaign with its 95% interval."""
    if results.empty:
        return _missing("no campaigns sent before as_of")
    results = results.sort_values("first_sent_at")
    figure = go.Figure(
        go.Scatter(
            x=results["campaign_id"],
            y=results["absolute_lift"],
            mode="markers",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": results["absolute_lift_ci_high"] - results["absolute_lift"],
                "arrayminus": results["absolute_lift"] - results["absolute_lift_ci_low"],
            },
            marker={
                "size": 9,
                "color": np.where(results["is_significant"], "#1f77b4", "#aaaaaa").tolist(),
            },
            name="lift",
        )
    )
    figure.add_hline(y=0, line_dash="dot", line_color="grey")
    figure.update_yaxes(title="conversion lift (treatment - control)", tickformat=".0%")
    return _layout(figure, showlegend=False)


def drift_chart(drift: pd.DataFrame) -> go.Figure:
    """Population stability index per feature, training population vs scored population."""
    if drift.empty:
        return _missing("no drift measured: predictions.feature_drift is empty or missing")
    drift = drift.sort_values("psi")
    drifted = drift["is_drifted"] if "is_drifted" in drift else drift["psi"] > PSI_THRESHOLD
    figure = go.Figure(
        go.Bar(
            x=drift["psi"],
            y=drift["feature"],
            orientation="h",
            marker={"color": np.where(drifted, "#d62728", "#1f77b4").tolist()},
        )
    )
    figure.add_vline(x=PSI_THRESHOLD, line_dash="dot", annotation_text="0.2")
    figure.update_xaxes(title="population stability index")
    return _layout(figure, height=max(320, 22 * len(drift) + 120))


_NO_OUTCOMES = (
    "no outcomes to evaluate: the registry holds no validation predictions or curves,<br>"
    "and the warehouse does not yet cover the horizon after as_of"
)


def build_charts(data: ReportData) -> list[Chart]:
    """Every chart of the report, in reading order."""
    outcome_sources = [f"{o.name}: {o.description}" for o in data.outcomes]
    if data.validation_curves:
        outcome_sources.append(data.validation_description)
    evaluated_on = "; ".join(outcome_sources) or "nothing to evaluate on (see the chart)"
    return [
        Chart(
            "segment-sizes",
            "Segment sizes and value",
            "marketing.segment_summary: scored customers per ML segment at as_of; revenue is order"
            " value before as_of; expected value = purchase probability x average order value.",
            segment_sizes_chart(data.segment_summary),
        ),
        Chart(
            "segment-profiles",
            "Segment profiles",
            "predictions.segment_profiles: the ML step's per-segment means of raw features;"
            " colour is the z-score across segments, the text the mean itself.",
            segment_profile_chart(data.segment_profiles),
        ),
        Chart(
            "rfm-grid",
            "RFM grid",
            "marketing.rfm_scores: customers with an order before as_of per recency x frequency"
            " score cell, labelled with the RFM group of the cell.",
            rfm_grid_chart(data.rfm_cells),
        ),
        Chart(
            "roc", "Propensity ROC", evaluated_on, roc_chart(data.outcomes, data.validation_curves)
        ),
        Chart(
            "lift",
            "Lift by decile",
            evaluated_on,
            lift_chart(data.outcomes, data.validation_curves),
        ),
        Chart(
            "gain",
            "Cumulative gain",
            evaluated_on,
            gain_chart(data.outcomes, data.validation_curves),
        ),
        Chart(
            "calibration",
            "Calibration",
            evaluated_on,
            calibration_chart(data.outcomes, data.validation_curves),
        ),
        Chart(
            "feature-importance",
            "Feature importance",
            "the model registry (metadata.json extra.feature_importance): how much the"
            " validation ROC-AUC drops when the feature is shuffled"
            if not data.feature_importance.empty
            else "predictions.customer_scores: how often each feature is a customer's first"
            " reason (the registry stores no feature importance for this model)",
            feature_importance_chart(data.feature_importance, data.reason_counts),
        ),
        Chart(
            "audiences",
            "Audience sizes",
            "marketing.audience_summary: this run's audiences from seeds/audience_playbook.csv;"
            " controls are held out and never contacted.",
            audience_chart(data.audience_summary),
        ),
        Chart(
            "campaigns",
            "Past campaign lift",
            "marketing.campaign_results: conversion within the window after each send, treatment"
            " minus control; bars are 95% normal-approximation intervals, grey = not significant.",
            campaign_chart(data.campaign_results),
        ),
        Chart(
            "drift",
            "Feature drift",
            "predictions.feature_drift: population stability index between the training"
            " population and the customers scored at as_of; red = flagged as drifted.",
            drift_chart(data.feature_drift),
        ),
    ]


# ---------------------------------------------------------------------------------------------
# HTML

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 24px; color: #222; background: #fff; }
h1 { margin-bottom: 4px; } .meta { color: #555; margin-top: 0; }
table.metrics { border-collapse: collapse; margin: 12px 0 24px; }
table.metrics td, table.metrics th { border: 1px solid #ddd; padding: 4px 10px; }
section.segmart-chart { border-top: 1px solid #eee; padding-top: 12px; margin-top: 24px; }
p.chart-source { color: #555; font-size: 0.9em; margin: 0 0 8px; }
ul.notes { color: #8a5300; }
"""


def _metrics_table(model_run: dict) -> str:
    numeric = {
        key: value
        for key, value in model_run.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    if not numeric:
        return ""
    head = "".join(f"<th>{html.escape(key)}</th>" for key in numeric)
    cells = "".join(f"<td>{value:.4g}</td>" for value in numeric.values())
    return f'<table class="metrics"><tr>{head}</tr><tr>{cells}</tr></table>'


def render_html(charts: list[Chart], data: ReportData, generated_at: datetime) -> str:
    """The whole report as one HTML document with plotly.js inlined."""
    sections = []
    for chart in charts:
        plot = chart.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{chart.name}",
            config={"displaylogo": False, "responsive": True},
        )
        sections.append(
            f'<section class="segmart-chart" id="chart-{chart.name}" data-chart="{chart.name}">'
            f"<h2>{html.escape(chart.title)}</h2>"
            f'<p class="chart-source">Data: {html.escape(chart.source)}</p>{plot}</section>'
        )
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in data.notes)
    algorithm = data.model_run.get("algorithm", "")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>segmart report {html.escape(str(data.as_of or ""))}</title>
<style>{_STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>segmart report</h1>
<p class="meta">as of {html.escape(str(data.as_of or "unknown"))} &middot; model
{html.escape(str(data.model_id or "none"))} {html.escape(str(algorithm))} &middot; horizon
{data.horizon_days} days &middot; generated {generated_at.isoformat(timespec="seconds")}</p>
{_metrics_table(data.model_run)}
{f'<ul class="notes">{notes}</ul>' if notes else ""}
{"".join(sections)}
</body>
</html>
"""


# ---------------------------------------------------------------------------------------------
# Reading (the I/O edge)


def _frame(con: object, sql: str, params: list | None = None) -> pd.DataFrame:
    return query(con, sql, params).to_pandas()


def _table_or_empty(con: object, name: str, sql: str, notes: list[str]) -> pd.DataFrame:
    if not table_exists(con, name):
        notes.append(f"{name} is missing from the warehouse; its chart is empty.")
        return pd.DataFrame()
    return _frame(con, sql)


def _registry_files(models_dir: Path, model_id: str | None) -> tuple[dict, Path | None]:
    if not model_id:
        return {}, None
    model_dir = models_dir / model_id
    path = model_dir / "metadata.json"
    if not path.exists():
        return {}, model_dir
    return json.loads(path.read_text()), model_dir


def _metadata_value(metadata: dict, *keys: str) -> object:
    """The first of `keys` found at the top of metadata.json or under its `extra`."""
    for where in (metadata, metadata.get("extra") or {}):
        for key in keys:
            if where.get(key):
                return where[key]
    return None


def _importance_frame(metadata: dict) -> pd.DataFrame:
    raw = _metadata_value(metadata, "feature_importance", "feature_importances")
    if isinstance(raw, dict):
        return pd.DataFrame({"feature": list(raw), "importance": list(raw.values())})
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return pd.DataFrame(raw).rename(columns={"value": "importance"})[["feature", "importance"]]
    return pd.DataFrame()


def _validation_outcomes(metadata: dict, model_dir: Path | None) -> list[Outcomes]:
    if model_dir is None:
        return []
    path = model_dir / "validation_predictions.parquet"
    if not path.exists():
        return []
    frame = pd.read_parquet(path)
    label = next((c for c in ("y_true", "label", "purchased_in_horizon") if c in frame), None)
    score = next((c for c in ("score", "y_score", "purchase_probability") if c in frame), None)
    if label is None or score is None:
        return []
    return [
        Outcomes(
            "validation",
            "the ML step's held-out validation rows (registry validation_predictions.parquet)",
            frame[label].to_numpy(dtype=float),
            frame[score].to_numpy(dtype=float),
        )
    ]


def _out_of_time_outcomes(con: object, as_of: date, horizon_days: int) -> Outcomes | None:
    """Scores at as_of vs counted purchases in [as_of, as_of + horizon), if the data covers it."""
    covered = _frame(
        con,
        "select max(ordered_on) >= cast(? as date) + ? - 1 as covered from core.orders",
        [as_of, horizon_days],
    )
    if covered.empty or not bool(covered["covered"].iloc[0]):
        return None
    frame = _frame(
        con,
        """
        with buyers as (
            select distinct customer_id
            from core.orders
            where is_counted_purchase
                and ordered_on >= cast(? as date)
                and ordered_on < cast(? as date) + ?
        )
        select
            customer_scores.purchase_probability as score,
            buyers.customer_id is not null as purchased,
        from predictions.customer_scores
        left join buyers
            on customer_scores.customer_id = buyers.customer_id
        order by customer_scores.customer_id
        """,
        [as_of, as_of, horizon_days],
    )
    if frame.empty or frame["purchased"].nunique() < 2:
        return None
    return Outcomes(
        "out of time",
        f"scores as of {as_of} vs counted purchases in the {horizon_days} days after, which the"
        " warehouse already holds (a backtest)",
        frame["purchased"].to_numpy(dtype=float),
        frame["score"].to_numpy(dtype=float),
    )


def load_report_data(settings: Settings) -> ReportData:
    """Read everything the report shows: warehouse read-only, registry metadata from files."""
    notes: list[str] = []
    with connect(settings.warehouse, read_only=True) as con:
        if not table_exists(con, "predictions.customer_scores"):
            raise SegmartError(
                "predictions.customer_scores is missing: run `segmart score` (or `segmart run`)"
                " before writing the report"
            )
        run = _frame(
            con,
            "select any_value(model_id) as model_id, max(as_of) as as_of,"
            " count(distinct model_id) as n_models from predictions.customer_scores",
        )
        model_id = run["model_id"].iloc[0]
        as_of = pd.Timestamp(run["as_of"].iloc[0]).date() if run["as_of"].notna().all() else None
        data = ReportData(model_id=model_id, as_of=as_of, horizon_days=settings.horizon_days)
        if table_exists(con, "predictions.model_runs"):
            runs = _frame(
                con, "select * from predictions.model_runs where model_id = ?", [model_id]
            )
            if not runs.empty:
                data.model_run = {
                    key: (value.item() if hasattr(value, "item") else value)
                    for key, value in runs.iloc[0].to_dict().items()
                }
        data.segment_summary = _table_or_empty(
            con, "marketing.segment_summary", "select * from marketing.segment_summary", notes
        )
        data.segment_profiles = _table_or_empty(
            con,
            "predictions.segment_profiles",
            "select * from predictions.segment_profiles",
            notes,
        )
        data.rfm_cells = _table_or_empty(
            con,
            "marketing.rfm_scores",
            "select recency_score, frequency_score, rfm_group, count(*) as n_customers"
            " from marketing.rfm_scores where recency_score is not null group by all",
            notes,
        )
        data.audience_summary = _table_or_empty(
            con, "marketing.audience_summary", "select * from marketing.audience_summary", notes
        )
        data.campaign_results = _table_or_empty(
            con, "marketing.campaign_results", "select * from marketing.campaign_results", notes
        )
        data.feature_drift = _table_or_empty(
            con, "predictions.feature_drift", "select * from predictions.feature_drift", notes
        )
        data.reason_counts = _frame(
            con,
            "select reason_1 as feature, count(*) / sum(count(*)) over () as share"
            " from predictions.customer_scores where reason_1 is not null group by 1",
        )
        if as_of is not None and table_exists(con, "core.orders"):
            out_of_time = _out_of_time_outcomes(con, as_of, settings.horizon_days)
            if out_of_time is not None:
                data.outcomes.append(out_of_time)
    metadata, model_dir = _registry_files(settings.models_dir, model_id)
    if model_id and not metadata:
        notes.append(f"no registry metadata at {settings.models_dir / str(model_id)}.")
    data.outcomes[:0] = _validation_outcomes(metadata, model_dir)
    curves = _metadata_value(metadata, "validation_curves", "curves") or {}
    data.validation_curves = curves if isinstance(curves, dict) else {}
    data.validation_description = (
        f"validation (registry): the model's held-out snapshot"
        f" {metadata.get('validation_snapshot', '?')}"
        f" ({metadata.get('n_validation_rows', '?')} customers), curve points from"
        " metadata.json"
    )
    data.feature_importance = _importance_frame(metadata)
    if not data.outcomes and not data.validation_curves:
        notes.append(
            "Model-quality charts are empty: the registry holds no validation predictions or"
            " curves, and the data does not cover the horizon after as_of."
        )
    data.notes = notes
    return data


def write_report(settings: Settings) -> Path:
    """Write settings.reports_dir/segmart_report.html (atomically) and return its path.

    Example: after `segmart run`, open reports/segmart_report.html in any browser, offline.
    """
    data = load_report_data(settings)
    document = render_html(build_charts(data), data, datetime.now(UTC))
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    target = settings.reports_dir / REPORT_NAME
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        staging.write_text(document, encoding="utf-8")
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target
