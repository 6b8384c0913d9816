"""The SQL preprocessing equals scikit-learn's, and scoring never refits it.

For each numeric feature, scikit-learn's SimpleImputer -> FunctionTransformer(np.log1p) (the
log1p features only) -> scaler is fitted on the training population's raw features
(intermediate.int_customer_snapshots_featurized where is_training) and applied to the scoring
and training populations; the marts' `f` and `f__scaled` columns must match to 1e-9. The
categoricals must match OneHotEncoder(min_frequency, max_categories,
handle_unknown='infrequent_if_exist') fitted on the training population, column by level name:
on the generated shop, and on the same shop with its regions rewritten to a real shop's (rare
ones among them, and one that first appears after the last training snapshot).
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
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    StandardScaler,
)

from ml.config import DBT_PROJECT_DIR, Settings
from ml.run.build import dbt_vars, run_dbt
from tests.conftest import AS_OF, HORIZON_DAYS, make_settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("preprocessing")]

TOLERANCE = {"rtol": 1e-9, "atol": 1e-9}
LATER_AS_OF = AS_OF + timedelta(days=30)
# (scaler, imputation_strategy, regions): the shared session build has the defaults; the others
# rebuild on a private copy. Together they cover three scalers, two strategies, and the
# generator's regions or a real shop's (built from rewritten raw customers, with the one-hot
# vars below, so that both the minimum share and the maximum number of levels bite).
SCENARIOS = [
    ("zscore", "mean", "generated"),
    ("minmax", "median", "generated"),
    ("seed_norm", "mean", "real_world"),
]
DEFAULT_VARS = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
REAL_WORLD_ONEHOT_VARS = {"onehot_min_share": 0.02, "onehot_max_levels": 5}
# Raw spellings (cleaned to trimmed lower case by staging) and shares: 8 levels above 2%, of
# which the 5 most frequent get a column; 3 rare ones; some missing (level 'unknown').
REAL_WORLD_REGIONS = {
    "Bavaria": 0.28,
    "île-de-france": 0.18,
    " Lombardia ": 0.14,
    "CATALONIA": 0.10,
    "noord-holland": 0.08,
    "wien": 0.06,
    "zürich": 0.05,
    "tyrol": 0.04,
    "åland": 0.012,
    "gozo": 0.008,
    "madeira": 0.005,
    None: 0.025,
}
# Every customer signed up after the last training snapshot lives here: a level the fit never
# saw, which must land in `other` (scikit-learn: the infrequent category).
SCORING_ONLY_REGION = "luxembourg"
# Unit tests do not depend on the data (the session build runs them); marketing reads
# predictions that do not exist yet.
EXCLUDE = (
    "--exclude path:models/marts/predictions path:models/marts/marketing"
    " --exclude-resource-type unit_test"
)


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
    onehot_min_share: float
    onehot_max_levels: int
    training_raw: pd.DataFrame
    scoring_raw: pd.DataFrame
    customer_features: pd.DataFrame
    training_examples: pd.DataFrame
    feature_stats: pd.DataFrame

    @property
    def numeric(self) -> pd.DataFrame:
        return self.feature_stats[self.feature_stats["kind"] == "numeric"]

    def levels(self) -> dict[str, dict[int, str]]:
        """Per categorical, slot -> the level learned in it."""
        onehot = self.feature_stats[
            (self.feature_stats["kind"] == "onehot_level") & self.feature_stats["slot"].notna()
        ]
        return {
            categorical: dict(zip(rows["slot"].astype(int), rows["level"], strict=True))
            for categorical, rows in onehot.groupby("feature", sort=False)
        }


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.sql(sql).to_arrow_table().to_pandas()


def read_warehouse(
    path: Path, stats_as_of: date | None = None, onehot_vars: dict | None = None
) -> Warehouse:
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
    onehot = {**DEFAULT_VARS, **(onehot_vars or {})}
    return Warehouse(
        scaler=feature_stats["scaler"].iloc[0],
        imputation_strategy=feature_stats["imputation_strategy"].iloc[0],
        onehot_min_share=onehot["onehot_min_share"],
        onehot_max_levels=onehot["onehot_max_levels"],
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


def real_world_raw_dir(generated_raw: Path, target: Path) -> Path:
    """The generated shop with its customers' regions rewritten to a real shop's."""
    shutil.copytree(generated_raw, target)
    customers = pq.read_table(target / "customers.parquet")
    ids = customers["customer_id"].to_numpy(zero_copy_only=False)
    # By customer, so every re-loaded version of a customer keeps the same region.
    distinct, customer_of_row = np.unique(ids, return_inverse=True)
    rng = np.random.default_rng(12)
    names = list(REAL_WORLD_REGIONS)
    shares = np.array(list(REAL_WORLD_REGIONS.values()))
    chosen = rng.choice(len(names), size=len(distinct), p=shares / shares.sum())
    regions = np.array(names, dtype=object)[chosen][customer_of_row]
    signed_up = customers["created_at"].to_numpy(zero_copy_only=False)
    last_training_snapshot = np.datetime64(AS_OF - timedelta(days=HORIZON_DAYS))
    first_signup = pd.Series(signed_up).groupby(customer_of_row).transform("min").to_numpy()
    regions[first_signup >= last_training_snapshot] = SCORING_ONLY_REGION
    column = customers.schema.get_field_index("region")
    customers = customers.set_column(column, "region", pa.array(list(regions), pa.string()))
    pq.write_table(customers, target / "customers.parquet")
    return target


@pytest.fixture(scope="module", params=SCENARIOS, ids=["-".join(s) for s in SCENARIOS])
def warehouse(
    request: pytest.FixtureRequest,
    built_warehouse_dir: Path,
    generated_data: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Warehouse]:
    scaler, strategy, regions = request.param
    shared = built_warehouse_dir / "segmart.duckdb"
    if request.param == SCENARIOS[0]:
        yield read_warehouse(shared)
        return
    root = tmp_path_factory.mktemp(f"preprocessing_{scaler}_{strategy}_{regions}")
    extra = {"scaler": scaler, "imputation_strategy": strategy}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(root / "target"))
        if regions == "generated":
            shutil.copy(shared, root / "segmart.duckdb")
            settings = make_settings(generated_data / "raw", root / "segmart.duckdb", root)
            command = f"build --select feature_stats+ {EXCLUDE}"
        else:
            raw_dir = real_world_raw_dir(generated_data / "raw", root / "raw")
            settings = make_settings(raw_dir, root / "segmart.duckdb", root)
            command = "build --selector warehouse --exclude-resource-type unit_test"
            extra |= REAL_WORLD_ONEHOT_VARS
        run_dbt(settings, command, dbt_vars(settings, extra=extra), full_refresh=True)
    onehot_vars = REAL_WORLD_ONEHOT_VARS if regions == "real_world" else None
    yield read_warehouse(settings.warehouse, onehot_vars=onehot_vars)


def test_the_build_used_the_scenarios_scaler_and_strategy(
    warehouse: Warehouse, request: pytest.FixtureRequest
) -> None:
    scaler, strategy, _ = request.node.callspec.params["warehouse"]
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


def sklearn_one_hot(warehouse: Warehouse) -> OneHotEncoder:
    """OneHotEncoder as feature_stats learns levels: frequent ones, at most max_levels of them."""
    return OneHotEncoder(
        min_frequency=warehouse.onehot_min_share,
        max_categories=warehouse.onehot_max_levels + 1,  # + the infrequent category
        handle_unknown="infrequent_if_exist",
        sparse_output=False,
    )


def assert_one_hot_columns_match(
    fitted_on: pd.DataFrame, applied_to: pd.DataFrame, mart: pd.DataFrame, warehouse: Warehouse
) -> None:
    """Each slot column equals scikit-learn's column of the level learned in that slot, `other`
    its infrequent column (all zeros when nothing was infrequent), and a slot without a level
    is all zeros."""
    assert len(mart) == len(applied_to) > 0
    learned = warehouse.levels()
    for categorical in ("gender", "region", "acquisition_channel"):
        encoder = sklearn_one_hot(warehouse).fit(fitted_on[[categorical]])
        expected = pd.DataFrame(
            encoder.transform(applied_to[[categorical]]).astype(int),
            columns=list(encoder.categories_[0][~_infrequent_mask(encoder)])
            + (["<infrequent>"] if encoder.infrequent_categories_[0] is not None else []),
        )
        levels = learned.get(categorical, {})
        assert sorted(levels.values()) == sorted(c for c in expected if c != "<infrequent>")
        assert sorted(levels) == list(range(1, len(levels) + 1)), categorical
        for slot in range(1, 9):
            column = f"{categorical}__level_{slot}"
            wanted = expected[levels[slot]] if slot in levels else np.zeros(len(mart), int)
            np.testing.assert_array_equal(mart[column], wanted, err_msg=column)
        other = expected.get("<infrequent>", pd.Series(expected.sum(axis=1) == 0).astype(int))
        np.testing.assert_array_equal(mart[f"{categorical}__other"], other, err_msg=categorical)


def _infrequent_mask(encoder: OneHotEncoder) -> np.ndarray:
    infrequent = encoder.infrequent_categories_[0]
    categories = encoder.categories_[0]
    return (
        np.isin(categories, infrequent)
        if infrequent is not None
        else np.zeros(len(categories), bool)
    )


def test_one_hot_columns_match_sklearn_fitted_on_the_training_population(
    warehouse: Warehouse,
) -> None:
    assert_one_hot_columns_match(
        warehouse.training_raw, warehouse.scoring_raw, warehouse.customer_features, warehouse
    )
    assert_one_hot_columns_match(
        warehouse.training_raw, warehouse.training_raw, warehouse.training_examples, warehouse
    )


def test_slots_follow_training_frequency_and_store_the_training_share(
    warehouse: Warehouse,
) -> None:
    training = warehouse.training_raw
    for categorical, levels in warehouse.levels().items():
        shares = training[categorical].value_counts(normalize=True)
        stored = warehouse.feature_stats.set_index(["feature", "level"])["training_share"]
        # Most frequent first; ties to the level later in code-point order, as scikit-learn.
        ordered = sorted(sorted(levels.values(), reverse=True), key=lambda level: -shares[level])
        assert [levels[slot] for slot in sorted(levels)] == ordered, categorical
        for level in levels.values():
            assert stored[(categorical, level)] == pytest.approx(shares[level], abs=1e-12)


def test_a_real_shops_regions_are_learned_rare_and_new_ones_are_other(
    warehouse: Warehouse, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["warehouse"][2] != "real_world":
        pytest.skip("the generator's regions")
    regions = warehouse.levels()["region"]
    # 8 regions have 2% or more; the 5 most frequent get a column, spelled as staging cleans.
    assert [regions[slot] for slot in sorted(regions)] == [
        "bavaria",
        "île-de-france",
        "lombardia",
        "catalonia",
        "noord-holland",
    ]
    scoring = warehouse.scoring_raw
    mart = warehouse.customer_features.set_index("customer_id")
    new_customers = scoring.loc[scoring["region"] == SCORING_ONLY_REGION, "customer_id"]
    rare = scoring.loc[scoring["region"].isin(["åland", "gozo", "madeira", "wien"]), "customer_id"]
    assert len(new_customers) > 0 and len(rare) > 0
    assert (mart.loc[new_customers, "region__other"] == 1).all()
    assert (mart.loc[rare, "region__other"] == 1).all()
    assert SCORING_ONLY_REGION not in set(warehouse.training_raw["region"])


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
    assert_one_hot_columns_match(
        before.training_raw, after.scoring_raw, after.customer_features, before
    )
