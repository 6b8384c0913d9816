"""The report's charts: tables in, figures out, each with the sentence saying what it shows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sklearn.metrics import roc_auc_score

from ml.report.backtest_charts import backtest_charts
from ml.report.curves import calibration_table, decile_table, roc_points
from ml.report.data import Outcomes, ReportData
from ml.report.figure import Chart, layout, missing

PSI_THRESHOLD = 0.2
"""The usual reading of a population stability index: above 0.2 the population has moved."""


def segment_sizes_chart(summary: pd.DataFrame) -> go.Figure:
    """Share of customers next to share of revenue and of expected value, per segment."""
    if summary.empty:
        return missing("no segments: marketing.segment_summary is empty or missing")
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
    return layout(figure, barmode="group")


def segment_profile_chart(profiles: pd.DataFrame) -> go.Figure:
    """Heatmap of each segment's feature means, coloured by z-score across segments."""
    means = [c for c in profiles.columns if c.startswith("mean_")] if not profiles.empty else []
    if not means:
        return missing("no segment profiles: predictions.segment_profiles has no mean_* columns")
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
    return layout(figure, height=max(320, 60 * len(profiles) + 140))


def rfm_grid_chart(cells: pd.DataFrame) -> go.Figure:
    """Customers per recency x frequency cell, each cell labelled with its RFM group."""
    if cells.empty:
        return missing("no RFM scores: marketing.rfm_scores is empty or missing")
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
    return layout(figure, height=480)


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
        return missing(_NO_OUTCOMES)
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "grey"}
    )
    figure.update_xaxes(title="false positive rate", range=[0, 1])
    figure.update_yaxes(title="true positive rate", range=[0, 1])
    return layout(figure)


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
        return missing(_NO_OUTCOMES)
    figure.add_hline(y=1, line_dash="dot", line_color="grey", annotation_text="no model")
    figure.update_xaxes(title="score decile (1 = highest scores)", dtick=1)
    figure.update_yaxes(title="lift (decile buyer rate / overall)")
    return layout(figure, barmode="group")


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
        return missing(_NO_OUTCOMES)
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="random", line={"dash": "dot", "color": "grey"}
    )
    figure.update_xaxes(title="share of customers targeted", tickformat=".0%")
    figure.update_yaxes(title="share of buyers reached", tickformat=".0%")
    return layout(figure)


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
        return missing(_NO_OUTCOMES)
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dot", "color": "grey"}
    )
    figure.update_xaxes(title="mean predicted probability", range=[0, 1])
    figure.update_yaxes(title="observed purchase rate", range=[0, 1])
    return layout(figure)


def feature_importance_chart(importance: pd.DataFrame, reasons: pd.DataFrame) -> go.Figure:
    """The model's feature importance, else how often each feature is a customer's top reason."""
    if not importance.empty:
        top = importance.sort_values("importance").tail(20)
        figure = go.Figure(go.Bar(x=top["importance"], y=top["feature"], orientation="h"))
        figure.update_xaxes(
            title="permutation importance: drop in validation ROC-AUC when shuffled"
        )
        return layout(figure, height=max(320, 24 * len(top) + 120))
    if not reasons.empty:
        top = reasons.sort_values("share").tail(20)
        figure = go.Figure(go.Bar(x=top["share"], y=top["feature"], orientation="h"))
        figure.update_xaxes(title="share of customers whose first reason it is", tickformat=".0%")
        return layout(figure, height=max(320, 24 * len(top) + 120))
    return missing("no feature importance in the registry and no reasons in customer_scores")


def audience_chart(summary: pd.DataFrame) -> go.Figure:
    """Treatment and control sizes per audience, next to how many matched the rule."""
    if summary.empty:
        return missing("no audiences: marketing.audience_summary is empty or missing")
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
    return layout(figure, barmode="stack")


def recommendation_chart(recommendations: pd.DataFrame) -> go.Figure:
    """Customers per first recommended category, split by where the recommendation came from."""
    if recommendations.empty:
        return missing("no recommendations: marketing.customer_recommendations is empty")
    totals = recommendations.groupby("category")["n_customers"].sum().sort_values()
    figure = go.Figure()
    for source, rows in recommendations.groupby("source", sort=True):
        counts = rows.set_index("category")["n_customers"].reindex(totals.index)
        figure.add_bar(x=counts.fillna(0), y=totals.index, orientation="h", name=source)
    figure.update_xaxes(title="customers whose first recommendation it is")
    return layout(figure, barmode="stack", height=max(320, 24 * len(totals) + 140))


