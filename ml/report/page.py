"""The report page: one self-contained HTML document with plotly.js inlined."""

from __future__ import annotations

import html
from datetime import datetime

from plotly.offline import get_plotlyjs

from ml.report.data import ReportData
from ml.report.figure import Chart

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 24px; color: #222; background: #fff; }
h1 { margin-bottom: 4px; } .meta { color: #555; margin-top: 0; }
table.metrics { border-collapse: collapse; margin: 12px 0 24px; }
table.metrics td, table.metrics th { border: 1px solid #ddd; padding: 4px 10px; }
section.segmart-chart { border-top: 1px solid #eee; padding-top: 12px; margin-top: 24px; }
p.chart-source { color: #555; font-size: 0.9em; margin: 0 0 8px; }
ul.notes { color: #8a5300; }
p.chart-gap { color: #8a5300; font-size: 1.05em; margin: 8px 0 16px; }
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
        opening = (
            f'<section class="segmart-chart" id="chart-{chart.name}" data-chart="{chart.name}"'
        )
        if chart.figure is None:
            sections.append(
                f'{opening} data-gap="true"><h2>{html.escape(chart.title)}</h2>'
                f'<p class="chart-gap">{html.escape(chart.gap or "")}</p></section>'
            )
            continue
        plot = chart.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{chart.name}",
            config={"displaylogo": False, "responsive": True},
        )
        sections.append(
            f"{opening}><h2>{html.escape(chart.title)}</h2>"
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
