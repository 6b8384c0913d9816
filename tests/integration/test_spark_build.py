"""The same dbt project on Spark: the `warehouse` selector built on DuckDB and on a local Spark
session (dbt-spark, `method: session`) from the same raw files gives the same tables.

Spark runs dbt in a subprocess from a scratch directory: the session keeps a Derby metastore
and its tables there (SEGMART_SPARK_DIR), and Derby admits one process at a time. The Spark
tables are Parquet files under spark-warehouse/, read here with pyarrow: no second JVM but
one, for `segmart import-spark` at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from click.testing import Result

from ml.config import DBT_PROJECT_DIR, PROFILES_DIR, Settings
from ml.run.build import run_dbt
from tests.conftest import AS_OF, HORIZON_DAYS, make_settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("spark"),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (apt openjdk-17)"),
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None, reason="needs the spark extra (pyspark)"
    ),
]

N_CUSTOMERS = 300
SEED = 7
# Data tests are left out of both builds: on a local session each costs about a second.
WITHOUT_TESTS = "--exclude-resource-type unit_test --exclude-resource-type test"
BUILD = f"build --selector warehouse {WITHOUT_TESTS}"
# On Spark the same, then scoring with the champion's SQL: one session, one landing.
SPARK_BUILD = f"build --selector spark {WITHOUT_TESTS}"
DBT_VARS = f'{{"as_of": "{AS_OF.isoformat()}", "horizon_days": {HORIZON_DAYS}}}'
COUNTED_TABLES = (
    "staging.base_shop__customer_ids",
    "staging.stg_shop__customers",
    "staging.stg_shop__customer_versions",
    "staging.stg_shop__orders",
    "staging.stg_shop__order_items",
    "staging.stg_shop__products",
    "staging.stg_shop__web_events",
    "staging.stg_shop__campaign_touches",
    "core.customers",
    "core.orders",
    "core.quarantined_rows",
    "core.quarantined_values",
    "core.data_reconciliation",
)
FEATURE_MARTS = {
    "ml.customer_features": ["customer_id"],
    "ml.training_examples": ["customer_id", "snapshot_on"],
}
# A hash over the statistics' text: DuckDB and Java print doubles differently.
ENGINE_SPECIFIC_COLUMNS = {"feature_stats_id"}
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated shop as CSV, dirt included (malformed lines, bad values, copies)."""
    from scripts.generate import generate

    out = tmp_path_factory.mktemp("spark_shop")
    generate(N_CUSTOMERS, SEED, out, "csv")
    return out / "raw"