def campaign_chart(results: pd.DataFrame) -> go.Figure:
    """Absolute conversion lift per past campaign with its 95% interval."""
    if results.empty:
        return missing("no campaigns sent before as_of")
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
    return layout(figure, showlegend=False)


def _segment_label(segment_id: object, name: object, missing: str) -> str:
    if pd.isna(segment_id):
        return missing
    return f"{int(segment_id)} {name}"


def _labels_in_segment_order(moves: pd.DataFrame, side: str) -> list[str]:
    # By segment id, "(not scored)" (a null id) last.
    ordered = moves.sort_values(f"{side}_segment_id", na_position="last")
    return ordered[f"{side}_label"].drop_duplicates().tolist()


def transition_chart(transitions: pd.DataFrame) -> go.Figure:
    """Customers per (segment at the earlier run, segment at the later run): the matrix.

    Rows are the earlier run's segments, plus "(not scored)" for customers who entered;
    columns the later run's, plus "(not scored)" for those who left. The diagonal is the
    customers who stayed.
    """
    moves = transitions.assign(
        from_label=[
            _segment_label(s, n, "(not scored)")
            for s, n in zip(
                transitions["from_segment_id"], transitions["from_segment_name"], strict=True
            )
        ],
        to_label=[
            _segment_label(s, n, "(not scored)")
            for s, n in zip(
                transitions["to_segment_id"], transitions["to_segment_name"], strict=True
            )
        ],
    )
    rows, columns = _labels_in_segment_order(moves, "from"), _labels_in_segment_order(moves, "to")
    counts = moves.pivot_table(
        index="from_label", columns="to_label", values="n_customers", aggfunc="sum"
    ).reindex(index=rows, columns=columns)
    figure = go.Figure(
        go.Heatmap(
            z=counts.fillna(0).to_numpy(),
            x=counts.columns.tolist(),
            y=counts.index.tolist(),
            text=counts.fillna(0).astype(int).map("{:,}".format).to_numpy(),
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar={"title": "customers"},
        )
    )
    first = transitions.iloc[0]
    figure.update_xaxes(title=f"segment at {first['to_as_of']:%Y-%m-%d}", side="bottom")
    figure.update_yaxes(title=f"segment at {first['from_as_of']:%Y-%m-%d}", autorange="reversed")
    return layout(figure, height=max(360, 50 * len(counts) + 160))


def _transitions(data: ReportData) -> Chart:
    """The transition matrix, or the sentence saying why there is none yet."""
    chart = Chart(
        "segment-transitions",
        "Segment transitions",
        "marketing.segment_transitions: customers per segment at the previous scored as_of"
        " (rows) and at the latest one (columns), from predictions.customer_score_history;"
        " (not scored) = signed up in between, or no longer scored.",
        None,
    )
    if data.segment_transitions.empty:
        return replace(
            chart,
            gap="Only one as_of has been scored so far: transitions appear after the next"
            " scoring run at a later as_of.",
        )
    return replace(chart, figure=transition_chart(data.segment_transitions))


def drift_chart(drift: pd.DataFrame) -> go.Figure:
    """Population stability index per feature, training population vs scored population."""
    if drift.empty:
        return missing("no drift measured: predictions.feature_drift is empty or missing")
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
    return layout(figure, height=max(320, 22 * len(drift) + 120))


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
    charts = [
        Chart(
            "segment-sizes",
            "Segment sizes and value",
            "marketing.segment_summary: scored customers per ML segment at as_of; revenue is order"
            " value before as_of; expected value = predicted revenue in the horizon.",
            segment_sizes_chart(data.segment_summary),
        ),
        Chart(
            "segment-profiles",
            "Segment profiles",
            "predictions.segment_profiles: the ML step's per-segment means of raw features;"
            " colour is the z-score across segments, the text the mean itself.",
            segment_profile_chart(data.segment_profiles),
        ),
        _transitions(data),
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
        *backtest_charts(data.backtest),
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
            "recommendations",
            "Recommended categories",
            "marketing.customer_recommendations: customers per first recommended category;"
            " co_purchase comes from the customer's own baskets (lift > 1), segment_popular is"
            " the fallback: what the customer's segment bought in the year before as_of.",
            recommendation_chart(data.recommendations),
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
    return [_with_gaps(chart, data) for chart in charts]


def _with_gaps(chart: Chart, data: ReportData) -> Chart:
    """The chart, or in its place the sentence of every gap that empties it."""
    sentences = [gap.sentence for gap in data.gaps if chart.name in gap.sections]
    if not sentences:
        return chart
    return replace(chart, figure=None, gap=" ".join(sentences))
