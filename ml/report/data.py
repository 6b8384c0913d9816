"""What the report shows, read once: warehouse read-only, registry metadata from files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ml.config import Settings
from ml.errors import SegmartError
from ml.run.coverage import Gap, find_gaps, read_coverage
from ml.warehouse import connect, query, table_exists


@dataclass(frozen=True)
class Outcomes:
    """Scores next to what happened, and where both come from."""

    name: str
    description: str
    y_true: np.ndarray
    score: np.ndarray


@dataclass
class ReportData:
    """Everything the report shows, read once from the warehouse and the registry."""

    model_id: str | None
    as_of: date | None
    horizon_days: int
    model_run: dict = field(default_factory=dict)
    segment_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    segment_profiles: pd.DataFrame = field(default_factory=pd.DataFrame)
    segment_transitions: pd.DataFrame = field(default_factory=pd.DataFrame)
    rfm_cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    audience_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)
    campaign_results: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    reason_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_importance: pd.DataFrame = field(default_factory=pd.DataFrame)
    outcomes: list[Outcomes] = field(default_factory=list)
    validation_curves: dict = field(default_factory=dict)
    validation_description: str = ""
    # metadata.json extra.revenue_model.backtest: windows with metrics and revenue gains.
    backtest: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


def _frame(con: object, sql: str, params: list | None = None) -> pd.DataFrame:
    return query(con, sql, params).to_pandas()


def _table_or_empty(con: object, name: str, sql: str, notes: list[str]) -> pd.DataFrame:
    if not table_exists(con, name):
        notes.append(f"{name} is missing from the warehouse; its chart is empty.")
        return pd.DataFrame()
    return _frame(con, sql)


def _registry_files(models_dir: Path, model_id: str | None) -> tuple[dict, Path | None]:
    if not model_id:
        return {}, None
    model_dir = models_dir / model_id
    path = model_dir / "metadata.json"
    if not path.exists():
        return {}, model_dir
    return json.loads(path.read_text()), model_dir


def _metadata_value(metadata: dict, *keys: str) -> object:
    """The first of `keys` found at the top of metadata.json or under its `extra`."""
    for where in (metadata, metadata.get("extra") or {}):
        for key in keys:
            if where.get(key):
                return where[key]
    return None


def _importance_frame(metadata: dict) -> pd.DataFrame:
    raw = _metadata_value(metadata, "feature_importance", "feature_importances")
    if isinstance(raw, dict):
        return pd.DataFrame({"feature": list(raw), "importance": list(raw.values())})
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return pd.DataFrame(raw).rename(columns={"value": "importance"})[["feature", "importance"]]
    return pd.DataFrame()


def _validation_outcomes(metadata: dict, model_dir: Path | None) -> list[Outcomes]:
    if model_dir is None:
        return []
    path = model_dir / "validation_predictions.parquet"
    if not path.exists():
        return []
    frame = pd.read_parquet(path)
    label = next((c for c in ("y_true", "label", "purchased_in_horizon") if c in frame), None)
    score = next((c for c in ("score", "y_score", "purchase_probability") if c in frame), None)
    if label is None or score is None:
        return []
    return [
        Outcomes(
            "validation",
            "the ML step's held-out validation rows (registry validation_predictions.parquet)",
            frame[label].to_numpy(dtype=float),
            frame[score].to_numpy(dtype=float),
        )
    ]


def _out_of_time_outcomes(con: object, as_of: date, horizon_days: int) -> Outcomes | None:
    """Scores at as_of vs counted purchases in [as_of, as_of + horizon), if the data covers it."""
    covered = _frame(
        con,
        "select max(ordered_on) >= cast(? as date) + ? - 1 as covered from core.orders",
        [as_of, horizon_days],
    )
    if covered.empty or not bool(covered["covered"].iloc[0]):
        return None
    frame = _frame(
        con,
        """
        with buyers as (
            select distinct customer_id
            from core.orders
            where is_counted_purchase
                and ordered_on >= cast(? as date)
                and ordered_on < cast(? as date) + ?
        )
        select
            customer_scores.purchase_probability as score,
            buyers.customer_id is not null as purchased,
        from predictions.customer_scores
        left join buyers
            on customer_scores.customer_id = buyers.customer_id
        order by customer_scores.customer_id
        """,
        [as_of, as_of, horizon_days],
    )
    if frame.empty or frame["purchased"].nunique() < 2:
        return None
    return Outcomes(
        "out of time",
        f"scores as of {as_of} vs counted purchases in the {horizon_days} days after, which the"
        " warehouse already holds (a backtest)",
        frame["purchased"].to_numpy(dtype=float),
        frame["score"].to_numpy(dtype=float),
    )


def _latest_transitions(con: object, notes: list[str]) -> pd.DataFrame:
    """marketing.segment_transitions between the two latest scored as_of dates (or empty)."""
    return _table_or_empty(
        con,
        "marketing.segment_transitions",
        "select * from marketing.segment_transitions"
        " where to_as_of = (select max(to_as_of) from marketing.segment_transitions)",
        notes,
    )


def load_report_data(settings: Settings) -> ReportData:
    """Read everything the report shows: warehouse read-only, registry metadata from files."""
    notes: list[str] = []
    with connect(settings.warehouse, read_only=True) as con:
        if not table_exists(con, "predictions.customer_scores"):
            raise SegmartError(
                "predictions.customer_scores is missing: run `segmart score` (or `segmart run`)"
                " before writing the report"
            )
        run = _frame(
            con,
            "select any_value(model_id) as model_id, max(as_of) as as_of,"
            " count(distinct model_id) as n_models from predictions.customer_scores",
        )
        model_id = run["model_id"].iloc[0]
        as_of = pd.Timestamp(run["as_of"].iloc[0]).date() if run["as_of"].notna().all() else None
        metadata, model_dir = _registry_files(settings.models_dir, model_id)
        # The horizon the scores predict is the model's, whatever this invocation's default.
        horizon_days = int(metadata.get("horizon_days") or settings.horizon_days)
        data = ReportData(model_id=model_id, as_of=as_of, horizon_days=horizon_days)
        if table_exists(con, "predictions.model_runs"):
            runs = _frame(
                con, "select * from predictions.model_runs where model_id = ?", [model_id]
            )
            if not runs.empty:
                data.model_run = {
                    key: (value.item() if hasattr(value, "item") else value)
                    for key, value in runs.iloc[0].to_dict().items()
                }
        data.segment_summary = _table_or_empty(
            con, "marketing.segment_summary", "select * from marketing.segment_summary", notes
        )
        data.segment_profiles = _table_or_empty(
            con,
            "predictions.segment_profiles",
            "select * from predictions.segment_profiles",
            notes,
        )
        data.segment_transitions = _latest_transitions(con, notes)
        data.rfm_cells = _table_or_empty(
            con,
            "marketing.rfm_scores",
            "select recency_score, frequency_score, rfm_group, count(*) as n_customers"
            " from marketing.rfm_scores where recency_score is not null group by all",
            notes,
        )
        data.audience_summary = _table_or_empty(
            con, "marketing.audience_summary", "select * from marketing.audience_summary", notes
        )
        data.recommendations = _table_or_empty(
            con,
            "marketing.customer_recommendations",
            "select category, source, count(*) as n_customers"
            " from marketing.customer_recommendations where rank = 1 group by all",
            notes,
        )
        data.campaign_results = _table_or_empty(
            con, "marketing.campaign_results", "select * from marketing.campaign_results", notes
        )
        data.feature_drift = _table_or_empty(
            con, "predictions.feature_drift", "select * from predictions.feature_drift", notes
        )
        data.reason_counts = _frame(
            con,
            "select reason_1 as feature, count(*) / sum(count(*)) over () as share"
            " from predictions.customer_scores where reason_1 is not null group by 1",
        )
        if as_of is not None and table_exists(con, "core.orders"):
            out_of_time = _out_of_time_outcomes(con, as_of, horizon_days)
            if out_of_time is not None:
                data.outcomes.append(out_of_time)
        data.gaps = find_gaps(read_coverage(con))
    if model_id and not metadata:
        notes.append(f"no registry metadata at {settings.models_dir / str(model_id)}.")
    data.outcomes[:0] = _validation_outcomes(metadata, model_dir)
    curves = _metadata_value(metadata, "validation_curves", "curves") or {}
    data.validation_curves = curves if isinstance(curves, dict) else {}
    data.validation_description = (
        f"validation (registry): the model's held-out snapshot"
        f" {metadata.get('validation_snapshot', '?')}"
        f" ({metadata.get('n_validation_rows', '?')} customers), curve points from"
        " metadata.json"
    )
    data.feature_importance = _importance_frame(metadata)
    revenue_model = _metadata_value(metadata, "revenue_model")
    if isinstance(revenue_model, dict):
        data.backtest = revenue_model.get("backtest") or {}
    if not data.outcomes and not data.validation_curves:
        notes.append(
            "Model-quality charts are empty: the registry holds no validation predictions or"
            " curves, and the data does not cover the horizon after as_of."
        )
    # A gap without a section of its own (web events feed features only) is said up front.
    data.notes = [gap.sentence for gap in data.gaps if not gap.sections] + notes
    return data
