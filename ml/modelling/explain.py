"""Why the model scores as it does: global importances and per-customer reason codes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_selection import mutual_info_classif
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted

from ml.modelling.features import MISSING_SUFFIX, SCALED_SUFFIX, feature_groups, input_label
from ml.modelling.sampling import sample_rows


def permutation_importances(
    estimator: object,
    X: pd.DataFrame,
    y: np.ndarray,
    random_state: int,
    max_rows: int = 4_000,
    n_repeats: int = 2,
) -> pd.DataFrame:
    """Drop in ROC-AUC when each feature is shuffled, on a sample of validation rows.

    Columns encoding one feature are shuffled together (`features.feature_groups`): a scaled
    value with its missing flag, a categorical's one-hot columns. That asks the question a
    reader has ("how much does recency matter?") and costs 30 predictions per repeat
    instead of 70.

    Parameters
    ----------
    estimator : fitted classifier
        Anything with `predict_proba`.
    X, y : pandas.DataFrame, numpy.ndarray
        Validation inputs and labels (never the rows the estimator was fitted on).
    random_state : int
        Seeds the row sample and the shuffles.
    max_rows : int
        Rows used: importances settle long before the full validation set.
    n_repeats : int
        Shuffles per feature.

    Returns
    -------
    pandas.DataFrame
        Columns `feature`, `importance` (mean drop), `importance_std`, `columns` (the inputs
        shuffled together), most important first.
    """
    rows = sample_rows(len(y), max_rows, random_state)
    values, labels = X.to_numpy(np.float64)[rows], y[rows]

    def auc_of(matrix: np.ndarray) -> float:
        frame = pd.DataFrame(matrix, columns=X.columns, copy=False)
        return roc_auc_score(labels, estimator.predict_proba(frame)[:, 1])

    baseline = auc_of(values)
    rng = np.random.default_rng(random_state)
    records = []
    for feature, columns in feature_groups(X.columns).items():
        positions = [X.columns.get_loc(column) for column in columns]
        drops = []
        for _ in range(n_repeats):
            shuffled = values.copy()
            shuffled[:, positions] = values[rng.permutation(len(values))][:, positions]
            drops.append(baseline - auc_of(shuffled))
        records.append((feature, float(np.mean(drops)), float(np.std(drops)), columns))
    table = pd.DataFrame(records, columns=["feature", "importance", "importance_std", "columns"])
    return table.sort_values(["importance", "feature"], ascending=[False, True], ignore_index=True)


def feature_selection_report(
    X: pd.DataFrame,
    y: np.ndarray,
    random_state: int,
    max_rows: int = 10_000,
    levels: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The seed's feature-selection view: correlation and mutual information with the label.

    Parameters
    ----------
    X, y : pandas.DataFrame, numpy.ndarray
        Model inputs and labels.
    random_state : int
        Seeds the row sample and the mutual-information estimator.
    max_rows : int
        Rows used; the nearest-neighbour estimator of mutual information is superlinear.
    levels : dict of str to str, optional
        One-hot slot column -> learned level (`features.one_hot_levels`): one-hot inputs are
        then named as people read them ("region is bavaria").

    Returns
    -------
    pandas.DataFrame
        Columns `feature`, `correlation` (Pearson, i.e. point-biserial), `mutual_information`
        (nats), by mutual information descending.
    """
    rows = sample_rows(len(y), max_rows, random_state)
    sample, labels = X.iloc[rows], np.asarray(y[rows], dtype=np.float64)
    discrete = [not column.endswith(SCALED_SUFFIX) for column in sample.columns]
    mutual_information = mutual_info_classif(
        sample, labels, discrete_features=discrete, random_state=random_state
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = sample.corrwith(pd.Series(labels, index=sample.index)).to_numpy()
    table = pd.DataFrame(
        {
            "feature": [
                column if levels is None else input_label(column, levels)
                for column in sample.columns
            ],
            "correlation": np.nan_to_num(correlation),
            "mutual_information": mutual_information,
        }
    )
    return table.sort_values(
        ["mutual_information", "feature"], ascending=[False, True], ignore_index=True
    )


@dataclass(frozen=True)
class Phrase:
    """How a raw feature value reads in a reason code.

    `template` holds `{}` where the number goes; `unit` formats it (`count`: whole number,
    `share`: percent, `decimal`: one decimal). `zero` and `one` replace the whole phrase for
    those values; `missing` is used when the value was imputed (None: the feature is then
    never a reason, since the imputed value says nothing about this customer).
    """

    template: str
    unit: str = "count"
    zero: str | None = None
    one: str | None = None
    missing: str | None = None


PHRASES: dict[str, Phrase] = {
    "days_since_last_order": Phrase(
        "last order {} days ago", one="last order yesterday", missing="has never ordered"
    ),
    "n_orders": Phrase("ordered {} times in total", zero="no orders yet", one="ordered once"),
    "n_orders_30d": Phrase(
        "ordered {} times in the last 30 days",
        zero="no order in the last 30 days",
        one="ordered once in the last 30 days",
    ),
    "n_orders_90d": Phrase(
        "ordered {} times in the last 90 days",
        zero="no order in the last 90 days",
        one="ordered once in the last 90 days",
    ),
    "n_orders_365d": Phrase(
        "ordered {} times in the last 12 months",
        zero="no order in the last 12 months",
        one="ordered once in the last 12 months",
    ),
    "revenue": Phrase("spent {} in total", zero="has not spent anything yet"),
    "revenue_90d": Phrase(
        "spent {} in the last 90 days", zero="spent nothing in the last 90 days"
    ),
    "avg_order_value": Phrase("average order value {}"),
    "tenure_days": Phrase("customer for {} days", one="signed up yesterday"),
    "avg_days_between_orders": Phrase("orders every {} days on average"),
    "n_orders_prev_90d": Phrase(
        "ordered {} times in the 90 days before the last 90",
        zero="no order in the 90 days before the last 90",
        one="ordered once in the 90 days before the last 90",
    ),
    "order_rate_trend_90d": Phrase(
        "ordering at {}x the usual pace in the last 90 days",
        unit="decimal",
        zero="stopped ordering in the last 90 days",
    ),
    "recency_to_gap_ratio": Phrase("{}x the usual gap since the last order", unit="decimal"),
    "avg_items_per_order": Phrase("{} items per order on average", unit="decimal"),
    "n_distinct_categories": Phrase(
        "bought from {} categories", zero="no category bought yet", one="bought from 1 category"
    ),
    "top_category_share": Phrase("{} of items from one category", unit="share"),
    "discount_share": Phrase("{} of spend discounted", unit="share"),
    "cancel_rate": Phrase("cancelled {} of orders", unit="share"),
    "return_rate": Phrase("returned {} of orders", unit="share"),
    "n_sessions_90d": Phrase(
        "visited the shop {} times in 90 days",
        zero="no shop visit in 90 days",
        one="visited the shop once in 90 days",
    ),
    "n_product_views_90d": Phrase(
        "viewed {} products in 90 days",
        zero="viewed no products in 90 days",
        one="viewed 1 product in 90 days",
    ),
    "n_add_to_cart_90d": Phrase(
        "added {} items to the cart in 90 days",
        zero="added nothing to the cart in 90 days",
        one="added 1 item to the cart in 90 days",
    ),
    "cart_to_order_rate_90d": Phrase("{} of carts became orders in 90 days", unit="share"),
    "days_since_last_visit": Phrase(
        "last shop visit {} days ago", one="visited the shop yesterday", missing="never visited"
    ),
    "n_touches_90d": Phrase(
        "received {} campaign messages in 90 days",
        zero="no campaign messages in 90 days",
        one="received 1 campaign message in 90 days",
    ),
    "open_rate_90d": Phrase("opened {} of campaign messages", unit="share"),
    "click_rate_90d": Phrase("clicked {} of campaign messages", unit="share"),
}
"""Features that can be reasons. Age and income are left out on purpose: they are not
behaviour a campaign can act on, and targeting "because of" them invites unfair treatment."""


def _format_numbers(values: np.ndarray, unit: str) -> np.ndarray:
    if unit == "share":
        return np.strings.add(np.rint(values * 100).astype(np.int64).astype(str), "%")
    if unit == "decimal":
        return np.round(values, 1).astype(str)
    return np.rint(values).astype(np.int64).astype(str)


def render(feature: str, values: np.ndarray, was_missing: np.ndarray) -> np.ndarray:
    """Phrases for one feature's raw values, vectorised (NumPy string ufuncs, no row loop)."""
    phrase = PHRASES[feature]
    prefix, suffix = phrase.template.split("{}")
    text = np.strings.add(np.strings.add(prefix, _format_numbers(values, phrase.unit)), suffix)
    rounded = np.rint(values) if phrase.unit == "count" else values
    text = text.astype(object)
    for special, value in ((phrase.zero, 0), (phrase.one, 1)):
        if special is not None:
            text[rounded == value] = special
    if phrase.missing is not None:
        text[was_missing] = phrase.missing
    return text


def _render_distinct(feature: str, values: np.ndarray, was_missing: np.ndarray) -> np.ndarray:
    """`render`, but each distinct value is rendered once: counts and days repeat a lot."""
    text = np.empty(values.shape, dtype=object)
    for missing in (False, True):
        part = was_missing == missing
        if part.any():
            distinct, inverse = np.unique(values[part], return_inverse=True)
            text[part] = render(feature, distinct, np.full(distinct.shape, missing))[inverse]
    return text


class ReasonCoder(BaseEstimator):
    """Top reasons behind each customer's score, from a global, importance-weighted view.

    A customer's push from feature j is `weight_j * direction_j * z_ij`: `z` standardises the
    scaled feature over the training sample, `direction` is the sign of its rank correlation
    with the model's probability, and `weight` its permutation importance. The features with
    the largest absolute push, up or down, are the reasons, rendered from the raw values.

    Parameters
    ----------
    n_reasons : int
        Reasons per customer.

    Attributes
    ----------
    features_ : tuple of str
        Raw features that can be reasons.
    center_, scale_ : numpy.ndarray
        Mean and standard deviation of each feature's scaled column.
    direction_, weight_ : numpy.ndarray
        Sign of the effect on the probability, and its importance.
    """

    def __init__(self, n_reasons: int = 3) -> None:
        self.n_reasons = n_reasons

    def fit(self, X: pd.DataFrame, proba: np.ndarray, *, importance: pd.Series) -> ReasonCoder:
        """Learn the standardisation, directions and weights.

        Parameters
        ----------
        X : pandas.DataFrame
            A sample of model inputs (with the `__scaled` columns).
        proba : numpy.ndarray
            The model's probabilities for those rows.
        importance : pandas.Series
            Permutation importance by feature (`permutation_importances`).
        """
        features = [f for f in PHRASES if f"{f}{SCALED_SUFFIX}" in X.columns]
        scaled = X[[f"{f}{SCALED_SUFFIX}" for f in features]].to_numpy(np.float64)
        self.center_ = scaled.mean(axis=0)
        self.scale_ = np.where(scaled.std(axis=0) > 0, scaled.std(axis=0), 1.0)
        ranks = pd.DataFrame(scaled).rank().to_numpy()
        proba_ranks = pd.Series(np.asarray(proba)).rank().to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.array([np.corrcoef(r, proba_ranks)[0, 1] for r in ranks.T])
        self.direction_ = np.sign(np.nan_to_num(correlation))
        self.weight_ = np.clip(importance.reindex(features).fillna(0.0).to_numpy(), 0.0, None)
        self.features_ = tuple(features)
        return self

    def push(self, batch: pd.DataFrame) -> np.ndarray:
        """Signed push of each reason feature on each row's score (rows x features)."""
        check_is_fitted(self)
        scaled = batch[[f"{f}{SCALED_SUFFIX}" for f in self.features_]].to_numpy(np.float64)
        push = (scaled - self.center_) / self.scale_ * self.direction_ * self.weight_
        for j, feature in enumerate(self.features_):
            flag = f"{feature}{MISSING_SUFFIX}"
            if PHRASES[feature].missing is None and flag in batch:
                push[batch[flag].to_numpy(bool), j] = 0.0
        return push

    def reasons(self, batch: pd.DataFrame) -> pd.DataFrame:
        """The top `n_reasons` reasons per row, in words.

        Parameters
        ----------
        batch : pandas.DataFrame
            Rows of a feature mart with the scaled, raw and `_was_missing` columns.

        Returns
        -------
        pandas.DataFrame
            Columns `reason_1` ... `reason_<n>`, strongest first; ties go to catalogue order.
        """
        top = np.argsort(-np.abs(self.push(batch)), axis=1, kind="stable")[:, : self.n_reasons]
        text = np.empty(top.shape, dtype=object)
        # One render per feature for all the rows it is a reason of.
        for j, feature in enumerate(self.features_):
            rows, ranks = np.nonzero(top == j)
            if rows.size:
                flag = f"{feature}{MISSING_SUFFIX}"
                missing = batch[flag].to_numpy(bool)[rows] if flag in batch else False
                values = batch[feature].to_numpy(np.float64)[rows]
                text[rows, ranks] = _render_distinct(
                    feature, values, np.broadcast_to(missing, rows.shape)
                )
        columns = [f"reason_{k + 1}" for k in range(top.shape[1])]
        return pd.DataFrame(text, columns=columns, index=batch.index)
