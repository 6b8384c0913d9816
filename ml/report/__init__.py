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

A chart whose data is missing still renders, with a note saying what is missing. A chart the
run could not have (no customer with marketing consent: audiences; an optional table not loaded:
recommendations, campaigns; see ml/run/coverage.py) is replaced by one sentence saying why, in a
section with the same id. The report only reads: a read-only connection to the warehouse and the
registry's files.

The package follows the data: `data` reads (the I/O edge), `curves` computes model-quality
tables, `charts` draws figures, `page` lays out the HTML; `write_report` ties them together.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from ml.config import Settings
from ml.report.charts import PSI_THRESHOLD, build_charts
from ml.report.curves import N_BINS, calibration_table, decile_table, roc_points
from ml.report.data import Outcomes, ReportData, load_report_data
from ml.report.figure import Chart
from ml.report.page import render_html

__all__ = [
    "N_BINS",
    "PSI_THRESHOLD",
    "REPORT_NAME",
    "Chart",
    "Outcomes",
    "ReportData",
    "build_charts",
    "calibration_table",
    "decile_table",
    "load_report_data",
    "render_html",
    "roc_points",
    "write_report",
]

REPORT_NAME = "segmart_report.html"


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
