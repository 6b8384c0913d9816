"""Compile a fitted model's scoring into one portable SQL select.

`scoring_sql` turns a `LoadedModel` into a `select` over a relation with the feature mart's
columns that returns, per customer, the purchase probability, the segment id and the
propensity decile, as the Python scorer computes them: every tree of gradient boosting written
out from its node arrays (or the linear model's coefficients), the calibration, the average
over the cross-fitted members, and k-means' nearest centroid. The SQL is plain: CASE, + - * /,
exp() and one window function, unquoted lower-case identifiers, so it runs on DuckDB and Spark
alike.

Every number is printed with `repr` and an exponent (`0.25e0`): DuckDB and Spark read a literal
without one as a DECIMAL, so the exact result would hang on each engine's decimal-to-double
conversion and decimal arithmetic rules; with the exponent the literal is a DOUBLE, the exact
float64 scikit-learn holds (`repr` round-trips), and a row on a tree threshold goes the same way.

A missing value is a SQL NULL, routed down each tree as scikit-learn routes NaN. A NULL in a
segmentation column leaves `segment_id` NULL (k-means would refuse the row), and a NULL input
to the linear model leaves the probability NULL. A float NaN stored in the relation is not
treated as missing: SQL engines sort NaN above every number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from ml.errors import SegmartError
from ml.registry import LoadedModel
from ml.segments import Segmenter

SUPPORTED_ALGORITHMS = ("hist_gradient_boosting", "logistic_regression")
OUTPUT_COLUMNS = ("customer_id", "purchase_probability", "segment_id", "propensity_decile")

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# scikit-learn rounds calibrated probabilities this close above 1 down to 1 (calibration.py).
_PROBABILITY_ROUNDING = 1e-5


def number(value: float) -> str:
    """A float64 as a SQL literal that reads back as the same double on DuckDB and Spark."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} as a SQL literal")
    text = repr(value)
    if "e" not in text:
        text += "e0"
    return f"({text})" if value < 0 else text


def identifier(name: str) -> str:
    """A column name usable unquoted on every engine, or a ValueError."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"column {name!r} is not a lower-case SQL identifier")
    return name


def tree_sql(nodes: np.ndarray, columns: Sequence[str], index: int = 0) -> str:
    """One fitted gradient-boosting tree (`TreePredictor.nodes`) as a nested CASE.

    A row goes left when `x <= num_threshold`; a NULL follows `missing_go_to_left`, which the
    grower sets to the bigger child when the feature had no missing value in training. An
    infinite threshold is scikit-learn's split of missing values from all others.
    """
    node = nodes[index]
    if node["is_leaf"]:
        return number(node["value"])
    if node["is_categorical"]:
        raise SegmartError(
            "the model splits on a categorical feature, which the SQL export does not support;"
            " train on numeric inputs (the default feature mart)"
        )
    left = tree_sql(nodes, columns, int(node["left"]))
    right = tree_sql(nodes, columns, int(node["right"]))
    column, threshold = columns[int(node["feature_idx"])], float(node["num_threshold"])
    missing_left = bool(node["missing_go_to_left"])
    if math.isinf(threshold) and missing_left:
        return left
    if math.isinf(threshold):
        goes_left = f"{column} is not null"
    elif missing_left:
        goes_left = f"({column} <= {number(threshold)} or {column} is null)"
    else:
        goes_left = f"{column} <= {number(threshold)}"  # NULL is unknown: the ELSE branch
    return f"case when {goes_left} then {left} else {right} end"


def hist_gradient_boosting_sql(
    estimator: HistGradientBoostingClassifier, columns: Sequence[str]
) -> list[str]:
    """The decision function (raw log-odds) as terms to add left to right.

    The baseline comes first and the trees follow in boosting order, the order scikit-learn
    accumulates them in, so the float64 sums agree to the last bit.
    """
    if estimator.n_trees_per_iteration_ != 1:
        raise SegmartError("only binary classifiers can be exported to SQL")
    if getattr(estimator, "_preprocessor", None) is not None:
        raise SegmartError("a classifier with categorical features cannot be exported to SQL")
    baseline = float(np.asarray(estimator._baseline_prediction).ravel()[0])
    trees = [tree_sql(predictors[0].nodes, columns) for predictors in estimator._predictors]
    return [number(baseline), *trees]


def linear_sql(estimator: LogisticRegression, columns: Sequence[str]) -> list[str]:
    """The decision function `x . coef + intercept` as terms to add left to right."""
    coef = np.asarray(estimator.coef_, dtype=np.float64)
    if coef.shape[0] != 1:
        raise SegmartError("only binary classifiers can be exported to SQL")
    products = " + ".join(
        f"{number(weight)} * {column}" for weight, column in zip(coef[0], columns, strict=True)
    )
    return [f"({products})", number(estimator.intercept_[0])]


def sigmoid_calibration_sql(calibrator: _SigmoidCalibration, score: str) -> str:
    """Platt scaling: scikit-learn's `expit(-(a * score + b))`."""
    linear = f"{number(calibrator.a_)} * {score} + {number(calibrator.b_)}"
    return f"1.0e0 / (1.0e0 + exp({linear}))"


