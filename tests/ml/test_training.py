import json
import shutil
from dataclasses import replace

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from ml.errors import SegmartError
from ml.modelling.training import MODEL_RUNS_TABLE, TrainOptions, train
from ml.serving.scoring import score
from tests.ml.synthetic import (
    settings_for,
    single_threaded,  # noqa: F401 - autouse fixture
    synthetic_marts,
    synthetic_warehouse,
    table_names,
    write_warehouse,
)

# Three segments skip the search over k, which test_segments covers.
FAST = TrainOptions(algorithm="logistic_regression", n_segments=3, n_threads=1)


def _assert_nothing_written(settings) -> None:
    assert not settings.models_dir.exists() or not any(settings.models_dir.iterdir())
    if settings.warehouse.exists():
        assert not {name for name in table_names(settings.warehouse) if name.startswith("pre")}


@pytest.mark.parametrize(
    ("marts", "options", "message"),
    [
        ({"n_customers": 150}, FAST, r"\d+ buyers and \d+ non-buyers; at least 100 of each"),
        ({"buy_rate_shift": 60.0}, FAST, "a single class"),
        ({"buy_rate_shift": -60.0}, FAST, "a single class"),
        ({"n_snapshots": 1}, FAST, "holds a single snapshot"),
        ({}, replace(FAST, n_segments=100_000), "cannot segment 800 customers into 100000"),
    ],
    ids=["too-few-per-class", "all-buyers", "no-buyers", "one-snapshot", "too-many-segments"],
)
def test_a_gate_refuses_with_one_line_and_writes_nothing(tmp_path, marts, options, message):
    settings = settings_for(tmp_path)
    synthetic_warehouse(settings.warehouse, **marts)
    with pytest.raises(SegmartError, match=message) as error:
        train(settings, options)
    assert "\n" not in str(error.value)
    _assert_nothing_written(settings)


def test_a_missing_training_table_says_to_run_build(tmp_path):
    settings = settings_for(tmp_path)
    write_warehouse(settings.warehouse, {"core.customers": pa.table({"customer_id": ["a"]})})
    with pytest.raises(SegmartError, match=r"ml\.training_examples is missing.*segmart build"):
        train(settings, FAST)
    _assert_nothing_written(settings)


