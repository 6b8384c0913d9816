"""Fixtures of the value-model tests: the optional reference implementation."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def lifetimes() -> ModuleType:
    """The `lifetimes` package (unmaintained since 2020): only ever a test-time cross-check."""
    with warnings.catch_warnings():
        # It sets a pandas option that pandas 3 deprecates, at import.
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module("lifetimes")
        except ImportError:
            pytest.skip("lifetimes is not installed (pip install -e '.[dev]' brings it)")
