"""The contracts of the ML marts (YAML) list exactly the columns `feature_catalog()` makes.

The catalogue is rendered by dbt itself (`dbt compile --inline`), so the test reads the same
macro the marts are built from; the checker is tested on broken copies of the YAML.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml

from ml.config import DBT_PROJECT_DIR, PROFILES_DIR
from ml.modelling import features as ml_features

ML_MARTS_DIR = DBT_PROJECT_DIR / "models" / "marts" / "ml"
CONTRACT_FILES = ("_ml__models.yml", "_value__models.yml")
FEATURE_MARTS = ("customer_features", "training_examples")
# What a catalogue feature becomes in the marts, and the type its contract must declare.
RAW_TYPE, SCALED_TYPE, FLAG_TYPE, ONE_HOT_TYPE = "double", "double", "boolean", "integer"
OPT_IN = ("is_marketing_opt_in", "integer")
FEATURE_SHAPED = ("__scaled", "_was_missing", "__other")

RENDER_CATALOGUE = (
    "{%- set one_hot = {} -%}"
    "{%- for categorical in onehot_categoricals() -%}"
    "{%- do one_hot.update({categorical: onehot_columns(categorical)}) -%}"
    "{%- endfor -%}"
    "{{ tojson({'features': feature_catalog(), 'one_hot': one_hot}) }}"
)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """feature_catalog() and the one-hot columns per categorical, as dbt renders them."""
    from dbt.cli.main import dbtRunner

    target = tmp_path_factory.mktemp("dbt_target")
    saved = {name: os.environ.get(name) for name in ("SEGMART_WAREHOUSE", "DBT_TARGET_PATH")}
    os.environ.update({"SEGMART_WAREHOUSE": ":memory:", "DBT_TARGET_PATH": str(target)})
    try:
        result = dbtRunner().invoke(
            [
                *("compile", "--inline", RENDER_CATALOGUE, "--quiet"),
                *("--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(PROFILES_DIR)),
            ]
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert result.success, result.exception
    return json.loads(result.result.results[0].node.compiled_code)


def catalogue_columns(catalogue: dict) -> list[tuple[str, str]]:
    """The feature columns of a feature mart, in mart order, with their contract types."""
    columns = []
    for feature in catalogue["features"]:
        name = feature["name"]
        columns += [(name, RAW_TYPE), (f"{name}__scaled", SCALED_TYPE)]
        if feature["imputable"]:
            columns.append((f"{name}_was_missing", FLAG_TYPE))
    for one_hot_columns in catalogue["one_hot"].values():
        columns += [(column, ONE_HOT_TYPE) for column in one_hot_columns]
    return [*columns, OPT_IN]


def contract_errors(contracts: dict[str, dict], catalogue: dict) -> list[str]:
    """What the contracts get wrong about the catalogue: one line per problem, none when right.

    A feature mart (FEATURE_MARTS) holds its own key and label columns, then exactly the
    catalogue's columns, in order, with their types. No model of any contract file holds a
    feature-shaped column (`f__scaled`, `f_was_missing`, a one-hot column) that the catalogue
    does not make.
    """
    expected = catalogue_columns(catalogue)
    known = {name for name, _ in expected}
    errors = []
    for file_name, contract in contracts.items():
        for model in contract.get("models", []):
            where = f"{file_name} {model['name']}"
            columns = [(c["name"], c.get("data_type")) for c in model.get("columns", [])]
            if model["name"] in FEATURE_MARTS:
                block_errors = _feature_block_errors(columns, expected)
                errors += [f"{where}: {error}" for error in block_errors]
            else:
                errors += [
                    f"{where}: stale column {name}"
                    for name, _ in columns
                    if name not in known and _feature_shaped(name)
                ]
    return errors


def _feature_shaped(name: str) -> bool:
    return name.endswith(FEATURE_SHAPED) or "__level_" in name


def _feature_block_errors(
    columns: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> list[str]:
    """The keys come first; from the first catalogue column on, exactly the catalogue's."""
    known = dict(expected)
    names = [name for name, _ in columns]
    first = next((i for i, name in enumerate(names) if name in known), len(names))
    keys, block = columns[:first], columns[first:]
    errors = [f"stale column {name}" for name, _ in keys if _feature_shaped(name)]
    errors += [f"stale column {name}" for name, _ in block if name not in known]
    block_types = dict(block)
    for name, data_type in expected:
        if name not in block_types:
            errors.append(f"missing column {name}")
        elif block_types[name] != data_type:
            errors.append(f"{name} is {block_types[name]}, not {data_type}")
    if not errors and block != expected:
        errors.append("feature columns out of mart order")
    return errors


