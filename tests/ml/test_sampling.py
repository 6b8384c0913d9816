import numpy as np

from ml.modelling.sampling import sample_counts, sample_rows


def test_sampled_counts_equal_collapsing_a_sample_of_the_uncollapsed_rows():
    counts = np.random.default_rng(0).integers(0, 5, 1_000)
    expanded = np.repeat(np.arange(len(counts)), counts)
    sampled = sample_counts(counts, 700, random_state=7)
    expected = np.bincount(expanded[sample_rows(len(expanded), 700, 7)], minlength=len(counts))
    np.testing.assert_array_equal(sampled, expected)
    assert sampled.sum() == 700 and np.all(sampled <= counts)


def test_counts_within_the_size_are_kept_whole():
    counts = np.array([3, 0, 1, 5])
    np.testing.assert_array_equal(sample_counts(counts, 9, random_state=1), counts)
    np.testing.assert_array_equal(sample_counts(counts, 100, random_state=1), counts)