@pytest.fixture(scope="module")
def duckdb_warehouse(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark_duckdb")
    settings = make_settings(raw_dir, root / "segmart.duckdb", root)
    run_dbt(settings, BUILD)
    return settings.warehouse


@pytest.fixture(scope="module")
def spark_warehouse(
    raw_dir: Path, duckdb_champion: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Build on Spark, scoring with the DuckDB build's champion in SQL; returns the
    spark-warehouse directory of its tables."""
    root = tmp_path_factory.mktemp("spark_session")
    env = os.environ | {
        "SEGMART_RAW_DIR": str(raw_dir),
        "SEGMART_SPARK_DIR": str(root),
        "SEGMART_MODELS_DIR": str(duckdb_champion.models_dir),
        "DBT_TARGET_PATH": str(root / "target"),
    }
    dbt = Path(sys.executable).with_name("dbt")
    command = [
        str(dbt),
        *SPARK_BUILD.split(),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(PROFILES_DIR),
        "--target",
        "spark",
        "--vars",
        DBT_VARS,
        "--log-path",
        str(root / "logs"),
    ]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, _dbt_failures(done.stdout)
    return root / "spark-warehouse"


def _dbt_failures(stdout: str) -> str:
    """dbt's summary of what failed, without Spark's Java stack traces."""
    lines = [line for line in stdout.splitlines() if not line.lstrip().startswith("at ")]
    return "\n".join(lines[-80:])


def read_duckdb(warehouse: Path, table: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(f"select * from {table}").df()


def read_spark(spark_dir: Path, table: str) -> pd.DataFrame:
    schema, name = table.split(".")
    table_dir = spark_dir / f"{schema}.db" / name
    return ds.dataset(table_dir, partitioning="hive").to_table().to_pandas()


@pytest.mark.parametrize("table", COUNTED_TABLES)
def test_staging_and_core_tables_have_the_same_rows(
    duckdb_warehouse: Path, spark_warehouse: Path, table: str
) -> None:
    assert len(read_spark(spark_warehouse, table)) == len(read_duckdb(duckdb_warehouse, table))


def quarantine_counts(rows: pd.DataFrame) -> dict[tuple[str, str], int]:
    grouped = rows.groupby(["source_table", "rule"])["n_raw_lines"].sum()
    return {key: int(value) for key, value in grouped.items()}


def test_quarantine_counts_by_reason_match(duckdb_warehouse: Path, spark_warehouse: Path) -> None:
    on_duckdb = quarantine_counts(read_duckdb(duckdb_warehouse, "core.quarantined_rows"))
    on_spark = quarantine_counts(read_spark(spark_warehouse, "core.quarantined_rows"))
    assert on_duckdb, "the generated shop has dirt: something must be quarantined"
    assert on_spark == on_duckdb


def test_every_raw_table_reconciles_on_spark(spark_warehouse: Path) -> None:
    reconciliation = read_spark(spark_warehouse, "core.data_reconciliation")
    assert len(reconciliation) == 6
    assert reconciliation["is_reconciled"].all(), reconciliation.to_string()


def comparable(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sorted by the grain, dates as dates, engine-specific columns left out."""
    frame = frame.drop(columns=[c for c in frame.columns if c in ENGINE_SPECIFIC_COLUMNS])
    for column in frame.columns:
        if column.endswith(("_on", "as_of")) or column == "feature_stats_fitted_as_of":
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame.sort_values(keys).reset_index(drop=True)


def mismatched_columns(on_duckdb: pd.DataFrame, on_spark: pd.DataFrame) -> list[str]:
    """Columns whose values differ: numbers beyond TOLERANCE, anything else at all."""
    mismatched = []
    for column in on_duckdb.columns:
        left, right = on_duckdb[column], on_spark[column]
        if pd.api.types.is_numeric_dtype(left) and not pd.api.types.is_bool_dtype(left):
            same = np.allclose(
                left.to_numpy(float), right.to_numpy(float), rtol=0, atol=TOLERANCE, equal_nan=True
            )
        else:
            same = left.astype(object).tolist() == right.astype(object).tolist()
        if not same:
            mismatched.append(column)
    return mismatched


@pytest.mark.parametrize("mart", sorted(FEATURE_MARTS))
def test_feature_marts_are_equal(duckdb_warehouse: Path, spark_warehouse: Path, mart: str) -> None:
    keys = FEATURE_MARTS[mart]
    on_duckdb = comparable(read_duckdb(duckdb_warehouse, mart), keys)
    on_spark = comparable(read_spark(spark_warehouse, mart), keys)
    assert list(on_spark.columns) == list(on_duckdb.columns)
    assert len(on_duckdb) > 0
    assert len(on_spark) == len(on_duckdb)
    assert mismatched_columns(on_duckdb, on_spark) == []


# --- Scoring in SQL on Spark: the champion trained on the DuckDB build, scored by both engines ---


@pytest.fixture(scope="module")
def duckdb_champion(
    raw_dir: Path, duckdb_warehouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A copy of the DuckDB build with a promoted default model and `segmart score`'s scores."""
    from ml import promotion, registry
    from ml.modelling.training import TrainOptions, train
    from ml.serving.scoring import score

    root = tmp_path_factory.mktemp("spark_champion")
    shutil.copy(duckdb_warehouse, root / "segmart.duckdb")
    settings = make_settings(raw_dir, root / "segmart.duckdb", root)
    # The shop is too small for training's guard (100 buyers and non-buyers per half): the
    # model need not be good here, only the same on both engines.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("ml.modelling.examples.MIN_EXAMPLES_PER_CLASS", 20)
        trained = train(settings, TrainOptions(n_threads=1))
    promotion.promote(settings, trained.metadata.model_id, "test: scored on both engines")
    score(settings, registry.CHAMPION)
    return settings


@pytest.fixture(scope="module")
def spark_sql_scores(spark_warehouse: Path) -> pd.DataFrame:
    """customer_scores_sql as the Spark build scored it with the DuckDB build's champion."""
    return read_spark(spark_warehouse, "predictions.customer_scores_sql")


def _scored_in_duckdb(settings: Settings, features: pd.DataFrame) -> pd.DataFrame:
    """The champion's scoring SQL run by DuckDB over `features`."""
    from ml import registry
    from ml.serving.sql_export import scoring_sql

    model = registry.load_model(settings.models_dir, registry.CHAMPION)
    with duckdb.connect() as connection:
        connection.register("features", features)
        return connection.sql(scoring_sql(model, "features")).df()


def test_spark_computes_the_scoring_sql_as_duckdb_does(
    duckdb_champion: Settings, spark_warehouse: Path, spark_sql_scores: pd.DataFrame
) -> None:
    """On the same rows (Spark's champion_features) the two engines' arithmetic agrees."""
    spark_features = read_spark(spark_warehouse, "predictions.champion_features")
    in_duckdb = _scored_in_duckdb(duckdb_champion, spark_features)
    joined = in_duckdb.merge(spark_sql_scores, on="customer_id", suffixes=("", "_spark"))
    assert len(joined) == len(spark_sql_scores) == len(spark_features) > 0
    difference = (joined["purchase_probability"] - joined["purchase_probability_spark"]).abs()
    assert difference.max() <= 1e-6
    for column in ("segment_id", "propensity_decile"):
        assert joined[column].tolist() == joined[f"{column}_spark"].tolist(), column


def test_spark_sql_scores_match_duckdbs_python_scores_but_on_split_ties(
    duckdb_champion: Settings, spark_warehouse: Path, spark_sql_scores: pd.DataFrame
) -> None:
    """Against `segmart score` on DuckDB: the same segments, and the same probabilities except
    where a model input differs in its last bits between the engines (features agree within
    1e-9, not bit for bit) and lies on a tree's threshold, so the row takes the other branch."""
    from ml import registry

    on_duckdb = read_duckdb(duckdb_champion.warehouse, "predictions.customer_scores")
    joined = on_duckdb.merge(
        spark_sql_scores, on="customer_id", suffixes=("", "_spark"), validate="1:1"
    )
    assert len(joined) == len(on_duckdb) == len(spark_sql_scores) > 0
    for column in ("segment_id", "segment_name", "model_id"):
        assert joined[column].tolist() == joined[f"{column}_spark"].tolist(), column
    difference = (joined["purchase_probability"] - joined["purchase_probability_spark"]).abs()
    # On the test shop: 1 of 272 customers (an input 1.3e-15 apart, the threshold between).
    differing = set(joined.loc[difference > 1e-6, "customer_id"])
    assert len(differing) <= 0.01 * len(joined)
    model = registry.load_model(duckdb_champion.models_dir, registry.CHAMPION)
    on_a_split = _customers_across_a_split(
        read_duckdb(duckdb_champion.warehouse, "ml.customer_features"),
        read_spark(spark_warehouse, "predictions.champion_features"),
        _split_thresholds(model.propensity.estimator, list(model.propensity.feature_columns)),
    )
    assert differing <= on_a_split


def _split_thresholds(estimator: object, columns: list[str]) -> dict[str, set[float]]:
    """Every threshold of every tree of the (calibrated, cross-fitted) booster, by input."""
    thresholds: dict[str, set[float]] = {}
    pending = [estimator]
    while pending:
        current = pending.pop()
        if hasattr(current, "_predictors"):
            for (tree,) in current._predictors:
                for node in tree.nodes[~tree.nodes["is_leaf"].astype(bool)]:
                    column = columns[int(node["feature_idx"])]
                    thresholds.setdefault(column, set()).add(float(node["num_threshold"]))
        for attribute in ("estimator", "estimators_", "calibrated_classifiers_"):
            found = getattr(current, attribute, None)
            pending.extend(found if isinstance(found, list) else [found] if found else [])
    return thresholds


def _customers_across_a_split(
    on_duckdb: pd.DataFrame, on_spark: pd.DataFrame, thresholds: dict[str, set[float]]
) -> set[str]:
    """Customers with an input on different sides of a threshold on the two engines."""
    on_duckdb, on_spark = (f.set_index("customer_id") for f in (on_duckdb, on_spark))
    on_spark = on_spark.loc[on_duckdb.index]
    across = pd.Series(False, index=on_duckdb.index)
    for column, values in thresholds.items():
        left, right = on_duckdb[column].astype(float), on_spark[column].astype(float)
        for threshold in values:
            across |= (left <= threshold) != (right <= threshold)
    return set(across.index[across])


# --- Marketing marts on Spark: the same SQL as on DuckDB, over the SQL scores ---

# The grain of each marketing mart; every mart of the `marketing` selector is compared.
MARKETING_MARTS = {
    "marketing.rfm_scores": ["customer_id"],
    "marketing.audience_candidates": ["customer_id", "audience"],
    "marketing.campaign_audiences": ["customer_id", "audience"],
    "marketing.customer_recommendations": ["customer_id", "rank"],
    "marketing.audience_summary": ["audience"],
    "marketing.segment_summary": ["segment_id"],
    "marketing.rfm_group_summary": ["rfm_group"],
    "marketing.lifecycle_summary": ["lifecycle_stage"],
    "marketing.campaign_results": ["campaign_id"],
    "marketing.audience_lift": ["campaign_key"],
    "marketing.segment_membership_history": ["as_of", "model_id", "segment_id"],
    "marketing.segment_transitions": ["from_as_of", "from_segment_id", "to_segment_id"],
}
# The DuckDB side's segment_profiles and score history are Python's: a description the SQL
# profiles have not, the run's time and predicted revenue.
NOT_COMPARED_WITH_PYTHON = {"description", "scored_at", "predicted_revenue"}


@pytest.fixture(scope="module")
def duckdb_marketing(
    raw_dir: Path,
    duckdb_champion: Settings,
    spark_warehouse: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The marketing marts built on DuckDB over the Spark build's customer_scores (the SQL
    scores, without reasons and value columns): both engines' marketing SQL reads one input."""
    root = tmp_path_factory.mktemp("spark_marketing_on_duckdb")
    shutil.copy(duckdb_champion.warehouse, root / "segmart.duckdb")
    settings = make_settings(raw_dir, root / "segmart.duckdb", root)
    table_dir = spark_warehouse / "predictions.db" / "customer_scores"
    spark_scores = ds.dataset(table_dir).to_table()
    with duckdb.connect(str(settings.warehouse)) as connection:
        connection.register("spark_scores", spark_scores)
        connection.execute(
            "create or replace table predictions.customer_scores as select * from spark_scores"
        )
    run_dbt(settings, f"build --selector marketing {WITHOUT_TESTS}")
    return settings.warehouse


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as naive UTC and missing values as None: the two readers' spellings."""
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


@pytest.mark.parametrize("mart", sorted(MARKETING_MARTS))
def test_marketing_marts_on_spark_equal_duckdbs_on_the_same_scores(
    duckdb_marketing: Path, spark_warehouse: Path, mart: str
) -> None:
    keys = MARKETING_MARTS[mart]
    on_duckdb = _plain(comparable(read_duckdb(duckdb_marketing, mart), keys))
    on_spark = _plain(comparable(read_spark(spark_warehouse, mart), keys))
    assert list(on_spark.columns) == list(on_duckdb.columns)
    assert len(on_spark) == len(on_duckdb)
    compared = [c for c in on_duckdb.columns if c not in NOT_COMPARED_WITH_PYTHON]
    assert mismatched_columns(on_duckdb[compared], on_spark[compared]) == []


def test_the_marketing_comparison_covers_selections_and_rfm_groups(spark_warehouse: Path) -> None:
    """The shop is big enough for the comparison to mean something: audiences select
    customers, every RFM group (the one spelled with a quote too) has members."""
    audiences = read_spark(spark_warehouse, "marketing.campaign_audiences")
    assert len(audiences) > 0 and audiences["is_control"].any()
    groups = set(read_spark(spark_warehouse, "marketing.rfm_scores")["rfm_group"])
    assert "Can't lose them" in groups and len(groups) == 12


def test_spark_customer_scores_have_python_columns_reasons_and_values_null(
    duckdb_champion: Settings, spark_warehouse: Path, spark_sql_scores: pd.DataFrame
) -> None:
    on_spark = read_spark(spark_warehouse, "predictions.customer_scores")
    on_duckdb = read_duckdb(duckdb_champion.warehouse, "predictions.customer_scores")
    assert list(on_spark.columns) == list(on_duckdb.columns)
    scored_in_sql = list(spark_sql_scores.columns)
    by_customer = ["customer_id"]
    assert comparable(on_spark[scored_in_sql], by_customer).equals(
        comparable(spark_sql_scores, by_customer)
    )
    python_only = [c for c in on_duckdb.columns if c not in scored_in_sql]
    assert on_spark[python_only].isna().all().all()
    assert on_duckdb[python_only].notna().any().all()


def test_spark_segment_profiles_equal_pythons(
    duckdb_champion: Settings, spark_warehouse: Path
) -> None:
    """The SQL profiles against `segmart score`'s: the same sums; the mean probability only
    within 1e-3, as a customer across a split scores differently (see above)."""
    profiles = "predictions.segment_profiles"
    on_duckdb = comparable(read_duckdb(duckdb_champion.warehouse, profiles), ["segment_id"])
    on_spark = comparable(read_spark(spark_warehouse, profiles), ["segment_id"])
    assert list(on_spark.columns) == list(on_duckdb.columns)
    assert on_spark["description"].isna().all()
    exact = [c for c in on_duckdb.columns if c not in {"description", "mean_purchase_probability"}]
    assert mismatched_columns(on_duckdb[exact], on_spark[exact]) == []
    difference = on_duckdb["mean_purchase_probability"] - on_spark["mean_purchase_probability"]
    assert difference.abs().max() <= 1e-3


# --- Training on the Spark build: its marts through Arrow into a DuckDB file on the driver ---


def _train_small(settings: Settings) -> tuple[dict[str, float], int]:
    """Train a quick model: its validation metrics and the number of rows it trained on."""
    from ml.modelling.training import TrainOptions, train

    with pytest.MonkeyPatch.context() as patch:
        # The shop is too small for training's guard (100 buyers and non-buyers per half).
        patch.setattr("ml.modelling.examples.MIN_EXAMPLES_PER_CLASS", 20)
        report = train(settings, TrainOptions(algorithm="logistic_regression", n_threads=1))
    return report.metrics, report.metadata.n_training_rows


def _column_types(warehouse: Path) -> dict[str, str]:
    """Column -> DuckDB type of every table training reads."""
    from ml.spark_marts import DRIVER_TABLES

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select table_schema || '.' || table_name, column_name, data_type"
            " from information_schema.columns"
        ).fetchall()
    return {f"{table}.{column}": kind for table, column, kind in rows if table in DRIVER_TABLES}


def test_training_on_the_spark_build_gives_the_duckdb_build_metrics(
    raw_dir: Path,
    duckdb_warehouse: Path,
    spark_warehouse: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from ml.spark_marts import DRIVER_TABLES, import_local_build

    on_duckdb = tmp_path_factory.mktemp("train_duckdb")
    shutil.copy(duckdb_warehouse, on_duckdb / "segmart.duckdb")
    on_spark = tmp_path_factory.mktemp("train_spark")
    copied = import_local_build(spark_warehouse, on_spark / "segmart.duckdb")
    assert set(copied) == set(DRIVER_TABLES) and min(copied.values()) > 0
    assert _column_types(on_spark / "segmart.duckdb") == _column_types(duckdb_warehouse)

    duckdb_metrics, duckdb_rows = _train_small(
        make_settings(raw_dir, on_duckdb / "segmart.duckdb", on_duckdb)
    )
    spark_metrics, spark_rows = _train_small(
        make_settings(raw_dir, on_spark / "segmart.duckdb", on_spark)
    )

    assert spark_rows == duckdb_rows > 0
    assert spark_metrics.keys() == duckdb_metrics.keys() and duckdb_metrics
    for metric, value in duckdb_metrics.items():
        assert spark_metrics[metric] == pytest.approx(value, abs=1e-9), metric


# --- segmart import-spark: the Spark build read through a live session, as on a cluster ---
# One JVM for the section: a classic session on the build's metastore (--spark-dir) that also
# serves Spark Connect (what `remote("local")` starts), which --remote then reads over gRPC.

SAMPLED_ROWS = 500  # of the 1,302 training examples: the sample crosses, not the table
EXAMPLE_KEY = "customer_id, snapshot_on from ml.training_examples"


@pytest.fixture(scope="module")
def spark_connect_port(spark_warehouse: Path) -> Iterator[int]:
    """The build's metastore open in this process (`local_session`), with Spark Connect."""
    from pyspark import SparkContext

    from ml.spark_marts import local_session

    assert SparkContext._gateway is None, "a JVM already runs here: its options would stay"
    port = _free_port()
    submit_args = (
        "--conf spark.plugins=org.apache.spark.sql.connect.SparkConnectPlugin"
        f" --conf spark.connect.grpc.binding.port={port} pyspark-shell"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSPARK_SUBMIT_ARGS", submit_args)
        with local_session(spark_warehouse.parent):
            yield port


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _segmart(*args: str) -> Result:
    from typer.testing import CliRunner

    from ml.cli import app

    return CliRunner().invoke(app, list(args))


def _imported(warehouse: Path, table: str, keys: list[str]) -> pd.DataFrame:
    return comparable(read_duckdb(warehouse, table), keys)


def _values(frame: pd.DataFrame) -> list[list[object]]:
    """Rows of plain values, missing ones None: pandas spells a null integer two ways."""
    return frame.astype(object).where(frame.notna(), None).to_numpy().tolist()


def test_import_spark_copies_the_local_build_with_trainings_sample(
    duckdb_warehouse: Path,
    spark_warehouse: Path,
    spark_connect_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """--spark-dir: the examples training would sample on the DuckDB build, and no more,
    cross; the scores and every marketing mart come along; then `segmart report` works."""
    from ml.cli.spark import DEFAULT_MAX_TRAINING_ROWS
    from ml.modelling.examples import customer_sample
    from ml.modelling.training import TrainOptions
    from ml.spark_marts import DRIVER_TABLES

    assert TrainOptions().max_training_rows == DEFAULT_MAX_TRAINING_ROWS
    root = tmp_path_factory.mktemp("import_spark_local")
    warehouse = root / "segmart.duckdb"
    done = _segmart(
        "import-spark",
        "--spark-dir",
        str(spark_warehouse.parent),
        "--warehouse",
        str(warehouse),
        "--max-training-rows",
        str(SAMPLED_ROWS),
        "--json",
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["missing"] == []

    with duckdb.connect(str(duckdb_warehouse), read_only=True) as connection:
        n_rows = connection.execute("select count(*) from ml.training_examples").fetchone()[0]
        where, params = customer_sample(n_rows, SAMPLED_ROWS)
        expected = connection.execute(f"select {EXAMPLE_KEY} {where}", params).fetchall()
    assert summary["n_training_rows_on_spark"] == n_rows > SAMPLED_ROWS
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        imported = connection.execute(f"select {EXAMPLE_KEY}").fetchall()
    assert where and 0 < len(imported) < n_rows
    assert set(imported) == set(expected)
    assert _column_types(warehouse) == _column_types(duckdb_warehouse)

    marketing = {name for name in summary["rows"] if name.startswith("marketing.")}
    assert marketing == set(MARKETING_MARTS)
    assert set(summary["rows"]) >= {*DRIVER_TABLES, "predictions.customer_scores"}
    scores = ["customer_id"]
    assert _values(_imported(warehouse, "predictions.customer_scores", scores)) == _values(
        comparable(read_spark(spark_warehouse, "predictions.customer_scores"), scores)
    )
    report = _segmart("report", "--warehouse", str(warehouse))
    assert report.exit_code == 0, report.output
    assert (root / "reports" / "segmart_report.html").stat().st_size > 0


def test_import_spark_over_spark_connect_equals_the_parquet_files(
    raw_dir: Path,
    spark_warehouse: Path,
    spark_connect_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """--remote: a cluster's tables through Spark Connect's Arrow are the build's own rows
    and types, which training on the build's files (above) gives DuckDB's metrics with."""
    from ml.spark_marts import DRIVER_TABLES, import_local_build

    root = tmp_path_factory.mktemp("import_spark_remote")
    warehouse = root / "segmart.duckdb"
    # Its own process, as a driver elsewhere: pyspark has no Connect session beside a classic one.
    url = f"sc://localhost:{spark_connect_port}"
    command = ["-m", "ml.cli", "import-spark", "--remote", url, "--warehouse", str(warehouse)]
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    from_files = tmp_path_factory.mktemp("import_spark_files") / "segmart.duckdb"
    import_local_build(spark_warehouse, from_files)
    assert _column_types(warehouse) == _column_types(from_files)
    for table in DRIVER_TABLES:
        columns = list(read_duckdb(from_files, table).columns)
        keys = [c for c in ("customer_id", "snapshot_on", "as_of") if c in columns] or columns
        on_connect = _imported(warehouse, table, keys)
        on_files = _imported(from_files, table, keys)
        assert len(on_connect) == len(on_files) > 0, table
        assert mismatched_columns(on_files, on_connect) == [], table


def test_import_spark_names_a_missing_required_table_and_its_dbt_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build without the ML marts: one line naming the table and the build, exit 1."""

    class WithoutDailyRevenue:
        def tableExists(self, name: str) -> bool:  # noqa: N802 - Spark's catalog
            return name != "ml.daily_revenue"

    @contextlib.contextmanager
    def session(url: str) -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(catalog=WithoutDailyRevenue())

    monkeypatch.setattr("ml.spark_marts.remote_session", session)
    warehouse = tmp_path / "segmart.duckdb"
    url = "sc://cluster:15002"
    done = _segmart("import-spark", "--remote", url, "--warehouse", str(warehouse))
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        "error: ml.daily_revenue is not in the Spark build sc://cluster:15002: build it first"
        " (`dbt build --selector warehouse --target spark`)"
    ]
    assert not warehouse.exists()
