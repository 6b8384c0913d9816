"""The model lifecycle of `segmart run`: score with the champion, or train and gate the new model.

The champion scores, on ML marts built with its own feature statistics, unless the run is told
to retrain (`--retrain`), the champion is older than `Settings.max_model_age_days` or one of its
inputs drifted beyond `Settings.retrain_drift_psi` on the new build. A newly trained model
becomes the champion when there was none, with `--promote`, or when it beats the champion on its
own validation examples (`backtest_champion`). Each decision is one logged line; each promotion
is recorded with its reason (`ml.promotion.promote`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from ml.config import Settings
from ml.errors import SegmartError

if TYPE_CHECKING:
    import pandas as pd

    from ml.modelling.train_report import TrainReport
    from ml.modelling.training import TrainOptions
    from ml.registry import LoadedModel, ModelMetadata
    from ml.serving.scoring import ScoreReport


def model_step(
    settings: Settings,
    options: TrainOptions,
    build: Callable[..., None],
    log: Callable[[str], None] = print,
    retrain: bool = False,
    promote: bool = False,
) -> tuple[TrainReport | None, ScoreReport]:
    """Build the ML marts and score them with the champion, training a new model if needed.

    The champion scores, on marts built with its own feature statistics, unless `retrain`,
    it is older than `settings.max_model_age_days` or one of its inputs drifted above
    `settings.retrain_drift_psi` on the new build; the decision is logged in one line. A new
    model is promoted when there is no champion, with `promote`, or when it wins
    `backtest_champion`; the promotion and its reason are recorded (`promotion.promote`).

    Returns
    -------
    (TrainReport or None, ScoreReport)
        The training run (None when the champion scored) and the scoring run.

    Raises
    ------
    SegmartError
        The champion cannot be loaded (gone, changed, tampered) or its feature statistics
        cannot be rebuilt; the message says to `--retrain` or promote another model. Nothing
        downstream of the ML marts is changed then.
    """
    from ml import registry
    from ml.modelling.training import train
    from ml.serving.scoring import score

    has_champion = registry.champion_id(settings.models_dir) is not None
    champion = None
    # With --retrain --promote the champion is replaced unseen: a broken one is no obstacle.
    if has_champion and not (retrain and promote):
        champion = registry.load_model(settings.models_dir, registry.CHAMPION)
    if champion is not None and not retrain:
        reason = _reason_to_retrain(settings, champion, build)
        if reason is None:
            meta = champion.metadata
            age = _age_days(meta, _mart_as_of(settings))
            log(
                f"scoring with champion {meta.model_id} (trained {meta.trained_at[:10]}, as of"
                f" {meta.as_of}, {age} days old); --retrain to train a new one"
            )
            return None, score(settings, champion, log)
        log(f"retraining: {reason}")
    else:
        log("retraining: --retrain" if has_champion else "training: no champion yet")
    build(settings, selector="warehouse")
    trained = train(settings, options, log)
    winner = _promotion_gate(settings, trained.metadata, champion, promote, options, build, log)
    return trained, score(settings, winner, log)


def _reason_to_retrain(
    settings: Settings, champion: LoadedModel, build: Callable[..., None]
) -> str | None:
    """Why the champion should not score this run, or None; builds its marts if it may."""
    meta = champion.metadata
    if meta.horizon_days != settings.horizon_days:
        return (
            f"champion {meta.model_id} predicts a {meta.horizon_days}-day horizon, not"
            f" {settings.horizon_days}"
        )
    limit = settings.max_model_age_days
    if settings.as_of is not None:
        reason = age_reason(meta, settings.as_of, limit)
        if reason is not None:
            return reason  # known before building: no build with statistics about to be dropped
    # Only what scoring needs: a retrain builds the whole warehouse again.
    build_with_stats_of(settings, meta, build, selector="scoring")
    reason = age_reason(meta, _mart_as_of(settings), limit)
    return reason or drift_reason(champion_drift(settings, champion), settings.retrain_drift_psi)


def _age_days(champion: ModelMetadata, as_of: date) -> int:
    return (as_of - date.fromisoformat(champion.as_of)).days


def age_reason(champion: ModelMetadata, as_of: date, max_age_days: int) -> str | None:
    """Why a champion is too old to score as_of ("... is N days old (limit L)"), or None.

    The age is as_of minus the champion's as_of: how far its training data lies behind.
    """
    age = _age_days(champion, as_of)
    if age > max_age_days:
        return f"champion {champion.model_id} is {age} days old (limit {max_age_days})"
    return None


def drift_reason(drift: pd.DataFrame, max_psi: float) -> str | None:
    """Why a champion's inputs drifted too far to score with it, or None.

    Parameters
    ----------
    drift : pandas.DataFrame
        `DriftReference.psi` of the champion's inputs on the new build, most drifted first.
    max_psi : float
        The PSI above which the champion is retrained.
    """
    if drift.empty or drift["psi"].iloc[0] <= max_psi:
        return None
    top = drift.iloc[0]
    n_over = int((drift["psi"] > max_psi).sum())
    return (
        f"the champion's input {top['feature']} drifted (PSI {top['psi']:.2f} > {max_psi};"
        f" {n_over} input(s) above the limit)"
    )


def champion_drift(settings: Settings, champion: LoadedModel) -> pd.DataFrame:
    """PSI of the champion's inputs between its training and `ml.customer_features`."""
    from ml import warehouse
    from ml.modelling.features import model_matrix
    from ml.serving.drift import add_counts
    from ml.serving.scoring import FEATURES_TABLE

    columns = [str(column) for column in champion.drift.feature_names_in_]
    counts = None
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        for batch in warehouse.iter_batches(con, FEATURES_TABLE, 50_000, columns=columns):
            counts = add_counts(counts, champion.drift.count(model_matrix(batch, columns)))
    if counts is None:
        raise SegmartError(f"{FEATURES_TABLE} is empty: load customers and rebuild")
    return champion.drift.psi(counts)


