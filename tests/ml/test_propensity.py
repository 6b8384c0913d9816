import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ml.modelling.examples import split_for_validation
from ml.modelling.propensity import (
    ALGORITHMS,
    PropensityModel,
    calibrate,
    fit_cross_fitted,
    make_classifier,
    search,
)
from tests.ml.synthetic import examples_from, single_threaded, synthetic_marts  # noqa: F401 - autouse fixture


@pytest.fixture(scope="module")
def split():
    training, _ = synthetic_marts(n_customers=500, n_snapshots=3, seed=2)
    return split_for_validation(examples_from(training))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_is_a_seeded_classifier(algorithm):
    classifier = make_classifier(algorithm, {}, random_state=3)
    assert classifier.get_params()["random_state"] == 3


def test_validation_is_later_in_time_and_on_customers_never_fitted(split):
    assert split.fit.snapshot_on.max() < split.validation.snapshot_on.min()
    assert not set(split.fit.customer_id) & set(split.validation.customer_id)
    assert set(split.folds[0].customer_id).isdisjoint(split.folds[1].customer_id)


def test_search_returns_the_best_validation_candidate_fitted(split):
    classifier, candidates = search(
        "decision_tree",
        split.fit.X,
        split.fit.label,
        split.validation.X,
        split.validation.label,
        0,
    )
    best = max(candidate.roc_auc for candidate in candidates)
    proba = classifier.predict_proba(split.validation.X)[:, 1]
    assert len(candidates) == 3
    assert roc_auc_score(split.validation.label, proba) == pytest.approx(best)


def test_search_compares_candidates_on_a_deterministic_subsample(split):
    fit, validation = split.fit, split.validation
    first, _ = search("decision_tree", fit.X, fit.label, validation.X, validation.label, 0, 200)
    again, _ = search("decision_tree", fit.X, fit.label, validation.X, validation.label, 0, 200)
    assert first.tree_.n_node_samples[0] == 200
    np.testing.assert_array_equal(first.predict_proba(fit.X), again.predict_proba(fit.X))


def test_calibration_picks_the_lower_out_of_fold_brier_and_keeps_probabilities_valid(split):
    fit, validation = split.fit, split.validation
    classifier, _ = search(
        "hist_gradient_boosting", fit.X, fit.label, validation.X, validation.label, 0
    )
    calibration = calibrate(classifier, validation.X, validation.label, random_state=0)
    briers = calibration.brier_by_method
    assert calibration.method == min(briers, key=briers.get)
    assert len(calibration.out_of_fold_proba) == len(validation.label)
    proba = calibration.estimator.predict_proba(validation.X)[:, 1]
    assert ((proba >= 0) & (proba <= 1)).all()
    # Calibrated on the latest snapshot: the mean probability matches its purchase rate.
    assert proba.mean() == pytest.approx(validation.label.mean(), abs=0.02)


@pytest.mark.parametrize("algorithm", ["hist_gradient_boosting", "random_forest"])
def test_out_of_fold_calibration_from_scores_computed_once_equals_refitting_per_fold(
    split, algorithm
):
    fit, validation = split.fit, split.validation
    classifier, _ = search(algorithm, fit.X, fit.label, validation.X, validation.label, 0)
    calibration = calibrate(classifier, validation.X, validation.label, random_state=0)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for method, brier in calibration.brier_by_method.items():
        per_fold = CalibratedClassifierCV(FrozenEstimator(classifier), method=method)
        proba = cross_val_predict(
            per_fold, validation.X, validation.label, cv=folds, method="predict_proba"
        )[:, 1]
        assert brier == pytest.approx(brier_score_loss(validation.label, proba), rel=1e-12)
        if method == calibration.method:
            np.testing.assert_allclose(calibration.out_of_fold_proba, proba, rtol=1e-12)


def test_the_final_model_averages_two_members_each_calibrated_on_unseen_customers(split):
    train = [(fold.X, fold.label) for fold in split.folds]
    latest = [(split.latest_of(k).X, split.latest_of(k).label) for k in (0, 1)]
    ensemble, held_out = fit_cross_fitted("logistic_regression", {}, "sigmoid", 0, train, latest)
    members = [member.predict_proba(split.latest.X)[:, 1] for member in ensemble.estimators_]
    averaged = ensemble.predict_proba(split.latest.X)[:, 1]
    np.testing.assert_allclose(averaged, np.mean(members, axis=0))
    assert [len(p) for p in held_out] == [len(latest[1][1]), len(latest[0][1])]
    assert roc_auc_score(latest[1][1], held_out[0]) > 0.7


def test_propensity_model_names_the_columns_a_feature_mart_lacks(split):
    fit = split.fit
    classifier = make_classifier("logistic_regression", {}, 0).fit(fit.X, fit.label)
    model = PropensityModel(classifier, fit.inputs)
    with pytest.raises(ValueError, match="n_orders__scaled"):
        model.predict_proba(fit.X.drop(columns=["n_orders__scaled"]))
    assert isinstance(model.predict_proba(fit.X), pd.Series)
    assert np.isfinite(model.predict_proba(fit.X)).all()
