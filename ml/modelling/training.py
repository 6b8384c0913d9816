"""The train job: read the training examples, fit and check every model, save, record the run.

Reading (`ml.training_examples`) and writing (the registry and `predictions.model_runs`)
happen only in `train`; everything between takes data and returns data. Nothing is written
until every model is fitted and every gate has passed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.ensemble import VotingClassifier
from threadpoolctl import threadpool_limits

from ml import registry, warehouse
from ml.config import Settings
from ml.errors import SegmartError
from ml.modelling import evaluate
from ml.modelling.examples import (
    TRAINING_TABLE,
    Examples,
    Split,
    built_as_of,
    built_horizon_days,
    check_trainable,
    read_examples,
    split_for_validation,
)
from ml.modelling.explain import ReasonCoder, feature_selection_report, permutation_importances
from ml.modelling.features import one_hot_levels, scaled_columns
from ml.modelling.input_overlap import check_overlap, read_scoring_inputs
from ml.modelling.propensity import (
    CANDIDATES,
    Algorithm,
    Candidate,
    PropensityModel,
    calibrate,
    fit_cross_fitted,
    search,
)
from ml.modelling.step_clock import StepClock
from ml.modelling.train_report import TrainReport, model_run_row, record_metadata
from ml.modelling.value_training import fit_revenue, fit_value, revenue_warnings
from ml.registry import LoadedModel
from ml.segments import (
    Segmenter,
    SegmentMatch,
    SegmentReference,
    SegmentSums,
    carry_names,
    centroids_in_new_space,
    describe_segments,
    name_segments,
)
from ml.serving.drift import DriftReference
from ml.value.customer_value import ValueModels
from ml.value.revenue import SpendModel

STATS_TABLE = "ml.feature_stats"
MODEL_RUNS_TABLE = "predictions.model_runs"


def default_threads() -> int | None:
    """One thread on a machine of two cores or fewer, else every core.

    On 2 cores the many small parallel regions of the gradient-boosting fits cost more than they
    save: training at M (1M customers) took 49.5 s with two threads and 41.1 s with one, on an
    idle machine (OMP_WAIT_POLICY=PASSIVE, 2026-11-30), with the same model and metrics.
    """
    return 1 if (os.cpu_count() or 1) <= 2 else None


@dataclass(frozen=True)
class TrainOptions:
    """How to train: the algorithm, the number of segments and the sampling."""

    algorithm: Algorithm = "hist_gradient_boosting"
    n_segments: int | None = None  # None: choose k automatically
    random_state: int = 42
    max_training_rows: int = 200_000  # deterministic sample (by customer hash) above this
    # OpenMP/BLAS threads; None uses every core. Use 1 when several jobs share the machine:
    # OpenMP threads spin while they wait, which slows oversubscribed cores by 10x and more.
    n_threads: int | None = field(default_factory=default_threads)


@dataclass(frozen=True)
class Trained:
    """Everything fitted in one training run, and how it did."""

    propensity: PropensityModel
    candidates: list[Candidate]
    params: dict
    calibration: str
    calibration_brier: dict[str, float]
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    importance: pd.DataFrame
    feature_selection: pd.DataFrame
    curves: dict
    segmenter: Segmenter
    segment_names: dict[int, tuple[str, str]]
    segments: pd.DataFrame
    drift: DriftReference
    reasons: ReasonCoder
    value: ValueModels | None = None
    segment_match: SegmentMatch | None = None
    spend: SpendModel | None = None


def fit_models(
    split: Split,
    options: TrainOptions,
    progress: Callable[[str], None] = lambda s: None,
    levels: dict[str, str] | None = None,
    reference: SegmentReference | None = None,
) -> Trained:
    """Select, evaluate and explain the classifier, fit the final one, segments and drift bins.

    The reported metrics are those of the search's winner on the validation part (see
    `Split`), calibrated out of fold. The shipped classifier is then refitted on every
    snapshot, which adds the most recent data and helped out of time by 0.005-0.01 AUC: one
    per half of the customers, each calibrated on the other half's latest snapshot, the two
    probabilities averaged. So calibration always sees scores of customers the model never
    saw, without holding back any data from the final fit. `levels` (slot column -> learned
    level) names the one-hot inputs in the feature-selection table; segments keep the ids of
    `reference`'s where they match (`fit_segments`).
    """
    seed, fit, validation = options.random_state, split.fit, split.validation
    n_candidates = len(CANDIDATES[options.algorithm])
    progress(f"fitting {n_candidates} {options.algorithm} candidates on {len(fit.label):,} rows")
    winner, candidates = search(
        options.algorithm, fit.X, fit.label, validation.X, validation.label, seed
    )
    params = max(candidates, key=lambda candidate: candidate.roc_auc).params
    progress(f"calibrating and validating on {len(validation.label):,} later rows")
    calibration = calibrate(winner, validation.X, validation.label, seed)
    proba, ids = calibration.out_of_fold_proba, validation.customer_id
    n_rows = sum(len(fold.label) for fold in split.folds)
    progress(f"fitting the final models on all {n_rows:,} rows")
    final, held_out = _fit_final(split, options, params, calibration.method)
    progress("explaining: permutation importance, feature selection, reason codes")
    importance = permutation_importances(winner, validation.X, validation.label, seed)
    weights = importance.set_index("feature")["importance"]
    reasons = ReasonCoder().fit(split.latest.X, held_out, importance=weights)
    selection = feature_selection_report(fit.X, fit.label, seed, levels=levels)
    progress("segmenting the latest snapshot's customers; binning features for drift")
    segmenter, names, segments, match = fit_segments(split.latest, held_out, options, reference)
    drift = DriftReference().fit(pd.concat([f.X for f in split.folds], ignore_index=True))
    return Trained(
        propensity=PropensityModel(final, fit.inputs),
        candidates=candidates,
        params=params,
        calibration=calibration.method,
        calibration_brier=calibration.brier_by_method,
        metrics=evaluate.classification_metrics(validation.label, proba, ids),
        baselines=evaluate.baseline_metrics(validation.label, validation.features, ids),
        importance=importance,
        feature_selection=selection,
        curves=evaluate.validation_curves(validation.label, proba, ids),
        segmenter=segmenter,
        segment_names=names,
        segments=segments,
        drift=drift,
        reasons=reasons,
        segment_match=match,
    )


def _fit_final(
    split: Split, options: TrainOptions, params: dict, method: str
) -> tuple[VotingClassifier, np.ndarray]:
    """The shipped classifier, and held-out probabilities of the latest snapshot's customers.

    Each latest customer's probability comes from the member that never saw them.
    """
    final, scored_other_fold = fit_cross_fitted(
        options.algorithm,
        params,
        method,
        options.random_state,
        train=[(fold.X, fold.label) for fold in split.folds],
        calibrate_on=[(split.latest_of(k).X, split.latest_of(k).label) for k in (0, 1)],
    )
    held_out = np.empty(len(split.latest.label))
    for k in (0, 1):
        held_out[split.latest.fold == 1 - k] = scored_other_fold[k]
    return final, held_out


def fit_segments(
    population: Examples,
    proba: np.ndarray,
    options: TrainOptions,
    reference: SegmentReference | None = None,
) -> tuple[Segmenter, dict[int, tuple[str, str]], pd.DataFrame, SegmentMatch | None]:
    """Cluster the latest snapshot's customers, order segments by value and name them.

    The latest training snapshot, not the as_of population, is clustered: it is the most
    recent population whose next-horizon revenue is known, so segments can be ordered by
    realised value rather than by a prediction, and the model stays a function of the one
    table it was trained from. With a `reference` (the promoted model), segments matching
    one of its segments keep its id and name, so BI and campaigns keyed on ids survive a
    retrain; value order then only decides the ids of new segments.
    """
    scaled = population.features[list(scaled_columns(population.inputs))]
    segmenter = Segmenter(n_segments=options.n_segments, random_state=options.random_state)
    segmenter.fit(scaled, population.value)
    match = reference.match(segmenter) if reference is not None else None
    if match is not None:
        segmenter = match.relabel(segmenter)
    sums = SegmentSums.of_frame(segmenter.predict(scaled), population.features, proba)
    profiles = sums.profiles()
    names = name_segments(profiles, sums.population_moments())
    if match is not None:
        names = carry_names(names, reference.names, match)
    return segmenter, names, describe_segments(profiles, names), match


def check_build(settings: Settings, table: pa.Table) -> None:
    """Refuse training examples built for another horizon or as_of than the settings ask."""
    horizon, as_of = built_horizon_days(table), built_as_of(table)
    if horizon != settings.horizon_days:
        raise SegmartError(
            f"{TRAINING_TABLE} was built with a {horizon}-day horizon, not "
            f"{settings.horizon_days}: rebuild with --horizon-days {settings.horizon_days}"
        )
    if settings.as_of is not None and settings.as_of != as_of:
        raise SegmartError(
            f"{TRAINING_TABLE} was built as of {as_of}, not {settings.as_of}: "
            f"rebuild with `segmart build --as-of {settings.as_of}`"
        )


def _read_one_hot_levels(con: duckdb.DuckDBPyConnection, table: pa.Table) -> dict[str, str]:
    """Slot column -> learned level, from the feature_stats rows the examples were built with."""
    if not warehouse.table_exists(con, STATS_TABLE) or table.num_rows == 0:
        return {}
    fitted_as_of = table.column("feature_stats_fitted_as_of")[0].as_py()
    rows = warehouse.query(
        con,
        f"select feature, slot, level from {STATS_TABLE}"
        " where fitted_as_of = ? and kind = 'onehot_level' and slot is not null"
        " order by feature, slot",
        [fitted_as_of],
    ).to_pylist()
    return one_hot_levels((row["feature"], row["slot"], row["level"]) for row in rows)


def train(
    settings: Settings,
    options: TrainOptions = TrainOptions(),
    progress: Callable[[str], None] = lambda s: None,
) -> TrainReport:
    """Train the propensity model and the segments, save them, and record the run.

    Parameters
    ----------
    settings : Settings
        Warehouse and models directory; `horizon_days` (and `as_of`, if set) must match the
        build of `ml.training_examples`.
    options : TrainOptions
        Algorithm, number of segments, seed and sampling.
    progress : callable
        Receives one line per step (and warnings).

    Returns
    -------
    TrainReport

    Raises
    ------
    SegmartError
        Missing table, too little data, or settings that do not match the build; nothing is
        written then.
    """
    started = time.perf_counter()
    progress = clock = StepClock(progress)
    progress(f"reading {TRAINING_TABLE}")
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        table, column_dtypes = read_examples(con, options.max_training_rows)
        examples = Examples.from_arrow(table)
        scoring, scoring_as_of = read_scoring_inputs(con, examples.inputs)
        levels = _read_one_hot_levels(con, table)
        reference = _segment_reference(settings, con, table, progress)
    # Before fitting: an input the scoring snapshot does not share with training is left out.
    overlap = check_overlap(examples, scoring, scoring_as_of)
    for feature, why in overlap.dropped.items():
        progress(f"leaving out {feature}: {why}")
    examples = examples.without(overlap.dropped)
    split = split_for_validation(examples)
    check_build(settings, table)
    check_trainable(split, options.n_segments)
    with threadpool_limits(limits=options.n_threads):
        trained = fit_models(split, options, progress, levels, reference)
    progress("fitting BG/NBD and Gamma-Gamma on ml.customer_value_inputs")
    value = fit_value(settings.warehouse, split, table)
    trained = replace(
        trained, baselines={**trained.baselines, **value.baselines}, value=value.shipped
    )
    progress("fitting the spend model; rolling-origin backtest of purchase and revenue")
    with threadpool_limits(limits=options.n_threads):
        revenue = fit_revenue(
            settings.warehouse,
            examples,
            trained.params,
            options.algorithm,
            options.random_state,
            table,
            value,
        )
    trained = replace(trained, spend=revenue.spend)
    metadata = record_metadata(
        trained, examples, split, table, column_dtypes, options, overlap, levels, value
    )
    metadata.extra["revenue_model"] = revenue.to_json()
    margins = evaluate.margin_over_baselines(trained.metrics, trained.baselines)
    warnings = (
        value.warnings
        + revenue_warnings(revenue)
        + tuple(
            f"the model does not beat the {name} baseline (ROC-AUC {margin:+.3f})"
            for name, margin in margins.items()
            if margin <= 0
        )
    )
    if trained.segment_match is not None and trained.segment_match.vanished_ids:
        warnings += (
            f"segments {list(trained.segment_match.vanished_ids)} of model "
            f"{trained.segment_match.reference_model_id} have no counterpart any more",
        )
    for warning in warnings:
        progress(f"warning: {warning}")
    metadata.extra["step_seconds"] = clock.stop()
    report = TrainReport(
        metadata=metadata,
        model_dir=settings.models_dir / metadata.model_id,
        candidates=trained.candidates,
        segments=trained.segments,
        importance=trained.importance,
        feature_selection=trained.feature_selection,
        margins=margins,
        warnings=warnings,
        elapsed_seconds=time.perf_counter() - started,
        step_seconds=metadata.extra["step_seconds"],
        overlap=overlap,
        value=value,
        segment_match=trained.segment_match,
        revenue=revenue,
    )
    progress(f"saving model {metadata.model_id}")
    return _save(settings, trained, report)


def _segment_reference(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    progress: Callable[[str], None],
) -> SegmentReference | None:
    """The promoted model's segments (else the latest model's), or None for a first model.

    Its centroids are moved into this build's scaled space through the two feature_stats
    fits, when both are in the warehouse. A reference that cannot be loaded only costs
    stable ids: training goes on with first-time ids and says why.
    """
    reference_id = registry.champion_id(settings.models_dir)
    if reference_id is None:
        models = registry.list_models(settings.models_dir)
        if not models:
            return None
        reference_id = models[-1].model_id
    try:
        model = registry.load_model(settings.models_dir, reference_id)
    except SegmartError as error:
        progress(f"warning: segment ids start afresh: {error}")
        return None
    fitted_as_of = str(table.column("feature_stats_fitted_as_of")[0].as_py())
    stats = _read_scaling(con, [model.metadata.feature_stats_fitted_as_of, fitted_as_of])
    centroids = None
    if model.metadata.feature_stats_fitted_as_of != fitted_as_of and len(stats) == 2:
        centroids = centroids_in_new_space(
            model.segmenter, stats[model.metadata.feature_stats_fitted_as_of], stats[fitted_as_of]
        )
    return SegmentReference(reference_id, model.segmenter, model.segment_names, centroids)


def _read_scaling(con: duckdb.DuckDBPyConnection, fits: list[str]) -> dict[str, pd.DataFrame]:
    """Center and scale per numeric feature of each feature_stats fit found (fitted_as_of)."""
    needed = {"fitted_as_of", "feature", "kind", "center", "scale"}
    if not warehouse.table_exists(con, STATS_TABLE) or needed - set(
        warehouse.table_schema(con, STATS_TABLE)
    ):
        return {}
    rows = warehouse.query(
        con,
        f"select cast(fitted_as_of as varchar) as fitted_as_of, feature, center, scale"
        f" from {STATS_TABLE} where kind = 'numeric' and cast(fitted_as_of as varchar) in (?, ?)",
        fits,
    ).to_pandas()
    return {
        fit: group.set_index("feature")[["center", "scale"]]
        for fit, group in rows.groupby("fitted_as_of")
    }


def _save(settings: Settings, trained: Trained, report: TrainReport) -> TrainReport:
    model = LoadedModel(
        metadata=report.metadata,
        propensity=trained.propensity,
        segmenter=trained.segmenter,
        segment_names=trained.segment_names,
        drift=trained.drift,
        reasons=trained.reasons,
        value=trained.value,
        spend=trained.spend,
    )
    saved = registry.save_model(settings.models_dir, model, report.to_markdown())
    try:
        with warehouse.connect(settings.warehouse) as con:
            warehouse.append_rows(con, MODEL_RUNS_TABLE, model_run_row(saved, report.model_dir))
    except BaseException:
        # A model whose run is not recorded would be invisible to BI: undo the save.
        registry.remove_model(settings.models_dir, saved.model_id)
        raise
    return replace(report, metadata=saved)
