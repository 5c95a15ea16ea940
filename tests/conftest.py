"""Shared pytest configuration for graphc's tests (kept minimal)."""
import os
import sys

import numpy as np
import pytest

# Make the helper modules in tests/ (e.g. _fd.py) importable however pytest is run.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def rng():
    """A fresh, fixed-seed random generator for each test."""
    return np.random.default_rng(0)
