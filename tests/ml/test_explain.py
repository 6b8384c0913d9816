import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ml.modelling.explain import (
    PHRASES,
    ReasonCoder,
    feature_selection_report,
    permutation_importances,
    render,
)
from ml.modelling.features import model_input_columns
from tests.ml.synthetic import examples_from, single_threaded, synthetic_marts  # noqa: F401 - autouse fixture


def test_phrases_read_like_a_marketer_would_write_them():
    assert render("n_orders_90d", np.array([3.0, 1.0, 0.0]), np.zeros(3, bool)).tolist() == [
        "ordered 3 times in the last 90 days",
        "ordered once in the last 90 days",
        "no order in the last 90 days",
    ]
    assert render(
        "days_since_last_order", np.array([12.4, 97.0]), np.array([False, True])
    ).tolist() == ["last order 12 days ago", "has never ordered"]
    assert render("n_product_views_90d", np.array([14.0]), np.zeros(1, bool)).tolist() == [
        "viewed 14 products in 90 days"
    ]
    assert render("discount_share", np.array([0.234]), np.zeros(1, bool)).tolist() == [
        "23% of spend discounted"
    ]


def test_every_phrase_template_has_one_placeholder():
    assert all(phrase.template.count("{}") == 1 for phrase in PHRASES.values())


def _fitted_examples():
    training, _ = synthetic_marts(n_customers=600, n_snapshots=2, seed=4)
    examples = examples_from(training)
    model = LogisticRegression(max_iter=500).fit(examples.X, examples.label)
    return examples, model


def test_permutation_importance_ranks_informative_features_first():
    examples, model = _fitted_examples()
    importance = permutation_importances(model, examples.X, examples.label, random_state=0)
    top = importance["feature"].head(5).tolist()
    assert {"days_since_last_order", "n_orders_90d", "n_sessions_90d"} & set(top)
    assert "gender" in importance["feature"].tolist()  # one-hot columns form one group
    assert importance.loc[importance["feature"] == "age_years", "importance"].item() < 0.01


def test_reasons_are_three_distinct_readable_phrases_per_customer():
    examples, model = _fitted_examples()
    proba = model.predict_proba(examples.X)[:, 1]
    importance = permutation_importances(model, examples.X, examples.label, random_state=0)
    weights = importance.set_index("feature")["importance"]
    coder = ReasonCoder().fit(examples.X, proba, importance=weights)
    reasons = coder.reasons(examples.features)
    assert list(reasons.columns) == ["reason_1", "reason_2", "reason_3"]
    assert reasons.notna().all().all()
    assert (reasons.nunique(axis=1) == 3).all()
    text = " ".join(reasons.to_numpy().ravel())
    assert "nan" not in text.split() and "aged" not in text and "income" not in text
    # The strongest reason of the most and least likely buyers is about their activity.
    extremes = reasons.iloc[[int(np.argmax(proba)), int(np.argmin(proba))]]["reason_1"]
    assert all(any(w in r for w in ("order", "visit", "view", "spent", "cart")) for r in extremes)


def test_an_imputed_value_is_never_a_reason_unless_missing_has_its_own_words():
    examples, model = _fitted_examples()
    proba = model.predict_proba(examples.X)[:, 1]
    weights = pd.Series(1.0, index=list(PHRASES))
    coder = ReasonCoder().fit(examples.X, proba, importance=weights)
    batch = examples.features.copy()
    batch["avg_order_value_was_missing"] = 1.0
    batch["avg_order_value__scaled"] = 50.0  # would dominate if imputed values could be reasons
    batch["days_since_last_order_was_missing"] = 1.0
    batch["days_since_last_order__scaled"] = 50.0
    reasons = coder.reasons(batch)
    assert (reasons["reason_1"] == "has never ordered").all()
    assert not reasons.apply(lambda col: col.str.contains("average order value")).any().any()


def test_feature_selection_report_has_correlation_and_mutual_information_per_input():
    training, _ = synthetic_marts(n_customers=300, n_snapshots=2, seed=5)
    examples = examples_from(training)
    report = feature_selection_report(examples.X, examples.label, random_state=0)
    assert set(report["feature"]) == set(model_input_columns(training.column_names))
    assert report["correlation"].between(-1, 1).all()
    assert (report["mutual_information"] >= 0).all()
    assert report["mutual_information"].is_monotonic_decreasing


def test_each_reason_is_its_features_phrase_for_that_customers_value():
    examples, model = _fitted_examples()
    proba = model.predict_proba(examples.X)[:, 1]
    weights = pd.Series(1.0, index=list(PHRASES))
    coder = ReasonCoder().fit(examples.X, proba, importance=weights)
    batch = examples.features
    reasons = coder.reasons(batch)
    top = np.argsort(-np.abs(coder.push(batch)), axis=1, kind="stable")[:, :3]
    for row in range(0, len(batch), 37):
        for rank in range(3):
            feature = coder.features_[top[row, rank]]
            flag = f"{feature}_was_missing"
            missing = np.array([bool(batch[flag].iloc[row]) if flag in batch else False])
            value = batch[feature].to_numpy(np.float64)[row : row + 1]
            expected = render(feature, value, missing)[0]
            assert reasons.iloc[row, rank] == expected