def _mart_as_of(settings: Settings) -> date:
    from ml import warehouse
    from ml.serving.scoring import FEATURES_TABLE

    with warehouse.connect(settings.warehouse, read_only=True) as con:
        warehouse.require_table(con, FEATURES_TABLE)
        (as_of,) = con.execute(f"select max(as_of) from {FEATURES_TABLE}").fetchone()
    if as_of is None:
        raise SegmartError(f"{FEATURES_TABLE} is empty: load customers and rebuild")
    return as_of


def build_with_stats_of(
    settings: Settings,
    model: ModelMetadata,
    build: Callable[..., None],
    selector: str = "warehouse",
) -> None:
    """Build the ML marts with a model's feature statistics, or refuse in one line.

    `selector` "scoring" builds only what scoring with the model needs (no training marts).

    The statistics must still be in `ml.feature_stats` before the build (unless this build
    refits them: as_of is their as_of), so a lost fit is refused before anything is rebuilt;
    and the marts must carry exactly the model's afterwards (a refit of the same as_of on
    changed data gives other statistics).

    Raises
    ------
    SegmartError
        The statistics no longer exist; the message says to retrain or promote another model.
    """
    stats_as_of = date.fromisoformat(model.feature_stats_fitted_as_of)
    if settings.as_of != stats_as_of and not _stats_exist(settings, stats_as_of):
        raise stats_gone(settings, model)
    build(settings, stats_as_of=stats_as_of, selector=selector)
    expected = [(model.feature_stats_id, model.feature_stats_fitted_as_of)]
    if _mart_stats(settings) != expected:
        raise stats_gone(settings, model)


def stats_gone(settings: Settings, model: ModelMetadata) -> SegmartError:
    """The one-line error for a model whose feature statistics left the warehouse."""
    return SegmartError(
        f"the feature statistics of model {model.model_id} ({model.feature_stats_id}, fitted as"
        f" of {model.feature_stats_fitted_as_of}) no longer exist in {settings.warehouse}:"
        " train a new model with `segmart run --retrain`, or promote another one with"
        " `segmart models promote ID`"
    )


def _stats_exist(settings: Settings, stats_as_of: date) -> bool:
    from ml import warehouse
    from ml.modelling.training import STATS_TABLE

    if not settings.warehouse.is_file():
        return False
    with warehouse.connect(settings.warehouse, read_only=True) as con:
        if not warehouse.table_exists(con, STATS_TABLE):
            return False
        sql = f"select count(*) from {STATS_TABLE} where fitted_as_of = ?"
        (n_rows,) = con.execute(sql, [stats_as_of]).fetchone()
    return n_rows > 0


def _mart_stats(settings: Settings) -> list[tuple[str, str]]:
    from ml import warehouse
    from ml.serving.scoring import FEATURES_TABLE

    with warehouse.connect(settings.warehouse, read_only=True) as con:
        if not warehouse.table_exists(con, FEATURES_TABLE):
            return []
        rows = con.execute(
            "select distinct feature_stats_id, feature_stats_fitted_as_of"
            f" from {FEATURES_TABLE} order by all"
        ).fetchall()
    return [(str(stats_id), str(fitted)) for stats_id, fitted in rows]


