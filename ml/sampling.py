"""Deterministic row samples: the same rows for the same size and seed, in their original order."""

from __future__ import annotations

import numpy as np


def sample_rows(n_rows: int, size: int, random_state: int) -> np.ndarray:
    """Sorted positions of a random sample of at most `size` of `n_rows` rows."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(random_state).choice(n_rows, size, replace=False))
