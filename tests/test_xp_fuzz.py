"""Random programs on target="array-api" (on NumPy arrays) against the NumPy target.

tests/test_fuzz.py's programs compiled for the array-API target (issue 17), whose code
has no in-place writes, its own window stacks, scatter-adds and masks, and its own entry
checks: the same shapes, dtypes and values as the NumPy target's, up to rounding, in
float64 and float32, for compiled outputs and for value_and_grad.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from _target_check import check

pytest.importorskip("array_api_compat")

LONG = max(1, int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "2000")) // 4)
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
quick = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                 suppress_health_check=_HEALTH, phases=[Phase.explicit, Phase.generate])
long = settings(max_examples=LONG, deadline=None, suppress_health_check=_HEALTH,
                phases=[Phase.explicit, Phase.reuse, Phase.generate])


@settings(quick)
@given(st.integers(0, 2**32 - 1))
def test_array_api_programs_like_numpy_target(seed):
    check(seed, np.float64, "array-api")


@pytest.mark.fuzz
@settings(long)
@given(st.integers(0, 2**32 - 1))
def test_array_api_fuzz_long_float64(seed):
    check(seed, np.float64, "array-api")


@pytest.mark.fuzz
@settings(long)
@given(st.integers(0, 2**32 - 1))
def test_array_api_fuzz_long_float32(seed):
    check(seed, np.float32, "array-api")
