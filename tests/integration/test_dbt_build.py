"""dbt end to end: the warehouse build, the docs, optional inputs left out, unusable inputs.

Every build in this module after the shared session build uses the same raw dir, warehouse and
dbt target dir (their contents change, the paths do not): dbt re-parses the whole project when
the profile or the vars change, so fixed paths let it reuse the first parse.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.config import Settings
from ml.errors import SegmartError
from ml.run.build import dbt_vars, run_dbt
from tests.conftest import AS_OF, make_settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dbt_build")]

# Unit tests do not depend on the data: the shared session build runs them once.
BUILD = "build --selector warehouse --exclude-resource-type unit_test"
# Optional customer columns left out of the minimal raw dir, and the features built on them.
DROPPED_CUSTOMER_COLUMNS = ("birth_date", "income", "acquisition_channel")
FEATURES_OF_DROPPED_COLUMNS = ("age_years", "income")
CORE_AND_ML_MARTS = (
    "core.customers",
    "core.orders",
    "core.data_reconciliation",
    "ml.feature_stats",
    "ml.customer_features",
    "ml.training_examples",
)
WAREHOUSE_LAYERS = (
    "models/staging/",
    "models/intermediate/",
    "models/marts/core/",
    "models/marts/ml/",
)


@dataclass(frozen=True)
class Scratch:
    """The module's raw dir, warehouse and dbt target dir."""

    root: Path
    settings: Settings

    @property
    def target_dir(self) -> Path:
        return self.root / "target"

    def stage(self, tables: dict[str, pa.Table]) -> None:
        """Make `tables` the whole raw dir, and start from no warehouse."""
        for path in self.settings.raw_dir.iterdir():
            path.unlink()
        for name, table in tables.items():
            pq.write_table(table, self.settings.raw_dir / f"{name}.parquet")
        self.settings.warehouse.unlink(missing_ok=True)

    def build(self) -> None:
        run_dbt(self.settings, BUILD, dbt_vars(self.settings))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    root = tmp_path_factory.mktemp("dbt_build")
    (root / "raw").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        # A private dbt target dir: its partial parse is reused, and workers do not collide.
        patch.setenv("DBT_TARGET_PATH", str(root / "target"))
        yield Scratch(root, make_settings(root / "raw", root / "segmart.duckdb", root))


def _raw_table(generated_data: Path, name: str) -> pa.Table:
    return pq.read_table(generated_data / "raw" / f"{name}.parquet")


@pytest.fixture(scope="module")
def minimal_warehouse(scratch: Scratch, generated_data: Path) -> Path:
    """A build from customers (a few optional columns dropped) and orders alone; a copy to read.

    The copy survives the later tests of this module, which land broken raw dirs in the same
    warehouse.
    """
    customers = _raw_table(generated_data, "customers").drop_columns(
        list(DROPPED_CUSTOMER_COLUMNS)
    )
    scratch.stage({"customers": customers, "orders": _raw_table(generated_data, "orders")})
    scratch.build()
    copy = scratch.root / "minimal.duckdb"
    shutil.copy(scratch.settings.warehouse, copy)
    return copy


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0])


def test_warehouse_selector_builds_green_on_generated_data(built_warehouse_dir: Path) -> None:
    # The session fixture ran `build --selector warehouse` (models, data and unit tests) and
    # raised on any failing node; what it left must be complete.
    with duckdb.connect(str(built_warehouse_dir / "segmart.duckdb"), read_only=True) as con:
        for table in CORE_AND_ML_MARTS:
            assert _count(con, f"select count(*) from {table}") > 0, table
        unreconciled = con.execute(
            "select source_table from core.data_reconciliation where not is_reconciled"
        ).fetchall()
    assert unreconciled == []


def test_each_snapshot_sees_the_profile_written_before_it(
    built_warehouse_dir: Path, generated_data: Path
) -> None:
    # Re-loaded customers change their income at updated_at: snapshots up to that day must see
    # the first raw row's income, later ones the re-load's (a leak would show the re-load early).
    raw_customers = generated_data / "raw" / "customers.parquet"
    with duckdb.connect(str(built_warehouse_dir / "segmart.duckdb"), read_only=True) as con:
        seen = con.execute(
            f"""
            with raw_versions as (
                select
                    customer_id,
                    try_cast(income as double) as income,
                    try_cast(updated_at as timestamp) as written_at,
                from read_parquet('{raw_customers}')
            ),
            reloads as (
                select
                    customer_id,
                    arg_min(income, written_at) as first_income,
                    max(written_at) as reloaded_at,
                    arg_max(income, written_at) as reloaded_income,
                from raw_versions
                group by customer_id
                having count(*) = 2 and count(distinct written_at) = 2
                    and bool_and(income between 0 and 1e6)
                    and count(distinct income) = 2
            )
            select
                features.snapshot_on > reloads.reloaded_at as is_after_reload,
                count(*) as n,
                count(*) filter (where features.income = reloads.first_income) as n_first,
                count(*) filter (where features.income = reloads.reloaded_income) as n_reloaded,
            from intermediate.int_customer_snapshots_featurized as features
            inner join reloads using (customer_id)
            group by all
            order by is_after_reload
            """
        ).fetchall()
    (before, n_before, first_before, _), (after, n_after, _, reloaded_after) = seen
    assert not before and after
    assert n_before > 10 and n_after > 10
    assert first_before == n_before
    assert reloaded_after == n_after


