"""The SQL preprocessing equals scikit-learn's, and scoring never refits it.

For each numeric feature, scikit-learn's SimpleImputer -> FunctionTransformer(np.log1p) (the
log1p features only) -> scaler is fitted on the training population's raw features
(intermediate.int_customer_snapshots_featurized where is_training) and applied to the scoring
and training populations; the marts' `f` and `f__scaled` columns must match to 1e-9. The
categoricals must match OneHotEncoder over the fixed levels, with `other` for the rest.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    StandardScaler,
)

from ml.build import dbt_vars, run_dbt
from ml.config import Settings
from tests.conftest import AS_OF, make_settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("preprocessing")]

TOLERANCE = {"rtol": 1e-9, "atol": 1e-9}
LATER_AS_OF = AS_OF + timedelta(days=30)
# (scaler, imputation_strategy): the shared session build has the defaults; the others rebuild
# the fit and the marts on a private copy. Together they cover three scalers, two strategies.
SCENARIOS = [("zscore", "mean"), ("minmax", "median"), ("seed_norm", "mean")]
# Unit tests do not depend on the data (the session build runs them); marketing reads
# predictions that do not exist yet.
EXCLUDE = "--exclude path:models/marts/marketing --exclude-resource-type unit_test"


class SeedNormScaler(TransformerMixin, BaseEstimator):
    """The seed's scaling: value / (mean + 3 * sample std), dividing by 1 when that is 0."""

    def fit(self, X: np.ndarray, y: object = None) -> SeedNormScaler:
        X = np.asarray(X, dtype=float)
        scale = X.mean(axis=0) + 3 * X.std(axis=0, ddof=1)
        self.scale_ = np.where(scale == 0, 1.0, scale)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float) / self.scale_


SCALERS = {"zscore": StandardScaler, "minmax": MinMaxScaler, "seed_norm": SeedNormScaler}


@dataclass(frozen=True)
class Warehouse:
    """What a built warehouse holds, read once: raw features, marts and fitted parameters."""

    scaler: str
    imputation_strategy: str
    training_raw: pd.DataFrame
    scoring_raw: pd.DataFrame
    customer_features: pd.DataFrame
    training_examples: pd.DataFrame
    feature_stats: pd.DataFrame

    @property
    def numeric(self) -> pd.DataFrame:
        return self.feature_stats[self.feature_stats["kind"] == "numeric"]

    def levels(self) -> dict[str, list[str]]:
        onehot = self.feature_stats[self.feature_stats["kind"] == "onehot_level"]
        return {
            categorical: [level for level in rows["level"] if level != "other"]
            for categorical, rows in onehot.groupby("feature", sort=False)
        }


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.sql(sql).to_arrow_table().to_pandas()


def read_warehouse(path: Path, stats_as_of: date | None = None) -> Warehouse:
    """The raw populations, the marts (sorted by key) and the feature_stats rows they apply."""
    with duckdb.connect(str(path), read_only=True) as con:
        featurized = _frame(
            con,
            "select * from intermediate.int_customer_snapshots_featurized"
            " order by customer_id, snapshot_on",
        )
        customer_features = _frame(con, "select * from ml.customer_features order by customer_id")
        training_examples = _frame(
            con, "select * from ml.training_examples order by customer_id, snapshot_on"
        )
        applied = customer_features["feature_stats_fitted_as_of"].iloc[0]
        feature_stats = _frame(
            con,
            f"select * from ml.feature_stats where fitted_as_of = date '{applied.isoformat()}'"
            " order by feature, level",
        )
    assert stats_as_of is None or applied == stats_as_of
    return Warehouse(
        scaler=feature_stats["scaler"].iloc[0],
        imputation_strategy=feature_stats["imputation_strategy"].iloc[0],
        training_raw=featurized[featurized["is_training"]].reset_index(drop=True),
        scoring_raw=featurized[~featurized["is_training"]].reset_index(drop=True),
        customer_features=customer_features,
        training_examples=training_examples,
        feature_stats=feature_stats,
    )


def sklearn_preprocessing(log1p: bool, strategy: str, scaler: str) -> Pipeline:
    """SimpleImputer -> log1p (if the feature has it) -> the scaler, unfitted."""
    return make_pipeline(
        SimpleImputer(strategy=strategy, keep_empty_features=True),
        FunctionTransformer(np.log1p) if log1p else "passthrough",
        SCALERS[scaler](),
    )


