"""Model artifacts and their metadata on disk: save, list, verify and load.

Every trained model lives in `<models_dir>/<model_id>/`: `model.skops` (the fitted objects,
serialised with skops, never pickle), `metadata.json` (what it was trained on, how well it did,
the artifact's sha256) and `report.md`. Loading checks the sha256 first, then refuses any type
in the artifact outside an explicit allow-list before anything is deserialised.

One model is the champion (`<models_dir>/champion.json`): what `segmart score` and `segmart run`
use unless told otherwise. Promoting one writes to the warehouse too (`ml.promotion`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import skops.io as sio

from ml.errors import SegmartError
from ml.modelling.explain import ReasonCoder
from ml.modelling.propensity import PropensityModel
from ml.segments import Segmenter
from ml.serving.drift import DriftReference
from ml.value.customer_value import ValueModels
from ml.value.revenue import SpendModel

ARTIFACT = "model.skops"
METADATA = "metadata.json"
REPORT = "report.md"
LATEST = "latest"

ALLOWED_TYPES = frozenset(
    {
        # Ours: plain containers of fitted scikit-learn objects and NumPy arrays.
        "ml.value.customer_value.ValueModels",
        "ml.serving.drift.DriftReference",
        "ml.modelling.explain.ReasonCoder",
        "ml.modelling.propensity.PropensityModel",
        "ml.value.revenue.SpendModel",
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

MOVED_MODULES = {
    "ml.customer_value": "ml.value.customer_value",
    "ml.drift": "ml.serving.drift",
    "ml.explain": "ml.modelling.explain",
    "ml.propensity": "ml.modelling.propensity",
    "ml.revenue": "ml.value.revenue",
}
"""Where the modules that artifacts saved before ml/ was grouped into subpackages name went."""


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
    # Model inputs of the mart left out before fitting, and why (ml.modelling.input_overlap).
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
    # Expected spend given a purchase; None when the shop's revenue could not support it.
    spend: SpendModel | None = None

    def artifact(self) -> dict:
        """What goes into `model.skops` (everything but the metadata)."""
        return {
            "value": self.value,
            "spend": self.spend,
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
    """Metadata of the model `model_ref`: a model id, "latest" or "champion".

    Raises
    ------
    SegmartError
        No models yet, an unknown id, no champion, or a champion that is gone or was changed
        since its promotion.
    """
    models = list_models(models_dir)
    if not models:
        raise SegmartError(f"no trained models in {models_dir}: run `segmart train` first")
    if model_ref == LATEST:
        return models[-1]
    if model_ref == CHAMPION:
        return _champion_metadata(models_dir, models)
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
    artifact = _load_trusted(verified_artifact(models_dir, metadata))
    return LoadedModel(
        metadata=metadata,
        propensity=artifact["propensity"],
        segmenter=artifact["segmenter"],
        segment_names={int(k): (v[0], v[1]) for k, v in artifact["segment_names"].items()},
        drift=artifact["drift"],
        reasons=artifact["reasons"],
        value=artifact.get("value"),
        spend=artifact.get("spend"),
    )


def verified_artifact(models_dir: Path, metadata: ModelMetadata) -> Path:
    """The path of a model's artifact, once its sha256 matches the one recorded at training.

    Raises
    ------
    SegmartError
        The artifact is missing or was modified after training.
    """
    path = models_dir / metadata.model_id / ARTIFACT
    if not path.is_file():
        raise SegmartError(f"model artifact {path} is missing: retrain with `segmart train`")
    digest = sha256_file(path)
    if digest != metadata.artifact_sha256:
        raise SegmartError(
            f"model artifact {path} was modified after training (sha256 {digest[:12]}... but "
            f"metadata.json records {metadata.artifact_sha256[:12]}...): restore it or retrain"
        )
    return path


def _load_trusted(path: Path) -> dict:
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as error:
        raise SegmartError(
            f"model artifact {path} is not a skops file; refusing to load it ({error})"
        ) from error
    unexpected = sorted({_moved(name) for name in untrusted} - ALLOWED_TYPES)
    if unexpected:
        raise SegmartError(
            f"model artifact {path} contains types outside the allow-list {unexpected}; "
            "refusing to load it"
        )
    _alias_moved_modules(untrusted)
    artifact = sio.load(path, trusted=untrusted)
    expected = {"propensity", "segmenter", "segment_names", "drift", "reasons"}
    # Models saved before the value and spend models lack "value" and "spend".
    if not isinstance(artifact, dict) or set(artifact) - {"value", "spend"} != expected:
        raise SegmartError(f"model artifact {path} does not hold a segmart model")
    return artifact


def _moved(type_name: str) -> str:
    """A type's name under the module that holds it now."""
    module, _, name = type_name.rpartition(".")
    return f"{MOVED_MODULES.get(module, module)}.{name}"


