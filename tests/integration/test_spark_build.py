"""The same dbt project on Spark: the `warehouse` selector built on DuckDB and on a local Spark
session (dbt-spark, `method: session`) from the same raw files gives the same tables.

Spark runs dbt in a subprocess from a scratch directory: the session keeps a Derby metastore
and its tables there (SEGMART_SPARK_DIR), and Derby admits one process at a time. The Spark
tables are Parquet files under spark-warehouse/, read here with pyarrow: no second JVM.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

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
    from ml import registry
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
    registry.promote(settings, trained.metadata.model_id, "test: scored on both engines")
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
