import shutil
from dataclasses import replace

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ml import warehouse
from ml.errors import SegmartError
from ml.modelling.evaluate import rank_order
from ml.modelling.features import model_matrix
from ml.modelling.training import TrainOptions, train
from ml.registry import load_model
from ml.serving import scoring
from ml.serving.compatibility import scorer_columns
from ml.serving.scoring import (
    DRIFT_TABLE,
    HISTORY_TABLE,
    PROFILES_TABLE,
    SCORES_TABLE,
    score,
)
from tests.ml.synthetic import (
    settings_for,
    single_threaded,  # noqa: F401 - autouse fixture
    synthetic_marts,
    synthetic_warehouse,
    table_names,
    write_warehouse,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    settings = settings_for(tmp_path_factory.mktemp("scoring"))
    synthetic_warehouse(settings.warehouse)
    train(settings, TrainOptions(algorithm="logistic_regression", n_segments=3, n_threads=1))
    return settings


@pytest.fixture
def settings(trained, tmp_path):
    """The trained model with a private copy of the warehouse to score into."""
    shutil.copy(trained.warehouse, tmp_path / "warehouse.duckdb")
    return replace(trained, warehouse=tmp_path / "warehouse.duckdb")


def _read(settings, table: str):
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.sql(f"select * from {table} order by all").fetchdf()


def _replace_features(settings, change) -> None:
    _, features = synthetic_marts()
    write_warehouse(settings.warehouse, {"ml.customer_features": change(features)})


def test_every_customer_gets_a_probability_decile_segment_and_three_reasons(settings):
    report = score(settings, n_threads=1)
    scores = _read(settings, SCORES_TABLE)
    assert len(scores) == report.n_customers == 800
    assert scores["customer_id"].is_unique
    assert scores[["segment_name", "reason_1", "reason_2", "reason_3"]].notna().all().all()
    # Decile 1 is the highest tenth, ties broken by customer_id.
    order = rank_order(scores["purchase_probability"].to_numpy(), scores["customer_id"].to_numpy())
    expected = np.empty(len(scores), int)
    expected[order] = np.arange(len(scores)) * 10 // len(scores) + 1
    np.testing.assert_array_equal(scores["propensity_decile"].to_numpy(), expected)
    profiles = _read(settings, PROFILES_TABLE)
    assert profiles["n_customers"].sum() == 800
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert set(profiles["segment_name"]) == set(scores["segment_name"])
    drift = _read(settings, DRIFT_TABLE)
    assert len(drift) == 70 and set(drift.columns) >= {"feature", "psi", "is_drifted", "model_id"}


def test_neither_batch_size_nor_row_order_changes_the_output(settings, tmp_path):
    score(settings, n_threads=1)
    other = replace(settings, warehouse=tmp_path / "other.duckdb")
    shutil.copy(settings.warehouse, other.warehouse)
    # The mart stored in reverse: every batch of 64 holds other customers than before, and
    # two batches are scored at once.
    _replace_features(other, lambda features: features.take(np.arange(features.num_rows)[::-1]))
    score(other, batch_size=64, n_threads=2)
    for table in (SCORES_TABLE, PROFILES_TABLE, DRIFT_TABLE):
        assert _read(settings, table).equals(_read(other, table)), table


def _assert_refused(settings, match: str) -> str:
    with pytest.raises(SegmartError, match=match) as error:
        score(settings, n_threads=1)
    assert "\n" not in str(error.value)
    assert not {SCORES_TABLE, PROFILES_TABLE, DRIFT_TABLE} & table_names(settings.warehouse)
    return str(error.value)


def test_a_mart_missing_a_column_is_refused_with_the_difference_and_the_fix(settings):
    _replace_features(settings, lambda t: t.drop_columns(["n_orders__scaled"]))
    message = _assert_refused(settings, r"missing columns \['n_orders__scaled'\]")
    assert "segmart build --stats-as-of 2025-10-01" in message


def test_a_mart_with_a_changed_type_or_a_new_input_is_refused(settings):
    def change(table: pa.Table) -> pa.Table:
        position = table.column_names.index("is_marketing_opt_in")
        opt_in = table.column(position).cast(pa.float64())
        table = table.set_column(position, "is_marketing_opt_in", opt_in)
        return table.append_column("loyalty_points__scaled", pa.array(np.zeros(len(table))))

    _replace_features(settings, change)
    message = _assert_refused(
        settings, r"changed types \['is_marketing_opt_in INTEGER -> DOUBLE'\]"
    )
    assert "input columns the model never saw ['loyalty_points__scaled']" in message


def test_a_mart_preprocessed_with_other_feature_stats_is_refused(settings):
    _, features = synthetic_marts(stats_id="stats-other")
    write_warehouse(settings.warehouse, {"ml.customer_features": features})
    message = _assert_refused(settings, "preprocessed with feature stats stats-other")
    assert "trained with stats-abc123 fitted as of 2025-10-01" in message
    assert "`segmart build --stats-as-of 2025-10-01`" in message


def test_an_empty_mart_is_refused(settings):
    _replace_features(settings, lambda t: t.slice(0, 0))
    _assert_refused(settings, "ml.customer_features is empty")


def test_a_write_that_fails_midway_leaves_the_previous_tables_intact(settings, monkeypatch):
    score(settings, n_threads=1)
    before = {
        table: _read(settings, table) for table in (SCORES_TABLE, DRIFT_TABLE, HISTORY_TABLE)
    }
    real_replace = warehouse.replace_tables

    def fail_on_the_last_table(con, tables, slices=()):
        schema = pa.schema([("feature", pa.string())])

        def broken():
            raise OSError("disk full")
            yield  # pragma: no cover

        tables = {**tables, DRIFT_TABLE: pa.RecordBatchReader.from_batches(schema, broken())}
        return real_replace(con, tables, slices)

    _replace_features(settings, lambda t: t.slice(0, 100))
    monkeypatch.setattr(warehouse, "replace_tables", fail_on_the_last_table)
    with pytest.raises(Exception, match="disk full"):
        score(settings, n_threads=1)
    for table, rows in before.items():
        assert _read(settings, table).equals(rows)


def test_a_history_write_that_fails_leaves_the_scores_and_the_history_as_they_were(
    settings, monkeypatch
):
    score(settings, n_threads=1)
    before = {table: _read(settings, table) for table in (SCORES_TABLE, HISTORY_TABLE)}
    _replace_features(settings, lambda t: t.slice(0, 100))
    monkeypatch.setattr(scoring, "_HISTORY_SQL", "select * from predictions.no_such_table")
    with pytest.raises(duckdb.CatalogException):
        score(settings, n_threads=1)
    for table, rows in before.items():
        assert _read(settings, table).equals(rows)


def test_rescoring_replaces_the_run_in_the_history_and_another_as_of_adds_one(settings):
    score(settings, n_threads=1)
    score(settings, n_threads=1)
    history = _read(settings, HISTORY_TABLE)
    scores = _read(settings, SCORES_TABLE)
    assert len(history) == len(scores) and history["scored_at"].nunique() == 1
    columns = ["customer_id", "as_of", "model_id", "purchase_probability", "segment_id"]
    assert history[columns].equals(scores[columns])
    with duckdb.connect(str(settings.warehouse)) as con:
        # Another run's rows (an earlier as_of) stay when this run is scored again.
        con.execute(
            f"insert into {HISTORY_TABLE} select * replace (as_of - 30 as as_of)"
            f" from {HISTORY_TABLE}"
        )
    score(settings, n_threads=1)
    assert len(_read(settings, HISTORY_TABLE)) == 2 * len(scores)


def test_a_drifted_feature_is_reported_with_a_warning_line(settings):
    def shift(table: pa.Table) -> pa.Table:
        position = table.column_names.index("tenure_days__scaled")
        return table.set_column(
            position, "tenure_days__scaled", pc.add(table.column(position), 3.0)
        )

    _replace_features(settings, shift)
    lines: list[str] = []
    report = score(settings, progress=lines.append, n_threads=1)
    assert report.drifted_features == ["tenure_days__scaled"]
    assert any(line.startswith("warning: feature tenure_days__scaled drifted") for line in lines)
    assert "## Feature drift" in report.to_markdown()


def test_scores_carry_predicted_revenue_for_everyone_and_bg_nbd_for_buyers(settings):
    report = score(settings, n_threads=1)
    scores = _read(settings, SCORES_TABLE)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        bought = set(
            row[0]
            for row in con.execute(
                "select customer_id from ml.customer_value_inputs"
                " where snapshot_on = date '2025-10-01' and has_purchased"
            ).fetchall()
        )
    has = scores["customer_id"].isin(bought)
    assert has.any() and (~has).any()
    # BG/NBD describes customers from their first purchase on...
    bg_nbd = ["expected_orders", "probability_alive"]
    assert scores.loc[has, bg_nbd].notna().all().all()
    assert scores.loc[~has, bg_nbd].isna().all().all()
    # ...while the spend model and the CLV ratio of a new customer cover everyone.
    revenue = ["predicted_revenue", "predicted_revenue_decile", "predicted_clv"]
    assert scores[revenue].notna().all().all()
    assert (scores["predicted_clv"] >= scores["predicted_revenue"]).all()
    model = load_model(settings.models_dir)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        features = con.sql("select * from ml.customer_features order by customer_id")
        features = features.to_arrow_table()
    frame = model_matrix(features, scorer_columns(model.metadata))
    spend = model.spend.predict(frame)
    by_id = scores.sort_values("customer_id").reset_index(drop=True)
    np.testing.assert_allclose(
        by_id["predicted_revenue"], by_id["purchase_probability"] * spend, rtol=1e-12
    )
    # Revenue decile 1 is the highest tenth.
    order = rank_order(scores["predicted_revenue"].to_numpy(), scores["customer_id"].to_numpy())
    expected = np.empty(len(scores), int)
    # SQL's ntile: the first (n mod 10) deciles hold one customer more.
    sizes = [len(part) for part in np.array_split(np.arange(len(scores)), 10)]
    expected[order] = np.repeat(np.arange(1, 11), sizes)
    np.testing.assert_array_equal(scores["predicted_revenue_decile"].to_numpy(), expected)
    assert not any("are null" in warning for warning in report.warnings)


def test_value_columns_are_null_with_the_reason_when_bg_nbd_was_not_fitted(tmp_path):
    settings = settings_for(tmp_path)
    synthetic_warehouse(settings.warehouse, repeat_rate=0.0)
    train(settings, TrainOptions(algorithm="logistic_regression", n_segments=3, n_threads=1))
    lines: list[str] = []
    report = score(settings, progress=lines.append, n_threads=1)
    scores = _read(settings, SCORES_TABLE)
    assert scores[["expected_orders", "probability_alive", "predicted_clv"]].isna().all().all()
    # Purchase probability and predicted revenue do not depend on BG/NBD.
    assert scores[["purchase_probability", "predicted_revenue"]].notna().all().all()
    cause = "BG/NBD needs at least 30 customers with a repeat purchase, the data has 0"
    warning = (
        "expected_orders, probability_alive and predicted_clv are null: BG/NBD could not be"
        f" fitted as of 2025-10-01 ({cause})"
    )
    assert warning in report.warnings and f"warning: {warning}" in lines
