import json
import pickle
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from ml import promotion, registry, warehouse
from ml.errors import SegmartError
from ml.modelling.propensity import ALGORITHMS, PropensityModel, fit_cross_fitted
from ml.modelling.training import TrainOptions, train
from ml.registry import ALLOWED_TYPES, ARTIFACT, METADATA
from tests.ml.synthetic import (
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


def test_an_artifact_saved_before_ml_was_grouped_into_subpackages_still_loads(
    trained, models_dir, tmp_path
):
    report = trained
    artifact = models_dir / report.model_id / ARTIFACT
    older = tmp_path / "older.skops"
    # An older artifact is the same file with the types recorded under their old modules.
    with zipfile.ZipFile(artifact) as current, zipfile.ZipFile(older, "w") as rewritten:
        for item in current.infolist():
            data = current.read(item)
            if item.filename == "schema.json":
                text = data.decode()
                for old, new in registry.MOVED_MODULES.items():
                    text = text.replace(f'"{new}"', f'"{old}"')
                assert '"ml.modelling.propensity"' not in text
                data = text.encode()
            rewritten.writestr(item, data)
    _replace_artifact(models_dir, report.model_id, older.read_bytes())

    loaded = registry.load_model(models_dir, report.model_id)

    assert type(loaded.propensity) is PropensityModel


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


# --- The champion ---------------------------------------------------------------------------


@pytest.fixture
def lifecycle(trained, models_dir, tmp_path):
    """Settings over the private registry copy and an empty warehouse of its own."""
    settings = replace(
        settings_for(tmp_path), models_dir=models_dir, warehouse=tmp_path / "w.duckdb"
    )
    with warehouse.connect(settings.warehouse):
        pass
    return settings


def _promotions(settings) -> list[tuple]:
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        if not warehouse.table_exists(con, promotion.PROMOTIONS_TABLE):
            return []
        sql = f"select model_id, previous_model_id, reason from {promotion.PROMOTIONS_TABLE}"
        return con.execute(sql).fetchall()


def _second_model(models_dir: Path, model_id: str) -> str:
    """A copy of a model under a later id: a second, equally valid registry entry."""
    other = "29990101T000000Z-11111111"
    shutil.copytree(models_dir / model_id, models_dir / other)
    metadata = json.loads((models_dir / other / METADATA).read_text())
    metadata |= {"model_id": other, "trained_at": "2999-01-01T00:00:00+00:00"}
    (models_dir / other / METADATA).write_text(json.dumps(metadata))
    return other


def test_without_a_promotion_there_is_no_champion_and_scoring_falls_back_to_latest(lifecycle):
    assert registry.champion_id(lifecycle.models_dir) is None
    ref, note = registry.default_model_ref(lifecycle.models_dir)
    assert ref == registry.LATEST and "segmart models promote" in note and "\n" not in note
    with pytest.raises(SegmartError, match=r"no champion in .*segmart models promote"):
        registry.load_model(lifecycle.models_dir, registry.CHAMPION)


def test_promoting_marks_the_champion_records_why_and_loads_it_by_name(trained, lifecycle):
    first = trained.model_id
    other = _second_model(lifecycle.models_dir, first)
    promotion.promote(lifecycle, first, "first model")
    promotion.promote(lifecycle, other, "beat it")
    assert registry.champion_id(lifecycle.models_dir) == other
    assert registry.default_model_ref(lifecycle.models_dir) == (registry.CHAMPION, None)
    assert registry.load_model(lifecycle.models_dir, registry.CHAMPION).metadata.model_id == other
    assert _promotions(lifecycle) == [(first, None, "first model"), (other, first, "beat it")]
    marker = json.loads((lifecycle.models_dir / registry.CHAMPION_FILE).read_text())
    assert marker["model_id"] == other and marker["reason"] == "beat it"
    assert not list(lifecycle.models_dir.glob(".*.tmp"))


@pytest.mark.parametrize("model_ref", ["nope", registry.LATEST, registry.CHAMPION])
def test_promoting_anything_but_a_known_id_is_a_one_line_error_that_changes_nothing(
    trained, lifecycle, model_ref
):
    promotion.promote(lifecycle, trained.model_id, "first model")
    marker = (lifecycle.models_dir / registry.CHAMPION_FILE).read_bytes()
    with pytest.raises(SegmartError) as error:
        promotion.promote(lifecycle, model_ref, "oops")
    assert "\n" not in str(error.value)
    assert (lifecycle.models_dir / registry.CHAMPION_FILE).read_bytes() == marker
    assert _promotions(lifecycle) == [(trained.model_id, None, "first model")]


def test_promoting_a_model_whose_artifact_fails_its_checksum_changes_nothing(trained, lifecycle):
    other = _second_model(lifecycle.models_dir, trained.model_id)
    promotion.promote(lifecycle, trained.model_id, "first model")
    artifact = lifecycle.models_dir / other / ARTIFACT
    artifact.write_bytes(artifact.read_bytes()[:-10])
    with pytest.raises(SegmartError, match="was modified after training"):
        promotion.promote(lifecycle, other, "tampered")
    assert registry.champion_id(lifecycle.models_dir) == trained.model_id
    assert len(_promotions(lifecycle)) == 1


def test_a_champion_tampered_after_its_promotion_is_refused_when_loaded(trained, lifecycle):
    promotion.promote(lifecycle, trained.model_id, "first model")
    # A thorough attacker also fixes up metadata.json: the marker still knows the promoted hash.
    _replace_artifact(lifecycle.models_dir, trained.model_id, b"not the promoted model")
    with pytest.raises(SegmartError, match="changed after its promotion") as error:
        registry.load_model(lifecycle.models_dir, registry.CHAMPION)
    assert "\n" not in str(error.value)


def test_a_champion_whose_directory_is_gone_says_to_promote_another_or_retrain(trained, lifecycle):
    other = _second_model(lifecycle.models_dir, trained.model_id)
    promotion.promote(lifecycle, trained.model_id, "first model")
    shutil.rmtree(lifecycle.models_dir / trained.model_id)
    with pytest.raises(SegmartError, match=r"no longer in .*promote another.*--retrain"):
        registry.load_metadata(lifecycle.models_dir, registry.CHAMPION)
    # Never silently another model: `latest` is still the one left.
    assert registry.load_metadata(lifecycle.models_dir, registry.LATEST).model_id == other
