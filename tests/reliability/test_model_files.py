"""Model files: `segmart score --model ID` refuses an artifact that is not what training wrote.

Three attacks on `models/<id>/model.skops`: bytes changed after training (sha256 mismatch); an
arbitrary pickle put in its place, with and without metadata.json's sha256 rewritten to match;
and a well-formed skops file holding a type outside the allow-list. Each is refused with one
line before anything is deserialised (the pickle's payload would create a file), and the scores
in the warehouse and the published BI file stay as they were.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import skops.io as sio

from tests.reliability.conftest import Workspace, assert_one_line_error, digests

pytestmark = pytest.mark.integration


class _Payload:
    """Unpickling this runs `touch <marker>`: proof that the pickle was (not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch '{self.marker}'",))


def _latest_model(workspace: Workspace) -> Path:
    metadata = [json.loads(p.read_text()) for p in workspace.models_dir.glob("*/metadata.json")]
    latest = max(metadata, key=lambda m: (m["trained_at"], m["model_id"]))
    return workspace.models_dir / latest["model_id"]


def _record_sha(model_dir: Path) -> None:
    """What an attacker with write access to the registry would also do."""
    path = model_dir / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["artifact_sha256"] = hashlib.sha256(
        (model_dir / "model.skops").read_bytes()
    ).hexdigest()
    path.write_text(json.dumps(metadata))


def _append_byte(model_dir: Path, marker: Path) -> None:
    with (model_dir / "model.skops").open("ab") as handle:
        handle.write(b"\0")


def _pickle(model_dir: Path, marker: Path) -> None:
    (model_dir / "model.skops").write_bytes(pickle.dumps(_Payload(marker)))


def _pickle_with_matching_sha(model_dir: Path, marker: Path) -> None:
    _pickle(model_dir, marker)
    _record_sha(model_dir)


def _skops_with_foreign_type(model_dir: Path, marker: Path) -> None:
    artifact = {
        "propensity": argparse.Namespace(marker=str(marker)),
        "segmenter": None,
        "segment_names": {},
        "drift": None,
        "reasons": None,
    }
    sio.dump(artifact, model_dir / "model.skops")
    _record_sha(model_dir)


ATTACKS: dict[str, tuple[Callable[[Path, Path], None], list[str]]] = {
    "tampered_bytes": (_append_byte, ["was modified after training", "restore it or retrain"]),
    "pickle_in_place_of_skops": (_pickle, ["was modified after training"]),
    "pickle_with_rewritten_sha256": (_pickle_with_matching_sha, ["is not a skops file"]),
    "skops_with_a_foreign_type": (
        _skops_with_foreign_type,
        ["outside the allow-list", "argparse.Namespace"],
    ),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_model_artifact_not_written_by_training_is_refused(
    last_good: Workspace, tmp_path: Path, attack: str
) -> None:
    tamper, fragments = ATTACKS[attack]
    model_dir = _latest_model(last_good)
    marker = tmp_path / "payload-ran"
    tamper(model_dir, marker)
    scores_before = digests(last_good.warehouse, ("predictions",))
    published_before = digests(last_good.published)

    result = last_good.cli("score", "--model", model_dir.name)

    assert_one_line_error(result, str(model_dir / "model.skops"), *fragments)
    assert not marker.exists(), "the artifact was deserialised"
    assert digests(last_good.warehouse, ("predictions",)) == scores_before
    assert digests(last_good.published) == published_before
