"""segmart's scikit-learn-style estimators refuse to predict before they are fitted."""

import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from ml.modelling.explain import ReasonCoder
from ml.segments import Segmenter
from ml.serving.drift import DriftReference
from ml.value import BetaGeoModel, GammaGammaModel

FRAME = pd.DataFrame({"recency__scaled": [0.1, 0.2]})


@pytest.mark.parametrize(
    "call",
    [
        lambda: DriftReference().count(FRAME),
        lambda: DriftReference().psi({}),
        lambda: ReasonCoder().reasons(FRAME),
        lambda: Segmenter().predict(FRAME),
        lambda: BetaGeoModel().expected_purchases(30),
        lambda: GammaGammaModel().conditional_expected_spend([1], [10.0]),
    ],
    ids=["drift.count", "drift.psi", "reasons", "segments", "bg_nbd", "gamma_gamma"],
)
def test_an_unfitted_estimator_says_so(call):
    with pytest.raises(NotFittedError):
        call()
