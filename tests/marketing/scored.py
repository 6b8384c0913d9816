"""A scored warehouse with the marketing marts built, shared by the marketing and BI tests.

Built once per test session on top of the shared dbt-built warehouse: train and score with the
ML step, then `dbt build --selector marketing`. Tests that only read use it in place through
read-only connections; tests that write take a private copy.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from ml.config import Settings
from tests.conftest import _shared_once, make_settings

WAREHOUSE_NAME = "segmart.duckdb"


def score(settings: Settings) -> None:
    """Write predictions.* with a quick model (logistic regression, one thread)."""
    from ml.modelling.training import TrainOptions, train
    from ml.serving.scoring import score as score_customers

    options = TrainOptions(
        algorithm="logistic_regression", n_segments=5, random_state=0, n_threads=1
    )
    train(settings, options, lambda message: None)
    score_customers(settings, "latest", lambda message: None)


def build_marketing(settings: Settings) -> None:
    """Build the marketing selector: models, their tests and unit tests."""
    from ml.run.build import dbt_vars, run_dbt

    run_dbt(settings, "build --selector marketing", dbt_vars(settings))


def _make(built_dir: Path, raw_dir: Path, target: Path) -> None:
    shutil.copy(built_dir / WAREHOUSE_NAME, target / WAREHOUSE_NAME)
    settings = make_settings(raw_dir, target / WAREHOUSE_NAME, target)
    score(settings)
    build_marketing(settings)


@pytest.fixture(scope="session")
def marketing_dir(shared_root: Path, built_warehouse_dir: Path, generated_data: Path) -> Path:
    """The shared scored warehouse with marketing marts, and its model registry: read only."""
    return _shared_once(
        shared_root,
        "marketing",
        lambda target: _make(built_warehouse_dir, generated_data / "raw", target),
    )


def shared_settings(marketing_dir: Path, generated_data: Path, outputs: Path) -> Settings:
    """Settings reading the shared warehouse and registry in place, writing under outputs."""
    settings = make_settings(generated_data / "raw", marketing_dir / WAREHOUSE_NAME, outputs)
    return replace(settings, models_dir=marketing_dir / "models")


def private_settings(marketing_dir: Path, generated_data: Path, root: Path) -> Settings:
    """Settings on a private copy of the shared warehouse (and registry) under root."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(marketing_dir / WAREHOUSE_NAME, root / WAREHOUSE_NAME)
    if (marketing_dir / "models").exists():
        shutil.copytree(marketing_dir / "models", root / "models", dirs_exist_ok=True)
    return make_settings(generated_data / "raw", root / WAREHOUSE_NAME, root)
