"""Deterministic row samples: the same rows for the same size and seed, in their original order."""

from __future__ import annotations

import numpy as np


def sample_rows(n_rows: int, size: int, random_state: int) -> np.ndarray:
    """Sorted positions of a random sample of at most `size` of `n_rows` rows."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(random_state).choice(n_rows, size, replace=False))


def sample_counts(counts: np.ndarray, size: int, random_state: int) -> np.ndarray:
    """Each group's count in a random sample of at most `size` of the units counted by `counts`.

    For collapsed rows (one row per distinct value, `counts` units each, e.g. customers per
    distinct purchase history): the units are sampled without replacement by `sample_rows`,
    and the result counts the sampled ones per row, so it equals collapsing a sample of the
    uncollapsed rows. Rows none of whose units were drawn count 0.
    """
    counts = np.asarray(counts, dtype=np.int64)
    units = sample_rows(int(counts.sum()), size, random_state)
    rows = np.searchsorted(np.cumsum(counts), units, side="right")
    return np.bincount(rows, minlength=len(counts))