def test_training_examples_built_for_another_horizon_are_refused(tmp_path):
    settings = replace(settings_for(tmp_path), horizon_days=60)
    synthetic_warehouse(settings.warehouse)
    with pytest.raises(SegmartError, match="90-day horizon, not 60: rebuild"):
        train(settings, FAST)
    _assert_nothing_written(settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    settings = settings_for(tmp_path_factory.mktemp("training"))
    synthetic_warehouse(settings.warehouse)
    lines: list[str] = []
    return (
        settings,
        train(settings, replace(FAST, algorithm="hist_gradient_boosting"), lines.append),
        lines,
    )


def test_training_saves_the_model_and_appends_a_run_row(trained):
    settings, report, lines = trained
    assert (settings.models_dir / report.model_id / "model.skops").is_file()
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        runs = con.sql(f"select * from {MODEL_RUNS_TABLE}").fetchdf()
    assert runs["model_id"].tolist() == [report.model_id]
    assert runs.loc[0, "roc_auc"] == pytest.approx(report.metrics["roc_auc"])
    assert runs.loc[0, "artifact_sha256"] == report.metadata.artifact_sha256
    # Three synthetic snapshots 30 days apart leave no 90-day backtest window: said, not faked.
    assert report.revenue.backtest.windows == ()
    assert "0 of 3 windows" in report.revenue.backtest.notes[0]
    assert runs.loc[0, ["backtest_roc_auc", "value_models_note"]].isna().all()
    assert any(line.startswith("fitting 3 hist_gradient_boosting candidates") for line in lines)


def test_the_report_times_every_step_the_progress_lines_announce(trained):
    settings, report, lines = trained
    steps = report.step_seconds
    announced = [line for line in lines if not line.startswith(("warning:", "leaving out "))]
    assert list(steps) == announced[: len(steps)] and len(steps) >= 6
    assert all(seconds >= 0 for seconds in steps.values())
    # The steps cover the run up to saving: their sum is the run's time, give or take the
    # untimed saving step.
    assert sum(steps.values()) == pytest.approx(report.elapsed_seconds, rel=0.05)
    assert "## Time per step (wall seconds)" in report.to_markdown()
    saved = json.loads((settings.models_dir / report.model_id / "metadata.json").read_text())
    assert saved["extra"]["step_seconds"] == pytest.approx(steps)


def test_metadata_records_what_the_model_was_trained_on(trained):
    _, report, _ = trained
    meta = report.metadata
    assert meta.as_of == "2025-10-01" and meta.horizon_days == 90
    assert meta.snapshots == ("2025-05-04", "2025-06-03", "2025-07-03")
    assert meta.validation_snapshot == "2025-07-03"
    assert meta.feature_stats_id == "stats-abc123"
    assert meta.column_dtypes["is_marketing_opt_in"] == "INTEGER"
    assert len(meta.training_data_sha256) == 64
    assert {"scikit-learn", "duckdb", "skops"} <= set(meta.library_versions)
    assert meta.n_training_rows == 2_400 and 300 < meta.n_validation_rows < 500


def test_the_report_compares_the_model_with_every_baseline(trained):
    _, report, _ = trained
    text = report.to_markdown()
    for name in ("recency", "frequency", "bought_last_horizon"):
        assert f"| baseline: {name} |" in text
    assert "ROC-AUC margin over the best baseline" in text
    assert "## Segments" in text and "## Top features" in text
    assert report.margins["bought_last_horizon"] > 0


def test_metadata_and_report_name_one_hot_inputs_by_the_level_learned_in_their_slot(trained):
    _, report, _ = trained
    levels = report.metadata.one_hot_levels
    assert levels["region__level_2"] == "île-de-france"
    assert "region__level_7" not in levels  # an empty slot has no level
    named = set(report.feature_selection["feature"])
    assert "region is île-de-france" in named
    assert not any(name.startswith("region__level_") for name in named if name in levels)


def test_inputs_that_overlap_the_scoring_snapshot_are_all_kept(trained):
    _, report, _ = trained
    assert report.metadata.dropped_inputs == {}
    assert "tenure_days__scaled" in report.metadata.feature_columns
    assert "Nothing was left out" in report.to_markdown()


@pytest.fixture(scope="module")
def one_cohort(tmp_path_factory):
    settings = settings_for(tmp_path_factory.mktemp("one_cohort"))
    synthetic_warehouse(settings.warehouse, one_cohort=True)
    lines: list[str] = []
    return settings, train(settings, FAST, lines.append), lines


def test_on_a_one_cohort_shop_tenure_is_left_out_before_fitting_and_reported(one_cohort):
    _, report, lines = one_cohort
    meta = report.metadata
    assert list(meta.dropped_inputs) == ["tenure_days__scaled"]
    assert "100% of scoring rows" in meta.dropped_inputs["tenure_days__scaled"]
    assert "tenure_days__scaled" not in meta.feature_columns
    assert len(meta.feature_columns) == 26 + 16 + 3 * 9 + 1 - 1
    text = report.to_markdown()
    assert "## Inputs left out before fitting" in text
    assert "left out `tenure_days__scaled`: PSI" in text
    assert any(line.startswith("leaving out tenure_days__scaled") for line in lines)


def test_a_model_without_a_left_out_input_still_scores_the_full_mart(one_cohort, tmp_path):
    settings, _, _ = one_cohort
    shutil.copy(settings.warehouse, tmp_path / "warehouse.duckdb")
    settings = replace(settings, warehouse=tmp_path / "warehouse.duckdb")
    scored = score(settings, n_threads=1)
    assert scored.n_customers == 800
    assert "tenure_days__scaled" not in set(scored.drift["feature"])


def test_the_training_sample_keeps_or_drops_whole_customers(tmp_path):
    settings = settings_for(tmp_path)
    training, features = synthetic_marts(n_customers=800, n_snapshots=3)
    write_warehouse(
        settings.warehouse, {"ml.training_examples": training, "ml.customer_features": features}
    )
    report = train(settings, replace(FAST, max_training_rows=1_800))
    rows = report.metadata.n_training_rows
    assert 1_200 < rows < 2_400
    assert rows % 3 == 0  # every kept customer brings all three snapshots
    again = train(settings, replace(FAST, max_training_rows=1_800))
    assert again.metadata.training_data_sha256 == report.metadata.training_data_sha256
    assert again.model_id != report.model_id
    assert np.isclose(again.metrics["roc_auc"], report.metrics["roc_auc"])


def test_bg_nbd_is_a_baseline_fitted_on_history_before_the_validation_snapshot(trained):
    _, report, _ = trained
    meta = report.metadata
    value = meta.extra["value_models"]
    assert value["validation"]["snapshot_on"] == meta.validation_snapshot == "2025-07-03"
    assert value["as_of"]["snapshot_on"] == "2025-10-01"
    assert value["as_of"]["bg_nbd_fitted"] and value["as_of"]["gamma_gamma_fitted"]
    # The synthetic labels do not come from the purchase process (test_customer_value checks
    # the ranking on data that does): here only that it is evaluated.
    assert 0.0 < meta.baselines["bg_nbd"]["roc_auc"] < report.metrics["roc_auc"]
    assert set(meta.baselines["bg_nbd"]) == {
        "roc_auc",
        "pr_auc",
        "lift_top_decile",
        "capture_top_decile",
    }
    text = report.to_markdown()
    assert "| baseline: bg_nbd |" in text and "| baseline: bg_nbd_probability_alive |" in text
    assert "## Customer value (BG/NBD and Gamma-Gamma)" in text
    totals = value["revenue_totals"]
    assert totals["predicted_revenue"] > 0 and totals["realised_revenue"] > 0
    assert "calibration of totals on the validation customers" in text


def test_too_few_repeat_buyers_leave_bg_nbd_not_fitted_with_a_warning(tmp_path):
    settings = settings_for(tmp_path)
    synthetic_warehouse(settings.warehouse, repeat_rate=0.0)
    lines: list[str] = []
    report = train(settings, FAST, lines.append)
    cause = "BG/NBD needs at least 30 customers with a repeat purchase, the data has 0"
    assert f"warning: BG/NBD not fitted at the validation snapshot 2025-07-03: {cause}" in lines
    assert f"warning: BG/NBD not fitted at the as_of snapshot 2025-10-01: {cause}" in lines
    assert "bg_nbd" not in report.metadata.baselines
    assert f"| baseline: bg_nbd (not fitted: {cause}) | — |" in report.to_markdown()
    assert report.metadata.extra["value_models"]["as_of"]["reason"] == cause
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        (note,) = con.execute(f"select value_models_note from {MODEL_RUNS_TABLE}").fetchone()
    assert note == f"value models as of 2025-10-01: {cause}"


def test_a_shop_without_order_amounts_trains_without_a_spend_model_and_says_why(tmp_path):
    settings = settings_for(tmp_path)
    training, features = synthetic_marts(n_snapshots=4)
    no_amounts = pa.nulls(training.num_rows, pa.float64())
    training = training.set_column(
        training.column_names.index("revenue_in_horizon"), "revenue_in_horizon", no_amounts
    )
    write_warehouse(
        settings.warehouse, {"ml.training_examples": training, "ml.customer_features": features}
    )
    lines: list[str] = []
    report = train(settings, FAST, lines.append)
    cause = "0 training rows have a positive revenue in the horizon; a spend model needs at least"
    assert any(
        line.startswith("warning: predicted_revenue and predicted_clv are null: " + cause)
        for line in lines
    ), lines
    assert report.revenue.spend is None
    # The purchase model and its backtest do not depend on revenue.
    assert report.revenue.backtest.windows[0].purchase["model"]["roc_auc"] > 0.6
    assert report.revenue.backtest.windows[0].revenue == {}
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        (note, capture) = con.execute(
            f"select value_models_note, backtest_revenue_capture from {MODEL_RUNS_TABLE}"
        ).fetchone()
    assert note.startswith("value models as of") and "spend model: 0 training rows" in note
    assert capture is None
    score(settings, n_threads=1)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        counts = con.execute(
            "select count(*), count(purchase_probability), count(predicted_revenue)"
            " from predictions.customer_scores"
        ).fetchone()
    assert counts[0] == counts[1] > 0 and counts[2] == 0


def test_a_warehouse_without_value_inputs_trains_and_says_to_rebuild(tmp_path):
    settings = settings_for(tmp_path)
    training, features = synthetic_marts()
    write_warehouse(
        settings.warehouse, {"ml.training_examples": training, "ml.customer_features": features}
    )
    lines: list[str] = []
    report = train(settings, FAST, lines.append)
    assert any(
        line.startswith("warning: BG/NBD not fitted")
        and "ml.customer_value_inputs is missing: rebuild with `segmart build`" in line
        for line in lines
    )
    assert "bg_nbd" not in report.metadata.baselines
