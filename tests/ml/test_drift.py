import numpy as np
import pandas as pd
import pytest

from ml.serving.drift import (
    DriftReference,
    add_counts,
    non_overlapping_inputs,
    population_stability_index,
)


def test_psi_of_identical_distributions_is_zero():
    assert population_stability_index([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)


def test_psi_matches_the_formula_on_a_known_shift():
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = -0.25 * np.log(0.5) + 0.25 * np.log(1.5)
    assert population_stability_index([50, 50], [25, 75]) == pytest.approx(expected)


def test_a_one_standard_deviation_shift_is_drift_and_a_resample_is_not():
    rng = np.random.default_rng(0)
    reference = DriftReference().fit(pd.DataFrame({"x": rng.normal(0, 1, 20_000)}))
    same = reference.psi(reference.count(pd.DataFrame({"x": rng.normal(0, 1, 20_000)})))
    shifted = reference.psi(reference.count(pd.DataFrame({"x": rng.normal(1, 1, 20_000)})))
    assert same.loc[0, "psi"] < 0.01 and not same.loc[0, "is_drifted"]
    assert shifted.loc[0, "psi"] > 0.25 and shifted.loc[0, "is_drifted"]


def test_a_zero_one_flag_gets_its_own_bins_and_scores_outside_the_range_still_count():
    reference = DriftReference().fit(pd.DataFrame({"flag": [0.0] * 80 + [1.0] * 20}))
    assert reference.expected_["flag"][1:].tolist() == [0.8, 0.2]
    counts = reference.count(pd.DataFrame({"flag": [0.0] * 20 + [1.0] * 80 + [-1.0]}))
    assert counts["flag"].sum() == 101
    expected = population_stability_index([0, 80, 20], counts["flag"])
    assert reference.psi(counts).loc[0, "psi"] == pytest.approx(expected)


def test_counting_batch_by_batch_equals_counting_everything_at_once():
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.poisson(2, 1000).astype(float)})
    reference = DriftReference().fit(data)
    total = None
    for start in range(0, 1000, 300):
        total = add_counts(total, reference.count(data.iloc[start : start + 300]))
    whole = reference.count(data)
    assert all(np.array_equal(total[c], whole[c]) for c in whole)
    assert reference.psi(total)["psi"].max() == pytest.approx(0.0)


def test_only_an_input_whose_scoring_values_leave_the_training_range_is_left_out():
    rng = np.random.default_rng(2)
    n = 5_000
    training = pd.DataFrame(
        {
            # One cohort: every customer older at scoring than at any training snapshot.
            "tenure": rng.uniform(300, 330, n),
            # Busier at scoring, but inside what training saw: drift, not a different world.
            "visits": rng.poisson(2, n).astype(float),
            "stable": rng.normal(0, 1, n),
        }
    )
    scoring = pd.DataFrame(
        {
            "tenure": rng.uniform(390, 420, n),
            "visits": rng.poisson(4, n).astype(float),
            "stable": rng.normal(0, 1, n),
        }
    )
    table = non_overlapping_inputs(training, scoring).set_index("feature")

    assert table.loc["tenure", "share_outside_training_range"] == 1.0
    assert table.loc["visits", "psi"] > 0.25
    assert table.loc["visits", "share_outside_training_range"] < 0.5
    assert table["is_dropped"].to_dict() == {"tenure": True, "visits": False, "stable": False}