def assert_numeric_features_match(
    fitted_on: pd.DataFrame, applied_to: pd.DataFrame, mart: pd.DataFrame, warehouse: Warehouse
) -> None:
    """The mart's `f` and `f__scaled` equal scikit-learn fitted on `fitted_on`."""
    assert len(mart) == len(applied_to) > 0
    for feature, log1p in warehouse.numeric[["feature", "is_log1p"]].itertuples(index=False):
        pipeline = sklearn_preprocessing(
            log1p, warehouse.imputation_strategy, warehouse.scaler
        ).fit(fitted_on[[feature]])
        imputed = pipeline[0].transform(applied_to[[feature]])[:, 0]
        scaled = pipeline.transform(applied_to[[feature]])[:, 0]

        np.testing.assert_allclose(mart[feature], imputed, **TOLERANCE, err_msg=feature)
        np.testing.assert_allclose(
            mart[f"{feature}__scaled"], scaled, **TOLERANCE, err_msg=f"{feature}__scaled"
        )
        if f"{feature}_was_missing" in mart:
            np.testing.assert_array_equal(
                mart[f"{feature}_was_missing"], applied_to[feature].isna(), err_msg=feature
            )
        else:
            assert not applied_to[feature].isna().any(), f"{feature} is missing but not imputable"


@pytest.fixture(scope="module", params=SCENARIOS, ids=["-".join(s) for s in SCENARIOS])
def warehouse(
    request: pytest.FixtureRequest,
    built_warehouse_dir: Path,
    generated_data: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Warehouse]:
    scaler, strategy = request.param
    shared = built_warehouse_dir / "segmart.duckdb"
    if (scaler, strategy) == SCENARIOS[0]:
        yield read_warehouse(shared)
        return
    root = tmp_path_factory.mktemp(f"preprocessing_{scaler}_{strategy}")
    shutil.copy(shared, root / "segmart.duckdb")
    settings = make_settings(generated_data / "raw", root / "segmart.duckdb", root)
    variables = dbt_vars(settings, extra={"scaler": scaler, "imputation_strategy": strategy})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(root / "target"))
        run_dbt(settings, f"build --select feature_stats+ {EXCLUDE}", variables, full_refresh=True)
    yield read_warehouse(settings.warehouse)


def test_the_build_used_the_scenarios_scaler_and_strategy(
    warehouse: Warehouse, request: pytest.FixtureRequest
) -> None:
    scaler, strategy = request.node.callspec.params["warehouse"]
    assert (warehouse.scaler, warehouse.imputation_strategy) == (scaler, strategy)
    assert set(warehouse.feature_stats["fitted_as_of"]) == {AS_OF}


def test_scoring_features_match_sklearn_fitted_on_the_training_population(
    warehouse: Warehouse,
) -> None:
    assert_numeric_features_match(
        warehouse.training_raw, warehouse.scoring_raw, warehouse.customer_features, warehouse
    )


def test_training_features_match_sklearn_fitted_on_the_training_population(
    warehouse: Warehouse,
) -> None:
    assert_numeric_features_match(
        warehouse.training_raw, warehouse.training_raw, warehouse.training_examples, warehouse
    )


def test_one_hot_columns_match_sklearn_with_other_for_unknown_levels(
    warehouse: Warehouse,
) -> None:
    mart, raw = warehouse.customer_features, warehouse.scoring_raw
    for categorical, levels in warehouse.levels().items():
        encoder = OneHotEncoder(categories=[levels], handle_unknown="ignore", sparse_output=False)
        expected = encoder.fit(warehouse.training_raw[[categorical]]).transform(raw[[categorical]])
        actual = mart[[f"{categorical}__{level}" for level in levels]].to_numpy()

        np.testing.assert_array_equal(actual, expected, err_msg=categorical)
        np.testing.assert_array_equal(
            mart[f"{categorical}__other"], (expected.sum(axis=1) == 0).astype(int)
        )


def test_a_later_scoring_run_reuses_the_earlier_fit_unchanged(built_warehouse: Settings) -> None:
    before = read_warehouse(built_warehouse.warehouse)
    later = built_warehouse.with_overrides(as_of=LATER_AS_OF)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(built_warehouse.warehouse.parent / "target"))
        run_dbt(
            later,
            f"build --select int_snapshot_dates+ {EXCLUDE}",
            dbt_vars(later, stats_as_of=AS_OF),
        )
    after = read_warehouse(built_warehouse.warehouse, stats_as_of=AS_OF)
    with duckdb.connect(str(built_warehouse.warehouse), read_only=True) as con:
        fits = con.execute("select distinct fitted_as_of from ml.feature_stats").fetchall()

    assert fits == [(AS_OF,)]  # nothing was fitted on the later population
    pd.testing.assert_frame_equal(after.feature_stats, before.feature_stats)
    assert set(after.customer_features["as_of"]) == {LATER_AS_OF}
    assert set(after.customer_features["feature_stats_id"]) == set(
        before.customer_features["feature_stats_id"]
    )
    # The later population is scored with the parameters of the earlier training population.
    assert_numeric_features_match(
        before.training_raw, after.scoring_raw, after.customer_features, before
    )
