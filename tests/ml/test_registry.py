import json
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from ml import registry
from ml.errors import SegmartError
from ml.propensity import ALGORITHMS, PropensityModel, fit_cross_fitted
from ml.registry import ALLOWED_TYPES, ARTIFACT, METADATA
from ml.training import TrainOptions, train
from tests.ml import (
    settings_for,
    single_threaded,  # noqa: F401 - autouse fixture
    synthetic_warehouse,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    settings = settings_for(tmp_path_factory.mktemp("registry"))
    synthetic_warehouse(settings.warehouse)
    return train(
        settings, TrainOptions(algorithm="logistic_regression", n_segments=3, n_threads=1)
    )


@pytest.fixture
def models_dir(trained, tmp_path):
    """A private copy of the trained registry, free to tamper with."""
    return Path(shutil.copytree(trained.model_dir.parent, tmp_path / "models"))


def test_a_saved_model_loads_back_with_its_metadata_segments_and_report(trained, models_dir):
    report = trained
    model = registry.load_model(models_dir, report.model_id)
    assert model.metadata == report.metadata
    assert model.metadata.artifact_sha256 == registry.sha256_file(
        models_dir / report.model_id / ARTIFACT
    )
    assert set(model.segment_names) == set(range(1, model.segmenter.n_segments_ + 1))
    assert (models_dir / report.model_id / "report.md").read_text().startswith("# Model ")


def test_latest_is_the_most_recently_trained_model(trained, models_dir):
    report = trained
    older = replace(report.metadata, model_id="19990101T000000Z-00000000", trained_at="1999")
    (models_dir / older.model_id).mkdir()
    (models_dir / older.model_id / METADATA).write_text(older.to_json())
    assert [m.model_id for m in registry.list_models(models_dir)] == [
        older.model_id,
        report.model_id,
    ]
    assert registry.load_metadata(models_dir, "latest").model_id == report.model_id


def test_an_unknown_model_id_is_a_one_line_error_naming_the_known_ones(trained, models_dir):
    report = trained
    with pytest.raises(SegmartError, match="unknown model id 'nope'") as error:
        registry.load_model(models_dir, "nope")
    assert report.model_id in str(error.value) and "\n" not in str(error.value)


def test_an_empty_registry_says_to_train_first(tmp_path):
    with pytest.raises(SegmartError, match="run `segmart train` first"):
        registry.load_metadata(tmp_path / "models")


def test_a_modified_artifact_is_refused_before_it_is_deserialised(trained, models_dir):
    report = trained
    artifact = models_dir / report.model_id / ARTIFACT
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(SegmartError, match=f"model artifact .*{ARTIFACT} was modified"):
        registry.load_model(models_dir, report.model_id)


class _Exploit:
    """Unpickling this would create a file: proof that pickle was (not) run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _replace_artifact(models_dir: Path, model_id: str, data: bytes) -> None:
    """Swap the artifact and fix up its recorded sha256, as a thorough attacker would."""
    artifact = models_dir / model_id / ARTIFACT
    artifact.write_bytes(data)
    metadata_path = models_dir / model_id / METADATA
    metadata = json.loads(metadata_path.read_text())
    metadata["artifact_sha256"] = registry.sha256_file(artifact)
    metadata_path.write_text(json.dumps(metadata))


def test_a_pickle_file_is_refused_and_never_unpickled(trained, models_dir, tmp_path):
    report = trained
    marker = tmp_path / "pwned"
    _replace_artifact(models_dir, report.model_id, pickle.dumps(_Exploit(marker)))
    with pytest.raises(SegmartError, match="is not a skops file; refusing to load it"):
        registry.load_model(models_dir, report.model_id)
    assert not marker.exists()


def test_an_artifact_with_a_type_outside_the_allow_list_is_refused(trained, models_dir, tmp_path):
    report = trained
    sneaky = tmp_path / "sneaky.skops"
    sio.dump({"propensity": pd.Timestamp("2025-01-01")}, sneaky)
    _replace_artifact(models_dir, report.model_id, sneaky.read_bytes())
    with pytest.raises(SegmartError, match=r"outside the allow-list .*pandas"):
        registry.load_model(models_dir, report.model_id)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_the_allow_list_covers_every_algorithm_calibration_and_the_averaging(
    algorithm, method, tmp_path
):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    y = (X["a"] + rng.normal(size=300) > 0).astype(int).to_numpy()
    small = {"random_forest": {"n_estimators": 5}, "hist_gradient_boosting": {"max_iter": 5}}
    halves = [(X.iloc[:150], y[:150]), (X.iloc[150:], y[150:])]
    final, _ = fit_cross_fitted(algorithm, small.get(algorithm, {}), method, 0, halves, halves)
    sio.dump({"propensity": PropensityModel(final, tuple(X.columns))}, tmp_path / "m.skops")
    assert set(sio.get_untrusted_types(file=tmp_path / "m.skops")) <= ALLOWED_TYPES
