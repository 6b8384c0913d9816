"""Promotion: make a saved model the champion that `segmart score` and `segmart run` use.

The registry (`ml.registry`) reads models and the champion marker from disk; promoting also
writes to the warehouse (a row of `predictions.model_promotions` and the champion's scoring SQL),
so it lives apart from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from ml import registry, warehouse
from ml.errors import SegmartError
from ml.registry import ChampionMarker
from ml.serving import champion_sql

if TYPE_CHECKING:
    from ml.config import Settings

PROMOTIONS_TABLE = "predictions.model_promotions"
_PROMOTION_SCHEMA = pa.schema(
    [
        ("model_id", pa.string()),
        ("promoted_at", pa.timestamp("us")),
        ("previous_model_id", pa.string()),
        ("reason", pa.string()),
        ("artifact_sha256", pa.string()),
    ]
)


def promote(settings: Settings, model_id: str, reason: str) -> ChampionMarker:
    """Make a model the champion: record the promotion, then swap `champion.json`.

    The model must exist and its artifact must verify (sha256 and type allow-list) before
    anything is written. The row in `predictions.model_promotions` and the champion's scoring SQL
    are written first, in one transaction, and the marker is replaced atomically after them, so
    a failure leaves the previous champion in place.

    Parameters
    ----------
    settings : Settings
        The registry (`models_dir`) and the warehouse that records promotions.
    model_id : str
        The model to promote (not "latest": a promotion names what it promotes).
    reason : str
        Why, in one line: kept in the promotions table and the marker.

    Returns
    -------
    ChampionMarker
        The new marker.

    Raises
    ------
    SegmartError
        Unknown id, an artifact that fails verification, or no warehouse; nothing is changed.
    """
    metadata = registry.load_metadata(settings.models_dir, model_id)
    if metadata.model_id != model_id:
        raise SegmartError(f"promote a model by its id, not {model_id!r} (`segmart models list`)")
    scoring = champion_sql.compile_model(registry.load_model(settings.models_dir, model_id))
    if not settings.warehouse.is_file():
        raise SegmartError(
            f"warehouse {settings.warehouse} does not exist: pass the --warehouse the model was"
            " trained on"
        )
    previous = registry.champion_id(settings.models_dir)
    marker = ChampionMarker(
        model_id=model_id,
        promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason,
        artifact_sha256=metadata.artifact_sha256,
    )
    draft = settings.models_dir / f".{registry.CHAMPION_FILE}.{os.getpid()}.tmp"
    draft.write_text(json.dumps(asdict(marker), indent=2) + "\n")
    try:
        with warehouse.connect(settings.warehouse) as con:
            row = _promotion_row(marker, previous)
            champion_sql.publish(settings.models_dir, con, scoring, {PROMOTIONS_TABLE: row})
        os.replace(draft, settings.models_dir / registry.CHAMPION_FILE)
    finally:
        draft.unlink(missing_ok=True)
    return marker


def _promotion_row(marker: ChampionMarker, previous: str | None) -> pa.Table:
    row = {
        "model_id": marker.model_id,
        "promoted_at": datetime.fromisoformat(marker.promoted_at).replace(tzinfo=None),
        "previous_model_id": previous,
        "reason": marker.reason,
        "artifact_sha256": marker.artifact_sha256,
    }
    return pa.Table.from_pylist([row], schema=_PROMOTION_SCHEMA)