def _alias_moved_modules(type_names: list[str]) -> None:
    """Let skops import an older artifact's types by the module names it recorded."""
    for type_name in type_names:
        module = type_name.rpartition(".")[0]
        if module in MOVED_MODULES:
            sys.modules.setdefault(module, importlib.import_module(MOVED_MODULES[module]))


# --- The champion: the model `segmart score` and `segmart run` use unless told otherwise ---

CHAMPION = "champion"
CHAMPION_FILE = "champion.json"


@dataclass(frozen=True)
class ChampionMarker:
    """`<models_dir>/champion.json`: which model is the champion, since when and why."""

    model_id: str
    promoted_at: str
    reason: str
    artifact_sha256: str


def read_champion(models_dir: Path) -> ChampionMarker | None:
    """The champion marker, or None when no model was ever promoted.

    Raises
    ------
    SegmartError
        The marker exists but cannot be read.
    """
    path = models_dir / CHAMPION_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return ChampionMarker(**{f.name: str(raw[f.name]) for f in fields(ChampionMarker)})
    except (ValueError, KeyError, TypeError) as error:
        raise SegmartError(
            f"champion marker {path} is unreadable ({error}): promote a model again with"
            " `segmart models promote ID`"
        ) from error


def champion_id(models_dir: Path) -> str | None:
    """Id of the promoted model, or None when no model was ever promoted.

    Parameters
    ----------
    models_dir : Path
        The registry directory (`Settings.models_dir`).

    Returns
    -------
    str or None
        The id recorded in `champion.json`; callers that need a model anyway fall back to
        `LATEST`.
    """
    marker = read_champion(models_dir)
    return marker.model_id if marker else None


def default_model_ref(models_dir: Path) -> tuple[str, str | None]:
    """What to score with when no model is named: the champion, else the latest model.

    Returns
    -------
    (str, str or None)
        The model reference, and a one-line note when it falls back to the latest model.
    """
    if champion_id(models_dir) is not None:
        return CHAMPION, None
    return LATEST, (
        "no champion promoted yet: using the latest model (promote one with"
        " `segmart models promote ID`)"
    )


def _champion_metadata(models_dir: Path, models: list[ModelMetadata]) -> ModelMetadata:
    """The champion's metadata, refused when it is gone or differs from what was promoted."""
    marker = read_champion(models_dir)
    if marker is None:
        raise SegmartError(
            f"no champion in {models_dir}: promote a model with `segmart models promote ID`"
            " (see `segmart models list`)"
        )
    found = [metadata for metadata in models if metadata.model_id == marker.model_id]
    if not found:
        raise SegmartError(
            f"champion {marker.model_id} is no longer in {models_dir}: promote another model"
            " with `segmart models promote ID`, or train a new one with `segmart run --retrain`"
        )
    if found[0].artifact_sha256 != marker.artifact_sha256:
        raise SegmartError(
            f"champion {marker.model_id} was changed after its promotion (its metadata.json"
            f" records artifact sha256 {found[0].artifact_sha256[:12]}..., promoted with"
            f" {marker.artifact_sha256[:12]}...): restore it, promote another model or"
            " `segmart run --retrain`"
        )
    return found[0]