@dataclass(frozen=True)
class Backtest:
    """The new model and the champion on the same validation examples: ROC-AUC of each.

    The examples are the new model's validation part: the latest training snapshot's
    held-out half of the customers, each model's features preprocessed with its own
    statistics. The new model's figure is its recorded validation ROC-AUC (its search winner,
    never fitted on these customers); the champion's is its shipped model's. A champion whose
    as_of lies after the window's snapshot has seen some of the window's labels, which favours
    it: the gate then errs towards keeping it, and the line says so.
    """

    window: str
    n_rows: int
    challenger_roc_auc: float
    champion_roc_auc: float
    champion_saw_window: bool

    @property
    def challenger_wins(self) -> bool:
        """Strictly better: a tie keeps the champion."""
        return self.challenger_roc_auc > self.champion_roc_auc

    def line(self) -> str:
        """The comparison in one line, for the log and the promotions record."""
        saw = "; the champion was trained on data reaching into it" * self.champion_saw_window
        return (
            f"backtest on the {self.window} validation snapshot ({self.n_rows:,} held-out"
            f" customers{saw}): new ROC-AUC {self.challenger_roc_auc:.4f} vs champion"
            f" {self.champion_roc_auc:.4f}"
        )


def backtest_champion(
    settings: Settings, champion: LoadedModel, challenger: ModelMetadata, max_rows: int
) -> Backtest:
    """Score the champion on the new model's validation examples, built with its statistics.

    The warehouse must hold the marts built with the champion's statistics
    (`build_with_stats_of`); the examples are read exactly as training read them (the same
    sample of at most `max_rows`, the same customer halves), so they are the new model's
    validation rows.

    Raises
    ------
    SegmartError
        The marts are not of the new model's as_of, or lack a column the champion needs.
    """
    from sklearn.metrics import roc_auc_score

    from ml import warehouse
    from ml.modelling.examples import Examples, read_examples, split_for_validation

    with warehouse.connect(settings.warehouse, read_only=True) as con:
        table, _ = read_examples(con, max_rows)
    validation = split_for_validation(Examples.from_arrow(table)).validation
    window = str(validation.snapshot_on.max())[:10]
    if window != challenger.validation_snapshot:
        raise SegmartError(
            f"the marts' validation snapshot is {window}, not {challenger.validation_snapshot}"
            f" as model {challenger.model_id} was validated on: rebuild and run again"
        )
    columns = list(champion.metadata.feature_columns)
    missing = sorted(set(columns) - set(validation.features.columns))
    if missing:
        raise SegmartError(f"the new build lacks inputs the champion needs: {missing}")
    proba = champion.propensity.predict_proba(validation.features[columns]).to_numpy()
    return Backtest(
        window=window,
        n_rows=len(validation.label),
        challenger_roc_auc=float(challenger.metrics["roc_auc"]),
        champion_roc_auc=float(roc_auc_score(validation.label, proba)),
        champion_saw_window=champion.metadata.as_of > window,
    )


def _promotion_gate(
    settings: Settings,
    challenger: ModelMetadata,
    champion: LoadedModel | None,
    promote: bool,
    options: TrainOptions,
    build: Callable[..., None],
    log: Callable[[str], None],
) -> str:
    """Promote the new model or keep the champion; return the id to score with.

    On return the ML marts are built with the returned model's statistics.
    """
    from ml import promotion

    if champion is None or promote:
        reason = "--promote" if promote else "first model: no champion yet"
    elif champion.metadata.horizon_days != challenger.horizon_days:
        reason = f"the champion predicts a {champion.metadata.horizon_days}-day horizon"
    else:
        try:
            build_with_stats_of(settings, champion.metadata, build)
            backtest = backtest_champion(settings, champion, challenger, options.max_training_rows)
        except SegmartError as error:
            # The cause without its advice, which is about scoring with the champion.
            cause = str(error).split(": ", 1)[0]
            reason = f"the champion cannot be backtested on the new build: {cause}"
        else:
            if not backtest.challenger_wins:
                log(f"keeping champion {champion.metadata.model_id}: {backtest.line()}")
                return champion.metadata.model_id
            reason = backtest.line()
        build_with_stats_of(settings, challenger, build)
    promotion.promote(settings, challenger.model_id, reason)
    log(f"promoted {challenger.model_id} to champion: {reason}")
    return challenger.model_id