def load_contracts(directory: Path = ML_MARTS_DIR) -> dict[str, dict]:
    return {
        name: yaml.safe_load((directory / name).read_text(encoding="utf-8"))
        for name in CONTRACT_FILES
    }


def _feature_mart(contracts: dict[str, dict], name: str) -> dict:
    return next(m for m in contracts["_ml__models.yml"]["models"] if m["name"] == name)


def test_the_ml_mart_contracts_document_every_catalogue_column_with_its_type(catalogue):
    assert contract_errors(load_contracts(), catalogue) == []


def test_the_python_copies_of_the_catalogue_agree_with_it(catalogue):
    from benchmarks import pandas_reference

    assert tuple(catalogue["one_hot"]) == ml_features.CATEGORICALS
    assert tuple(catalogue["one_hot"]) == pandas_reference.CATEGORICALS
    assert (
        tuple((f["name"], f["log1p"], f["imputable"]) for f in catalogue["features"])
        == pandas_reference.FEATURES
    )
    slots = {len(columns) - 1 for columns in catalogue["one_hot"].values()}
    assert slots == {pandas_reference.ONEHOT_SLOTS}


def test_a_feature_missing_from_a_contract_is_reported(catalogue):
    contracts = copy.deepcopy(load_contracts())
    mart = _feature_mart(contracts, "training_examples")
    mart["columns"] = [c for c in mart["columns"] if c["name"] != "cancel_rate__scaled"]
    assert contract_errors(contracts, catalogue) == [
        "_ml__models.yml training_examples: missing column cancel_rate__scaled"
    ]


def test_a_wrong_data_type_is_reported(catalogue):
    contracts = copy.deepcopy(load_contracts())
    mart = _feature_mart(contracts, "customer_features")
    flag = next(c for c in mart["columns"] if c["name"] == "income_was_missing")
    flag["data_type"] = "integer"
    assert contract_errors(contracts, catalogue) == [
        "_ml__models.yml customer_features: income_was_missing is integer, not boolean"
    ]


def test_a_column_the_catalogue_no_longer_makes_is_reported_in_any_contract(catalogue):
    contracts = copy.deepcopy(load_contracts())
    _feature_mart(contracts, "customer_features")["columns"].append(
        {"name": "n_orders_7d__scaled", "data_type": "double"}
    )
    contracts["_value__models.yml"]["models"][0]["columns"].append(
        {"name": "gender__level_9", "data_type": "integer"}
    )
    assert contract_errors(contracts, catalogue) == [
        "_ml__models.yml customer_features: stale column n_orders_7d__scaled",
        "_value__models.yml customer_value_inputs: stale column gender__level_9",
    ]


def test_feature_columns_out_of_mart_order_are_reported(catalogue):
    contracts = copy.deepcopy(load_contracts())
    columns = _feature_mart(contracts, "training_examples")["columns"]
    i = next(i for i, c in enumerate(columns) if c["name"] == "revenue")
    columns[i], columns[i + 1] = columns[i + 1], columns[i]
    assert contract_errors(contracts, catalogue) == [
        "_ml__models.yml training_examples: feature columns out of mart order"
    ]


def test_a_feature_added_to_the_catalogue_but_not_to_the_contracts_is_reported(catalogue):
    grown = copy.deepcopy(catalogue)
    grown["features"].append({"name": "n_returns_90d", "log1p": True, "imputable": True})
    errors = contract_errors(load_contracts(), grown)
    assert "_ml__models.yml customer_features: missing column n_returns_90d_was_missing" in errors
    assert "_ml__models.yml training_examples: missing column n_returns_90d__scaled" in errors
