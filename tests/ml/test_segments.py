import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from ml.registry import ALLOWED_TYPES
from ml.segments import (
    ARCHETYPES,
    PROFILE_FEATURES,
    Segmenter,
    SegmentSums,
    carry_names,
    centroids_in_new_space,
    choose_k,
    describe_segments,
    match_segments,
    name_segments,
)
from tests.ml.synthetic import single_threaded  # noqa: F401 - autouse fixture


def _blobs(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Four well separated groups of customers; group g is worth about 10 * g."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]], dtype=float)
    group = np.repeat(np.arange(4), [300, 200, 250, 150])
    X = pd.DataFrame(centers[group] + rng.normal(0, 0.5, (900, 3)), columns=["a", "b", "c"])
    return X, 10.0 * group + rng.normal(0, 1, 900)


def test_k_is_chosen_by_silhouette_and_segment_1_is_the_most_valuable():
    X, value = _blobs()
    segmenter = Segmenter(k_range=(3, 6), random_state=0).fit(X, value)
    assert segmenter.n_segments_ == 4
    segments = segmenter.predict(X)
    means = pd.Series(value).groupby(segments).mean()
    assert means.index.tolist() == [1, 2, 3, 4]
    assert means.is_monotonic_decreasing


def test_segment_ids_are_stable_across_refits_on_the_same_data():
    X, value = _blobs()
    first = Segmenter(n_segments=4, random_state=7).fit(X, value).predict(X)
    again = Segmenter(n_segments=4, random_state=7).fit(X, value).predict(X)
    np.testing.assert_array_equal(first, again)


def test_a_k_leaving_a_segment_below_the_minimum_share_loses_to_a_worse_silhouette():
    silhouette = {3: 0.30, 4: 0.45, 5: 0.40}
    min_share = {3: 0.20, 4: 0.01, 5: 0.05}
    assert choose_k(silhouette, min_share, min_share=0.03) == 5


def test_when_every_k_leaves_a_tiny_segment_the_largest_smallest_segment_wins():
    assert choose_k({3: 0.5, 4: 0.6}, {3: 0.02, 4: 0.01}, min_share=0.03) == 3


def _profile_frame(rows: dict[str, list[float]]) -> pd.DataFrame:
    n = len(next(iter(rows.values())))
    frame = pd.DataFrame({f: np.ones(n) for f in PROFILE_FEATURES} | rows)
    frame["days_since_last_order_was_missing"] = rows.get("never", np.zeros(n))
    return frame


def test_profiles_skip_imputed_values():
    raw = _profile_frame(
        {
            "days_since_last_order": [10.0, 30.0, 97.0, 200.0],
            "revenue": [100.0, 300.0, 0.0, 600.0],
            "never": [0.0, 0.0, 1.0, 0.0],
        }
    )
    segments, proba = np.array([1, 1, 2, 2]), np.array([0.9, 0.7, 0.2, 0.4])
    profiles = SegmentSums.of_frame(segments, raw, proba).profiles()
    assert profiles.loc[2, "mean_days_since_last_order"] == 200.0  # the imputed 97 is skipped
    assert profiles.loc[1, "revenue_share"] == pytest.approx(0.4)
    assert profiles.loc[1, "mean_purchase_probability"] == pytest.approx(0.8)
    assert profiles.loc[2, "never_ordered_share"] == 0.5


def test_profiles_do_not_depend_on_row_order():
    # Float sums in another order differ in their last bits; the profile must not.
    rng = np.random.default_rng(5)
    n = 20_000
    raw = _profile_frame({f: list(rng.lognormal(3, 2, n)) for f in PROFILE_FEATURES})
    segments, proba = rng.integers(1, 5, n), rng.uniform(0, 1, n)
    first = SegmentSums.of_frame(segments, raw, proba)
    order = rng.permutation(n)
    assert raw["revenue"].to_numpy().sum() != raw["revenue"].to_numpy()[order].sum()
    shuffled = SegmentSums.of_frame(segments[order], raw.iloc[order], proba[order])
    pd.testing.assert_frame_equal(first.profiles(), shuffled.profiles(), check_exact=True)
    pd.testing.assert_frame_equal(
        first.population_moments(), shuffled.population_moments(), check_exact=True
    )
    assert first.profiles()["mean_revenue"].to_numpy() == pytest.approx(
        raw["revenue"].groupby(segments).mean().to_numpy(), rel=1e-9
    )


def _named(rows: dict[str, list[float]]) -> dict[int, tuple[str, str]]:
    raw = _profile_frame(rows)
    sums = SegmentSums.of_frame(np.arange(1, len(raw) + 1), raw, np.full(len(raw), 0.5))
    return name_segments(sums.profiles(), sums.population_moments())


def test_names_follow_the_profile():
    names = _named(
        {
            "revenue": [5000.0, 4000.0, 100.0, 100.0, 100.0],
            "n_orders_365d": [20.0, 1.0, 1.0, 1.0, 1.0],
            "days_since_last_order": [5.0, 300.0, 60.0, 60.0, 60.0],
            "discount_share": [0.0, 0.0, 0.9, 0.0, 0.0],
            "n_product_views_90d": [1.0, 1.0, 1.0, 80.0, 1.0],
            "n_sessions_90d": [5.0, 0.0, 1.0, 1.0, 1.0],
        }
    )
    assert names[1][0] == "High-value loyal"
    assert names[2][0] == "At-risk big spenders"
    assert names[3][0] == "Bargain hunters"
    assert names[4][0] == "Window shoppers"


def test_every_segment_gets_a_unique_name_and_a_one_line_description():
    rng = np.random.default_rng(3)
    n = len(ARCHETYPES) + 2  # more segments than archetypes
    names = _named({f: list(rng.uniform(1, 100, n)) for f in PROFILE_FEATURES})
    assert len({name for name, _ in names.values()}) == n
    raw = _profile_frame({"revenue": list(rng.uniform(1, 100, n))})
    sums = SegmentSums.of_frame(np.arange(1, n + 1), raw, np.full(n, 0.5))
    described = describe_segments(sums.profiles(), names)
    assert described["segment_name"].is_unique
    assert all("\n" not in text and "customers (" in text for text in described["description"])


def _groups(centers: list[list[float]], sizes: list[int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(len(centers)), sizes)
    points = np.asarray(centers, dtype=float)[group] + rng.normal(0, 0.3, (len(group), 3))
    return pd.DataFrame(points, columns=["a", "b", "c"])


def _fitted(X: pd.DataFrame, k: int, seed: int) -> Segmenter:
    # Value from the first coordinate, so the first-time ids follow it.
    return Segmenter(n_segments=k, random_state=seed).fit(X, X["a"].to_numpy())


def test_a_retrain_keeps_matched_ids_gives_a_new_cluster_a_new_id_and_reports_a_vanished_one():
    # Reference: groups near (0,0,0), (6,0,0), (0,6,0). Retrain: (0,6,0) is gone, a group at
    # (0,0,6) appeared, and the others moved a little (different customers, other seed).
    reference = _fitted(_groups([[0, 0, 0], [6, 0, 0], [0, 6, 0]], [300, 200, 250], 0), 3, 0)
    retrained_X = _groups([[0.1, 0, 0], [6, 0.1, 0], [0, 0, 6]], [280, 220, 240], 1)
    retrained = _fitted(retrained_X, 3, 5)
    old_id = {round(c.a): segment for segment, c in reference.centroids().iterrows() if c.b < 3}
    vanished = next(s for s, c in reference.centroids().iterrows() if c.b > 3)

    match = match_segments(retrained, reference, "ref", max_distance=0.5)
    relabelled = match.relabel(retrained)

    ids = relabelled.predict(retrained_X)
    assert set(ids[:280]) == {old_id[0]} and set(ids[280:500]) == {old_id[6]}
    assert set(ids[500:]) == {4}  # above the reference's largest id, 3
    assert match.new_ids == (4,) and match.vanished_ids == (vanished,)
    assert match.kept_ids == tuple(sorted(old_id.values()))
    assert set(retrained.predict(retrained_X)) == {1, 2, 3}  # the original is left as it was


def test_matching_uses_only_the_columns_both_models_share():
    X = _groups([[0, 0, 0], [6, 0, 0]], [200, 200], 0)
    reference = _fitted(X, 2, 0)
    # The retrained model has one more column, far off for every customer: it is ignored.
    wider = X.assign(d=100.0)
    retrained = Segmenter(n_segments=2, random_state=0).fit(wider, -X["a"].to_numpy())
    match = match_segments(retrained, reference, "ref", max_distance=0.5)
    assert match.n_shared_columns == 3 and match.new_ids == () and match.vanished_ids == ()
    np.testing.assert_array_equal(match.relabel(retrained).predict(wider), reference.predict(X))


def test_reference_centroids_are_moved_into_the_new_scaling_before_matching():
    X = _groups([[0, 0, 0], [6, 0, 0]], [200, 200], 0)
    reference = _fitted(X, 2, 0)
    # The same customers, scaled by a new fit whose center of `a` moved by 3 units of scale
    # 2: in the new space the groups sit at a = -1.5 and a = 1.5.
    old = pd.DataFrame({"center": [0.0, 0.0, 0.0], "scale": [1.0, 1.0, 1.0]}, index=list("abc"))
    new = old.assign(center=[3.0, 0.0, 0.0], scale=[2.0, 1.0, 1.0])
    rescaled_X = X.assign(a=(X["a"] - 3.0) / 2.0)
    retrained = _fitted(rescaled_X, 2, 0)
    moved = centroids_in_new_space(reference, old, new)
    assert match_segments(retrained, reference, "ref", 0.5).vanished_ids != ()
    match = match_segments(retrained, reference, "ref", 0.5, reference_centroids=moved)
    assert match.vanished_ids == () and max(match.distances.values()) < 0.1


def test_kept_segments_keep_the_reference_names_and_a_new_one_never_reuses_one():
    reference = _fitted(_groups([[0, 0, 0], [6, 0, 0]], [300, 200], 0), 2, 0)
    retrained = _fitted(_groups([[0, 0, 0], [6, 0, 0], [0, 6, 0]], [300, 200, 100], 1), 3, 0)
    match = match_segments(retrained, reference, "ref", 0.5)
    reference_names = {1: ("Lapsed", "old blurb 1"), 2: ("Window shoppers", "old blurb 2")}
    fresh = {1: ("Window shoppers", "b"), 2: ("Average customers", "b"), 3: ("Lapsed", "b")}
    names = carry_names(fresh, reference_names, match)
    assert {names[s] for s in match.kept_ids} == set(reference_names.values())
    assert names[3] == ("Lapsed 3", "b")
    assert len({name for name, _ in names.values()}) == 3


def test_an_artifact_records_the_segmenter_under_the_path_the_registry_trusts(tmp_path):
    # The class lives in ml/segments/segmenter.py; artifacts name it ml.segments.Segmenter,
    # so models saved before the package split still load and new ones pass the allow-list.
    X, value = _blobs()
    segmenter = Segmenter(k_range=(3, 4), random_state=0).fit(X, value)
    sio.dump(segmenter, tmp_path / "segmenter.skops")
    recorded = sio.get_untrusted_types(file=tmp_path / "segmenter.skops")
    assert "ml.segments.Segmenter" in recorded and set(recorded) <= ALLOWED_TYPES
    loaded = sio.load(tmp_path / "segmenter.skops", trusted=recorded)
    assert (loaded.predict(X) == segmenter.predict(X)).all()