def isotonic_calibration_sql(calibrator: IsotonicRegression, score: str) -> str:
    """Isotonic calibration: clipped to its range, then linear between its thresholds.

    As `numpy.interp`: on `[x_j, x_j+1)` the value is `slope_j * (score - x_j) + y_j` with
    `slope_j` computed in float64 as numpy does, so it is printed rather than recomputed in
    SQL. The pieces are found by bisection (nested CASE), a few comparisons per row.
    """
    xs = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
    ys = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
    if len(xs) == 1:
        return f"case when {score} is not null then {number(ys[0])} end"
    if calibrator.X_min_ != xs[0] or calibrator.X_max_ != xs[-1]:
        raise SegmartError("isotonic calibration clips outside its thresholds; cannot export")
    # Piece 0 is below x_0, piece j + 1 covers [x_j, x_j+1), the last is at or above x_n-1.
    slopes = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])
    pieces = [
        number(ys[0]),
        *(
            f"{number(slope)} * ({score} - {number(x)}) + {number(y)}"
            for slope, x, y in zip(slopes, xs[:-1], ys[:-1], strict=True)
        ),
        number(ys[-1]),
    ]

    def bisect(low: int, high: int) -> str:
        if high - low == 1:
            return pieces[low]
        middle = (low + high) // 2  # pieces below `middle` lie left of x_(middle - 1)
        return (
            f"case when {score} < {number(xs[middle - 1])}"
            f" then {bisect(low, middle)} else {bisect(middle, high)} end"
        )

    return f"case when {score} is not null then {bisect(0, len(pieces))} end"


def _unfrozen(estimator: object) -> object:
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


def _mean(terms: list[str]) -> str:
    # numpy's mean: the sum left to right, then one division (none for a single term).
    if len(terms) == 1:
        return terms[0]
    return f"({' + '.join(terms)}) / {number(len(terms))}"


