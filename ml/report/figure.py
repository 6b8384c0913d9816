"""What every chart of the report is made of: the figure, its sentence, a common layout."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go


@dataclass(frozen=True)
class Chart:
    """One figure of the report with the sentence saying what data it shows.

    A chart whose data the run could not have (no consent, an optional table not loaded) has
    no figure: `gap` is the one sentence the page shows in its place.
    """

    name: str
    title: str
    source: str
    figure: go.Figure | None
    gap: str | None = None


_LAYOUT = {
    "template": "plotly_white",
    "height": 420,
    "margin": {"l": 60, "r": 30, "t": 40, "b": 60},
    "legend": {"orientation": "h", "y": -0.2},
}


def layout(figure: go.Figure, **overrides: object) -> go.Figure:
    """The report's common look (white template, legend below), `overrides` on top."""
    figure.update_layout(**(_LAYOUT | overrides))
    return figure


def missing(message: str) -> go.Figure:
    """An empty chart that says why it is empty (it still renders, so a reader sees the gap)."""
    figure = go.Figure()
    figure.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font_size=14
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return layout(figure, height=260)
