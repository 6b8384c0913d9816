"""The HTML report: every chart present, labelled, self-contained; honest when data is missing."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.config import Settings
from ml.report import (
    REPORT_NAME,
    build_charts,
    calibration_table,
    decile_table,
    load_report_data,
    render_html,
    write_report,
)
from ml.run.coverage import Coverage, find_gaps

# One xdist worker runs these modules, so their module fixtures (export, report) run once.
pytestmark = pytest.mark.xdist_group("marketing")

CHARTS = (
    "segment-sizes",
    "segment-profiles",
    "segment-transitions",
    "rfm-grid",
    "roc",
    "lift",
    "gain",
    "calibration",
    "backtest",
    "revenue-gain",
    "feature-importance",
    "audiences",
    "recommendations",
    "campaigns",
    "drift",
)
# The shared warehouse has scored one as_of: its transitions section is one sentence.
ONE_RUN_GAP = "segment-transitions"


@pytest.fixture(scope="module")
def report(marketing: Settings) -> str:
    path = write_report(marketing)
    assert path == marketing.reports_dir / REPORT_NAME
    return path.read_text(encoding="utf-8")


def test_report_has_every_chart_in_a_section_with_a_stable_id(report: str) -> None:
    sections = re.findall(r'<section class="segmart-chart" id="chart-([a-z-]+)"', report)
    assert sections == list(CHARTS)
    for name in set(CHARTS) - {ONE_RUN_GAP}:
        assert f'id="plot-{name}"' in report


def test_every_chart_says_which_data_it_shows(report: str) -> None:
    assert report.count('<p class="chart-source">Data: ') == len(CHARTS) - 1  # ONE_RUN_GAP


def test_with_one_scored_as_of_the_transitions_are_one_sentence(report: str) -> None:
    section = re.search(r'id="chart-segment-transitions"(.*?)</section>', report, re.S)[1]
    assert 'id="plot-segment-transitions"' not in section
    assert "Only one as_of has been scored so far" in section


def test_the_transition_matrix_counts_customers_from_each_segment_to_each(
    marketing: Settings,
) -> None:
    data = load_report_data(marketing)
    data.segment_transitions = pd.DataFrame(
        {
            "from_segment_id": [1, 1, 2, None, 2],
            "from_segment_name": ["Loyal", "Loyal", "Lapsed", None, "Lapsed"],
            "to_segment_id": [1, 2, 2, 1, None],
            "to_segment_name": ["Loyal", "Lapsed", "Lapsed", "Loyal", None],
            "n_customers": [50, 5, 40, 7, 3],
            "from_as_of": [date(2025, 9, 1)] * 5,
            "to_as_of": [date(2025, 10, 1)] * 5,
        }
    )
    chart = next(c for c in build_charts(data) if c.name == "segment-transitions")
    heatmap = chart.figure.data[0]
    assert list(heatmap.y) == ["1 Loyal", "2 Lapsed", "(not scored)"]
    assert list(heatmap.x) == ["1 Loyal", "2 Lapsed", "(not scored)"]
    assert heatmap.z.tolist() == [[50, 5, 0], [0, 40, 3], [7, 0, 0]]


def test_report_loads_nothing_from_the_network(report: str) -> None:
    assert not re.search(r"<script[^>]+src=", report)
    assert not re.search(r"<link[^>]+href=", report)
    assert "Plotly.newPlot" in report and len(report) > 3_000_000  # plotly.js is inlined


def test_model_quality_is_evaluated_on_the_backtest_window(report: str) -> None:
    # The generated shop runs past as_of + horizon, so scores meet real outcomes.
    assert "out of time: scores as of 2025-10-01" in report
    assert "AUC" in report


def test_missing_outcomes_are_said_not_hidden(marketing: Settings, tmp_path: Path) -> None:
    # A horizon the data does not cover and an empty registry: nothing to evaluate on.
    settings = replace(
        marketing, horizon_days=3650, models_dir=tmp_path / "models", reports_dir=tmp_path
    )
    text = write_report(settings).read_text(encoding="utf-8")
    assert "no outcomes to evaluate" in text
    assert "Model-quality charts are empty" in text


def test_outcomes_are_counted_over_the_horizon_the_model_was_trained_for(
    marketing: Settings, tmp_path: Path
) -> None:
    # `segmart report` run with another horizon than the champion's (a default changed, a
    # flag left out) must still evaluate the scores over the horizon they predict.
    text = write_report(replace(marketing, horizon_days=3650, reports_dir=tmp_path))
    html = text.read_text(encoding="utf-8")
    assert f"in the {marketing.horizon_days} days after" in html
    assert "no outcomes to evaluate" not in html


def test_a_shop_with_every_table_and_consent_has_no_gap_but_the_one_run_transitions(
    report: str,
) -> None:
    assert report.count('class="chart-gap"') == 1
    assert 'data-chart="segment-transitions" data-gap="true"' in report


def test_a_gap_replaces_exactly_its_sections_by_one_sentence(marketing: Settings) -> None:
    # The shared shop's data with the gaps of a shop lacking consent and campaign touches.
    data = load_report_data(marketing)
    data.gaps = find_gaps(
        Coverage(
            n_raw_rows={"campaign_touches": 0},
            n_accepted={"campaign_touches": 0},
            n_opted_in=0,
            consent_column_loaded=False,
        )
    )
    page = render_html(build_charts(data), data, datetime.now(UTC))
    sections = dict(
        re.findall(
            r'<section class="segmart-chart" id="chart-([a-z-]+)"(.*?)</section>', page, re.S
        )
    )
    assert list(sections) == list(CHARTS)  # same sections, same ids
    gapped = {name for name, body in sections.items() if 'class="chart-gap"' in body}
    assert gapped == {"audiences", "campaigns", ONE_RUN_GAP}
    for name in gapped:
        assert f'id="plot-{name}"' not in sections[name]
        assert len(re.findall(r'<p class="chart-gap">[^<]+\.</p>', sections[name])) == 1
    assert (
        "No customer has marketing consent (no marketing_opt_in column)" in sections["audiences"]
    )
    assert "No campaign touches were loaded: campaign results are empty." in sections["campaigns"]
    for name in set(CHARTS) - gapped:
        assert f'id="plot-{name}"' in sections[name]


def test_deciles_split_customers_evenly_and_gain_reaches_every_buyer() -> None:
    rng = np.random.default_rng(0)
    score = rng.random(1_003)
    y_true = (rng.random(1_003) < score).astype(float)
    table = decile_table(y_true, score)
    assert table["n"].sum() == 1_003 and table["n"].max() - table["n"].min() <= 1
    assert table["share_of_buyers"].iloc[-1] == pytest.approx(1.0)
    assert np.average(table["lift"], weights=table["n"]) == pytest.approx(1.0)
    assert table["lift"].iloc[0] > 1.5 > table["lift"].iloc[-1]
    calibration = calibration_table(y_true, score)
    assert calibration["n"].sum() == 1_003
    assert np.abs(calibration["mean_predicted"] - calibration["fraction_positive"]).max() < 0.15