@dataclass
class _ProbabilityCompiler:
    """Walks the fitted estimator; collects one decision and one calibrated column per base
    classifier and returns how their probabilities combine."""

    columns: Sequence[str]
    decisions: list[list[str]] = field(default_factory=list)
    calibrated: list[str] = field(default_factory=list)

    def probability(self, estimator: object) -> str:
        estimator = _unfrozen(estimator)
        if isinstance(estimator, VotingClassifier):
            if estimator.voting != "soft" or estimator.weights is not None:
                raise SegmartError("only unweighted soft voting can be exported to SQL")
            return _mean([self.probability(member) for member in estimator.estimators_])
        if isinstance(estimator, CalibratedClassifierCV):
            return _mean([self._calibrated(c) for c in estimator.calibrated_classifiers_])
        k = self._add_decision(estimator)
        # Uncalibrated: the classifiers' own link, expit of the decision function.
        self.calibrated.append(f"1.0e0 / (1.0e0 + exp(-decision_{k}))")
        return f"calibrated_{k}"

    def _calibrated(self, calibrated_classifier: object) -> str:
        (calibrator,) = calibrated_classifier.calibrators  # one: the classifier is binary
        k = self._add_decision(calibrated_classifier.estimator)
        if calibrated_classifier.method == "sigmoid":
            self.calibrated.append(sigmoid_calibration_sql(calibrator, f"decision_{k}"))
            return f"calibrated_{k}"
        if calibrated_classifier.method == "isotonic":
            self.calibrated.append(isotonic_calibration_sql(calibrator, f"decision_{k}"))
            p, ceiling = f"calibrated_{k}", number(1.0 + _PROBABILITY_ROUNDING)
            return f"case when {p} > 1.0e0 and {p} <= {ceiling} then 1.0e0 else {p} end"
        raise SegmartError(
            f"calibration {calibrated_classifier.method!r} cannot be exported to SQL;"
            " sigmoid and isotonic can"
        )

    def _add_decision(self, estimator: object) -> int:
        estimator = _unfrozen(estimator)
        if isinstance(estimator, HistGradientBoostingClassifier):
            terms = hist_gradient_boosting_sql(estimator, self.columns)
        elif isinstance(estimator, LogisticRegression):
            terms = linear_sql(estimator, self.columns)
        else:
            raise SegmartError(
                f"a {type(estimator).__name__} cannot be exported to SQL; retrain with"
                f" --algorithm {' or '.join(SUPPORTED_ALGORITHMS)}"
            )
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None and list(names) != list(self.columns):
            raise SegmartError("the classifier's inputs differ from the model's feature columns")
        self.decisions.append(terms)
        return len(self.decisions) - 1


def segment_sql(segmenter: Segmenter) -> tuple[list[str], str]:
    """The k-means assignment: one distance column per centroid, and the CASE picking the id.

    Distances are scikit-learn's `|c|^2 - 2 x . c` (the `|x|^2` every centroid shares left
    out), and the nearest centroid wins, the lower index on a tie, as in `KMeans.predict`.

    Returns
    -------
    list of str, str
        The SQL of `distance_0 ... distance_k-1` over the inputs, and the segment id's CASE
        over those columns.
    """
    centers = np.asarray(segmenter.kmeans_.cluster_centers_, dtype=np.float64)
    columns = [identifier(c) for c in segmenter.feature_names_in_]
    squared_norms = np.einsum("ij,ij->i", centers, centers)  # sklearn's row_norms
    distances = [
        f"{number(norm)} + (-2.0e0) * ("
        + " + ".join(f"{number(w)} * {c}" for w, c in zip(center, columns, strict=True))
        + ")"
        for norm, center in zip(squared_norms, centers, strict=True)
    ]
    branches = []
    for j, segment_id in enumerate(segmenter.segment_of_cluster_):
        beats = [f"distance_{j} < distance_{i}" for i in range(j)]
        beats += [f"distance_{j} <= distance_{i}" for i in range(j + 1, len(centers))]
        # Every branch is spelled out: a NULL distance matches none, leaving the id NULL.
        branches.append(f"when {' and '.join(beats) or 'true'} then {int(segment_id)}")
    return distances, "case " + " ".join(branches) + " end"


def string_literal(text: str) -> str:
    """Text as a SQL string literal read alike by DuckDB and Spark, or a ValueError.

    Spark reads a backslash in a literal as an escape and DuckDB does not, so text holding one
    is refused rather than written two ways.
    """
    if "\\" in text:
        raise ValueError(f"cannot write {text!r} as a portable SQL literal (a backslash)")
    return "'" + text.replace("'", "''") + "'"


