"""Model artifacts and their metadata on disk: save, list, verify and load.

Every trained model lives in `<models_dir>/<model_id>/`: `model.skops` (the fitted objects,
serialised with skops, never pickle), `metadata.json` (what it was trained on, how well it did,
the artifact's sha256) and `report.md`. Loading checks the sha256 first, then refuses any type
in the artifact outside an explicit allow-list before anything is deserialised.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import skops.io as sio

from ml.customer_value import ValueModels
from ml.drift import DriftReference
from ml.errors import SegmartError
from ml.explain import ReasonCoder
from ml.propensity import PropensityModel
from ml.segments import Segmenter

ARTIFACT = "model.skops"
METADATA = "metadata.json"
REPORT = "report.md"
LATEST = "latest"

ALLOWED_TYPES = frozenset(
    {
        # Ours: plain containers of fitted scikit-learn objects and NumPy arrays.
        "ml.customer_value.ValueModels",
        "ml.drift.DriftReference",
        "ml.explain.ReasonCoder",
        "ml.propensity.PropensityModel",
        "ml.segments.Segmenter",
        "ml.value.bgnbd.BetaGeoModel",
        "ml.value.gamma_gamma.GammaGammaModel",
        # scikit-learn internals of the four algorithms, two calibrations and the averaging.
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
        "sklearn.utils._bunch.Bunch",  # a dict: VotingClassifier's named_estimators_
    }
)
"""Types a model artifact may contain beyond those skops trusts by default."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a model was trained on, how, and how well: `metadata.json`.

    Dates are ISO strings so the JSON file is readable as is.
    """

    model_id: str
    trained_at: str
    algorithm: str
    params: dict
    random_state: int
    feature_columns: tuple[str, ...]
    column_dtypes: dict[str, str]
    feature_stats_id: str
    feature_stats_fitted_as_of: str
    snapshots: tuple[str, ...]
    validation_snapshot: str
    as_of: str
    horizon_days: int
    n_training_rows: int
    n_validation_rows: int
    training_data_sha256: str
    threshold: float
    calibration: str
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    segments: dict
    library_versions: dict[str, str]
    artifact_sha256: str = ""
    extra: dict = field(default_factory=dict)
    # Model inputs of the mart left out before fitting, and why (ml.training.check_overlap).
    dropped_inputs: dict[str, str] = field(default_factory=dict)
    # One-hot slot column -> the level learned in it (ml.feature_stats), e.g. region__level_1.
    one_hot_levels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The metadata as indented JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        """Parse `metadata.json`, ignoring keys this version does not know."""
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in raw.items() if key in known}
        for key in ("feature_columns", "snapshots"):
            values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class LoadedModel:
    """A model's metadata and every fitted object the score job needs."""

    metadata: ModelMetadata
    propensity: PropensityModel
    segmenter: Segmenter
    segment_names: dict[int, tuple[str, str]]
    drift: DriftReference
    reasons: ReasonCoder
    # BG/NBD and Gamma-Gamma fitted at as_of; None in models trained before they existed.
    value: ValueModels | None = None

    def artifact(self) -> dict:
        """What goes into `model.skops` (everything but the metadata)."""
        return {
            "value": self.value,
            "propensity": self.propensity,
            "segmenter": self.segmenter,
            "segment_names": {int(k): list(v) for k, v in self.segment_names.items()},
            "drift": self.drift,
            "reasons": self.reasons,
        }


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(models_dir: Path, model: LoadedModel, report: str) -> ModelMetadata:
    """Write a model directory atomically and return its metadata with the artifact's sha256.

    Everything is written to a hidden temporary directory first and renamed into place, so
    a crash never leaves a half-written model that `list_models` would show.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / model.metadata.model_id
    if final.exists():
        raise SegmartError(f"model directory {final} already exists; refusing to overwrite it")
    staging = models_dir / f".tmp-{model.metadata.model_id}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        sio.dump(model.artifact(), staging / ARTIFACT)
        metadata = _with_sha(model.metadata, sha256_file(staging / ARTIFACT))
        (staging / METADATA).write_text(metadata.to_json() + "\n")
        (staging / REPORT).write_text(report)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return metadata


def _with_sha(metadata: ModelMetadata, sha: str) -> ModelMetadata:
    return ModelMetadata(**{**asdict(metadata), "artifact_sha256": sha})


def remove_model(models_dir: Path, model_id: str) -> None:
    """Delete a model directory (used to undo a save whose run could not be recorded)."""
    shutil.rmtree(models_dir / model_id, ignore_errors=True)


def list_models(models_dir: Path) -> list[ModelMetadata]:
    """Every saved model, oldest first.

    Parameters
    ----------
    models_dir : Path
        The registry directory (`Settings.models_dir`).

    Returns
    -------
    list of ModelMetadata
        Sorted by training time, then id.
    """
    if not models_dir.is_dir():
        return []
    found = []
    for path in sorted(models_dir.glob(f"*/{METADATA}")):
        if path.parent.name.startswith("."):
            continue
        try:
            found.append(ModelMetadata.from_json(path.read_text()))
        except (ValueError, KeyError, TypeError) as error:
            raise SegmartError(f"model metadata {path} is unreadable ({error})") from error
    return sorted(found, key=lambda m: (m.trained_at, m.model_id))


def load_metadata(models_dir: Path, model_ref: str = LATEST) -> ModelMetadata:
    """Metadata of the model `model_ref`: a model id, or "latest".

    Raises
    ------
    SegmartError
        No models yet, or an unknown id.
    """
    models = list_models(models_dir)
    if not models:
        raise SegmartError(f"no trained models in {models_dir}: run `segmart train` first")
    if model_ref == LATEST:
        return models[-1]
    for metadata in models:
        if metadata.model_id == model_ref:
            return metadata
    known = ", ".join(m.model_id for m in models[-5:])
    raise SegmartError(
        f"unknown model id {model_ref!r} in {models_dir} (latest: {known}); "
        "see `segmart models` for the list"
    )


def load_model(models_dir: Path, model_ref: str = LATEST) -> LoadedModel:
    """Verify and load a model: sha256 first, then the type allow-list, then deserialise.

    Raises
    ------
    SegmartError
        The artifact is missing, was modified after training, is not a skops file, or holds
        types outside `ALLOWED_TYPES`.
    """
    metadata = load_metadata(models_dir, model_ref)
    path = models_dir / metadata.model_id / ARTIFACT
    if not path.is_file():
        raise SegmartError(f"model artifact {path} is missing: retrain with `segmart train`")
    digest = sha256_file(path)
    if digest != metadata.artifact_sha256:
        raise SegmartError(
            f"model artifact {path} was modified after training (sha256 {digest[:12]}... but "
            f"metadata.json records {metadata.artifact_sha256[:12]}...): restore it or retrain"
        )
    artifact = _load_trusted(path)
    return LoadedModel(
        metadata=metadata,
        propensity=artifact["propensity"],
        segmenter=artifact["segmenter"],
        segment_names={int(k): (v[0], v[1]) for k, v in artifact["segment_names"].items()},
        drift=artifact["drift"],
        reasons=artifact["reasons"],
        value=artifact.get("value"),
    )


def _load_trusted(path: Path) -> dict:
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as error:
        raise SegmartError(
            f"model artifact {path} is not a skops file; refusing to load it ({error})"
        ) from error
    unexpected = sorted(set(untrusted) - ALLOWED_TYPES)
    if unexpected:
        raise SegmartError(
            f"model artifact {path} contains types outside the allow-list {unexpected}; "
            "refusing to load it"
        )
    artifact = sio.load(path, trusted=untrusted)
    expected = {"propensity", "segmenter", "segment_names", "drift", "reasons"}
    # Models saved before the value models lack "value".
    if not isinstance(artifact, dict) or set(artifact) - {"value"} != expected:
        raise SegmartError(f"model artifact {path} does not hold a segmart model")
    return artifact
