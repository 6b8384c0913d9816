import numpy as np
import pandas as pd
import pyarrow as pa

from ml.modelling.features import (
    feature_groups,
    input_label,
    model_input_columns,
    model_matrix,
    one_hot_levels,
    raw_feature_columns,
    scaled_columns,
)
from tests.ml.synthetic import synthetic_marts

MART_COLUMNS = [
    "customer_id",
    "snapshot_on",
    "purchased_in_horizon",
    "revenue_in_horizon",
    "feature_stats_id",
    "days_since_last_order",
    "days_since_last_order__scaled",
    "days_since_last_order_was_missing",
    "n_orders",
    "n_orders__scaled",
    "gender__level_1",
    "gender__other",
    "region__level_1",
    "acquisition_channel__level_3",
    "is_marketing_opt_in",
]


def test_model_inputs_are_scaled_columns_flags_one_hots_and_opt_in_in_mart_order():
    assert model_input_columns(MART_COLUMNS) == (
        "days_since_last_order__scaled",
        "days_since_last_order_was_missing",
        "n_orders__scaled",
        "gender__level_1",
        "gender__other",
        "region__level_1",
        "acquisition_channel__level_3",
        "is_marketing_opt_in",
    )


def test_raw_columns_are_the_unscaled_twins_of_the_scaled_ones():
    assert scaled_columns(MART_COLUMNS) == ("days_since_last_order__scaled", "n_orders__scaled")
    assert raw_feature_columns(MART_COLUMNS) == ("days_since_last_order", "n_orders")


def test_the_synthetic_mart_has_the_documented_number_of_model_inputs():
    training, features = synthetic_marts(n_customers=20, n_snapshots=2)
    inputs = model_input_columns(training.column_names)
    # 26 scaled + 16 missing flags + 3 categoricals x (8 slots + other) + the opt-in flag.
    assert len(inputs) == 26 + 16 + 3 * 9 + 1
    assert inputs == model_input_columns(features.column_names)


def test_groups_put_a_scaled_value_with_its_flag_and_a_categorical_with_its_levels():
    groups = feature_groups(model_input_columns(MART_COLUMNS))
    assert groups["days_since_last_order"] == [
        "days_since_last_order__scaled",
        "days_since_last_order_was_missing",
    ]
    assert groups["gender"] == ["gender__level_1", "gender__other"]
    assert groups["is_marketing_opt_in"] == ["is_marketing_opt_in"]


def test_model_matrix_turns_booleans_and_integers_into_float_zero_one():
    batch = pa.record_batch(
        {
            "a__scaled": pa.array([0.5, None], pa.float64()),
            "a_was_missing": pa.array([False, True]),
            "is_marketing_opt_in": pa.array([1, 0], pa.int32()),
        }
    )
    matrix = model_matrix(batch, ["is_marketing_opt_in", "a_was_missing", "a__scaled"])
    assert list(matrix.columns) == ["is_marketing_opt_in", "a_was_missing", "a__scaled"]
    assert (matrix.dtypes == np.float64).all()
    expected = pd.DataFrame(
        {
            "is_marketing_opt_in": [1.0, 0.0],
            "a_was_missing": [0.0, 1.0],
            "a__scaled": [0.5, np.nan],
        }
    )
    pd.testing.assert_frame_equal(matrix, expected)


def test_one_hot_inputs_read_as_the_level_learned_in_their_slot():
    levels = one_hot_levels([("region", 1, "bavaria"), ("region", 2, "île-de-france")])

    assert levels == {"region__level_1": "bavaria", "region__level_2": "île-de-france"}
    assert input_label("region__level_2", levels) == "region is île-de-france"
    assert input_label("region__other", levels) == "region is another value"
    assert input_label("region__level_7", levels) == "region: no level learned (region__level_7)"
    assert input_label("tenure_days__scaled", levels) == "tenure_days__scaled"