def segment_name_sql(segment_names: dict[int, tuple[str, str]]) -> str:
    """The segment's name by its id, a CASE over `segment_id` (NULL for an unnamed id)."""
    branches = " ".join(
        f"when {int(segment_id)} then {string_literal(name)}"
        for segment_id, (name, _description) in sorted(segment_names.items())
    )
    return f"case segment_id {branches} end" if branches else "cast(null as string)"


def scoring_sql(model: LoadedModel, relation: str, with_segment_names: bool = False) -> str:
    """A select scoring every row of `relation` as `ml.serving.spool.score_batch` does.

    Parameters
    ----------
    model : LoadedModel
        A trained model (hist_gradient_boosting or logistic_regression, calibrated or not).
    relation : str
        A table name or parenthesised subquery with `customer_id` and the model's input
        columns, as in `ml.customer_features`; pasted into the SQL as is.

    Returns
    -------
    str
        One `select` returning `customer_id`, `purchase_probability`, `segment_id` and
        `propensity_decile` (1 = highest tenth, ties broken by customer_id).

    Raises
    ------
    SegmartError
        The model uses an algorithm, calibration or feature the export does not support.
    """
    feature_columns = [identifier(c) for c in model.propensity.feature_columns]
    compiler = _ProbabilityCompiler(feature_columns)
    probability = compiler.probability(model.propensity.estimator)
    distances, segment_case = segment_sql(model.segmenter)
    inputs = list(dict.fromkeys([*feature_columns, *model.segmenter.feature_names_in_]))
    names = [segment_name_sql(model.segment_names)] if with_segment_names else []
    return _assemble(relation, inputs, compiler, distances, segment_case, probability, names)


def _ctes_sql(ctes: list[tuple[str, str]]) -> str:
    return "with\n\n" + ",\n\n".join(f"{name} as (\n\n{body}\n\n)" for name, body in ctes)


def _select(items: list[str], source: str) -> str:
    listed = ",\n".join(f"        {item}" for item in items)
    return f"    select\n{listed}\n    from {source}"


def _assemble(
    relation: str,
    inputs: list[str],
    compiler: _ProbabilityCompiler,
    distances: list[str],
    segment_case: str,
    probability: str,
    segment_names: list[str],
) -> str:
    # Each tree is a column of its own, added up in the next step: one expression holding
    # every tree took DuckDB's planner quadratic time (41 s for 2 x 200 trees, 6 s this way).
    casts = [f"cast({column} as double) as {column}" for column in inputs]
    terms = [
        f"{term} as term_{k}_{i}"
        for k, decision in enumerate(compiler.decisions)
        for i, term in enumerate(decision)
    ]
    decisions = [
        " + ".join(f"term_{k}_{i}" for i in range(len(decision))) + f" as decision_{k}"
        for k, decision in enumerate(compiler.decisions)
    ]
    distance_items = [f"{sql} as distance_{j}" for j, sql in enumerate(distances)]
    distance_names = [f"distance_{j}" for j in range(len(distances))]
    calibrated = [f"{sql} as calibrated_{k}" for k, sql in enumerate(compiler.calibrated)]
    ctes = [
        ("inputs", _select(["customer_id", *casts], relation)),
        ("terms", _select(["customer_id", *terms, *distance_items], "inputs")),
        ("decisions", _select(["customer_id", *decisions, *distance_names], "terms")),
        ("calibrated", _select(["customer_id", *calibrated, f"{segment_case} as segment_id"],
                               "decisions")),
        ("probabilities", _select(
            ["customer_id", f"{probability} as purchase_probability", "segment_id"],
            "calibrated",
        )),
        ("ranked", _select(
            [
                "customer_id",
                "purchase_probability",
                "segment_id",
                "ntile(10) over (order by purchase_probability desc, customer_id)"
                " as propensity_decile",
                *(f"{names} as segment_name" for names in segment_names),
            ],
            "probabilities",
        )),
    ]  # fmt: skip
    return _ctes_sql(ctes) + "\n\nselect * from ranked\n"
