"""The backtest's charts: each scorer's metrics over the windows, and revenue gain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ml.report.figure import Chart, layout, missing

_NO_BACKTEST = "the model was trained without a backtest (retrain to get one)"
# The metrics a marketer reads first: who buys, and where the revenue is.
_SHOWN = (
    ("purchase", "roc_auc", "purchase ROC-AUC"),
    ("revenue", "revenue_capture_top_decile", "revenue captured by the top 10%"),
)


def backtest_frame(backtest: dict) -> pd.DataFrame:
    """One row per window, task, scorer and metric from metadata's backtest."""
    rows = [
        {"origin": w["origin"], "task": task, "scorer": scorer, "metric": m, "value": v}
        for w in backtest.get("windows", [])
        for task in ("purchase", "revenue")
        for scorer, metrics in w.get(task, {}).items()
        for m, v in metrics.items()
    ]
    return pd.DataFrame(rows, columns=["origin", "task", "scorer", "metric", "value"])


def backtest_metrics_chart(backtest: dict) -> go.Figure:
    """Mean over the windows per scorer, with the windows' min-max as error bars."""
    frame = backtest_frame(backtest)
    if frame.empty:
        return missing(_NO_BACKTEST)
    figure = make_subplots(rows=1, cols=2, subplot_titles=[title for *_, title in _SHOWN])
    for column, (task, metric, _) in enumerate(_SHOWN, start=1):
        part = frame[(frame["task"] == task) & (frame["metric"] == metric)]
        stats = part.groupby("scorer", sort=False)["value"].agg(["mean", "min", "max"])
        figure.add_bar(
            x=stats.index,
            y=stats["mean"],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": stats["max"] - stats["mean"],
                "arrayminus": stats["mean"] - stats["min"],
            },
            marker_color=["#1f77b4" if s == "model" else "#bbbbbb" for s in stats.index],
            showlegend=False,
            row=1,
            col=column,
        )
    return layout(figure)


def revenue_gain_chart(backtest: dict) -> go.Figure:
    """Share of the next horizon's revenue reached by targeting the top-scored customers."""
    windows = backtest.get("windows", [])
    gains = windows[0].get("revenue_gains", {}) if windows else {}
    if not gains:
        return missing(_NO_BACKTEST)
    figure = go.Figure()
    for scorer, shares in gains.items():
        targeted = np.arange(1, len(shares) + 1) / len(shares)
        figure.add_scatter(x=[0, *targeted], y=[0, *shares], mode="lines+markers", name=scorer)
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="random", line={"dash": "dot", "color": "grey"}
    )
    figure.update_xaxes(title="share of customers targeted", tickformat=".0%")
    figure.update_yaxes(title="share of the horizon's revenue", tickformat=".0%")
    return layout(figure)


def backtest_charts(backtest: dict) -> list[Chart]:
    """The two backtest charts with the sentence saying what they show."""
    windows = backtest.get("windows", [])
    origins = ", ".join(w["origin"] for w in windows) or "none"
    return [
        Chart(
            "backtest",
            "Backtest over rolling origins",
            "the model registry (metadata.json extra.revenue_model.backtest): windows at"
            f" {origins}, each fitted only on snapshots labelled by its origin; bars are the"
            " mean, whiskers the best and worst window; grey are the baselines (BG/NBD, ...).",
            backtest_metrics_chart(backtest),
        ),
        Chart(
            "revenue-gain",
            "Revenue gain",
            f"the latest backtest window ({windows[0]['origin'] if windows else 'none'}): share of"
            " the realised revenue in the horizon after it that the top-scored customers brought,"
            " by scorer (model = purchase probability x spend model).",
            revenue_gain_chart(backtest),
        ),
    ]
