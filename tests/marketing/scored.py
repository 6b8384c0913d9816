"""A scored warehouse with the marketing marts built, shared by the marketing and BI tests.

Built once per test session on top of the shared dbt-built warehouse: train and score with the
ML step (or, until `ml.training` and `ml.scoring` exist, write plausible stand-in predictions),
then `dbt build --selector marketing`. Tests that only read use it in place through read-only
connections; tests that write take a private copy.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from ml.config import Settings
from tests.conftest import _shared_once, make_settings
from tests.marketing.fake_predictions import write_fake_predictions

WAREHOUSE_NAME = "segmart.duckdb"


def ml_step_available() -> bool:
    """Whether the ML step's training and scoring modules exist yet."""
    return all(importlib.util.find_spec(name) for name in ("ml.training", "ml.scoring"))


def score(settings: Settings) -> str:
    """Write predictions.* with the real ML step if present, else stand-ins; say which."""
    if not ml_step_available():
        with duckdb.connect(str(settings.warehouse)) as con:
            write_fake_predictions(con)
        return "fake"
    from ml.scoring import score as score_customers
    from ml.training import TrainOptions, train

    options = TrainOptions(
        algorithm="logistic_regression", n_segments=5, random_state=0, n_threads=1
    )
    train(settings, options, lambda message: None)
    score_customers(settings, "latest", lambda message: None)
    return "real"


def build_marketing(settings: Settings) -> None:
    """Build the marketing selector: models, their tests and unit tests."""
    from ml.build import dbt_vars, run_dbt

    run_dbt(settings, "build --selector marketing", dbt_vars(settings))


def _make(built_dir: Path, raw_dir: Path, target: Path) -> None:
    shutil.copy(built_dir / WAREHOUSE_NAME, target / WAREHOUSE_NAME)
    settings = make_settings(raw_dir, target / WAREHOUSE_NAME, target)
    (target / "predictions_kind").write_text(score(settings))
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