def test_customers_and_orders_alone_build_green_and_produce_features(
    minimal_warehouse: Path,
) -> None:
    with duckdb.connect(str(minimal_warehouse), read_only=True) as con:
        n_features = _count(con, "select count(*) from ml.customer_features")
        n_customers_before_as_of = _count(
            con,
            f"select count(*) from core.customers where created_at < date '{AS_OF.isoformat()}'",
        )
        n_optional_rows = _count(
            con,
            "select (select count(*) from staging.stg_shop__web_events)"
            " + (select count(*) from staging.stg_shop__campaign_touches)"
            " + (select count(*) from staging.stg_shop__order_items)",
        )
        n_training_examples = _count(con, "select count(*) from ml.training_examples")

    assert n_features == n_customers_before_as_of > 0
    assert n_training_examples > 0
    assert n_optional_rows == 0


def test_missing_optional_columns_land_null_and_their_features_are_imputed(
    minimal_warehouse: Path,
) -> None:
    with duckdb.connect(str(minimal_warehouse), read_only=True) as con:
        (columns_missing,) = con.execute(
            "select columns_missing from raw.files where table_name = 'customers'"
        ).fetchall()[0]
        impute_values = dict(
            con.execute(
                "select feature, impute_value from ml.feature_stats where kind = 'numeric'"
            ).fetchall()
        )
        n_rows = _count(con, "select count(*) from ml.customer_features")
        n_imputed = {
            feature: _count(
                con,
                f"select count(*) from ml.customer_features"
                f" where {feature}_was_missing and {feature} = 0 and {feature}__scaled = 0",
            )
            for feature in FEATURES_OF_DROPPED_COLUMNS
        }
        # Every training row's channel is missing: 'unknown' is the one level learned.
        channel_levels = con.execute(
            "select level, slot from ml.feature_stats"
            " where feature = 'acquisition_channel' and slot is not null"
        ).fetchall()
        n_unknown_channel = _count(
            con, "select count(*) from ml.customer_features where acquisition_channel__level_1 = 1"
        )

    assert set(DROPPED_CUSTOMER_COLUMNS) <= set(columns_missing)
    # Never observed in training: imputed with 0, as SimpleImputer(keep_empty_features=True).
    assert all(impute_values[feature] == 0 for feature in FEATURES_OF_DROPPED_COLUMNS)
    assert n_imputed == dict.fromkeys(FEATURES_OF_DROPPED_COLUMNS, n_rows)
    assert channel_levels == [("unknown", 1)]
    assert n_unknown_channel == n_rows


def test_docs_generate_documents_every_warehouse_model_and_column(
    scratch: Scratch, minimal_warehouse: Path
) -> None:
    shutil.copy(minimal_warehouse, scratch.settings.warehouse)  # the catalog reads what is built
    run_dbt(scratch.settings, "docs generate", dbt_vars(scratch.settings))

    manifest = json.loads((scratch.target_dir / "manifest.json").read_text())
    catalog = json.loads((scratch.target_dir / "catalog.json").read_text())
    assert (scratch.target_dir / "index.html").exists()
    undocumented = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] != "model" or not node["original_file_path"].startswith(
            WAREHOUSE_LAYERS
        ):
            continue
        if not node["description"].strip():
            undocumented.append(unique_id)
        built_columns = catalog["nodes"][unique_id]["columns"]
        documented = {
            name.lower() for name, column in node["columns"].items() if column["description"]
        }
        undocumented += [f"{unique_id}.{name}" for name in built_columns if name not in documented]
    assert undocumented == []


def test_a_missing_orders_file_fails_naming_the_file(
    scratch: Scratch, generated_data: Path
) -> None:
    scratch.stage({"customers": _raw_table(generated_data, "customers")})

    with pytest.raises(SegmartError, match=r"required raw table orders not found") as error:
        scratch.build()
    assert "orders.csv or .parquet" in str(error.value)


def test_without_a_customers_file_every_customer_who_ordered_exists_from_the_first_order(
    scratch: Scratch, generated_data: Path
) -> None:
    orders = _raw_table(generated_data, "orders")
    scratch.stage({"orders": orders})
    scratch.build()
    with duckdb.connect(str(scratch.settings.warehouse), read_only=True) as con:
        mismatched = _count(
            con,
            "select count(*) from core.customers as customers"
            " full join (select customer_id, min(ordered_at) as first_ordered_at"
            " from staging.stg_shop__orders group by 1) as first_orders using (customer_id)"
            " where customers.created_at is distinct from first_orders.first_ordered_at",
        )
        n_customers = _count(con, "select count(*) from core.customers")
        n_reconciled = _count(
            con, "select count(*) from core.data_reconciliation where is_reconciled"
        )
    assert mismatched == 0 and n_customers > 1000 and n_reconciled == 6


@pytest.mark.parametrize(
    ("table", "column"), [("customers", "customer_id"), ("orders", "ordered_at")]
)
def test_a_missing_required_column_fails_naming_the_file_and_column(
    scratch: Scratch, generated_data: Path, table: str, column: str
) -> None:
    tables = {name: _raw_table(generated_data, name) for name in ("customers", "orders")}
    tables[table] = tables[table].drop_columns([column])
    scratch.stage(tables)

    with pytest.raises(
        SegmartError, match=rf"{table}\.parquet lacks required column\(s\) {column}"
    ):
        scratch.build()
