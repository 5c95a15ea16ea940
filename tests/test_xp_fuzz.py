"""Random programs on target="array-api" (on NumPy arrays) against the NumPy target.

tests/test_fuzz.py's programs compiled for the array-API target (issue 17), whose code
has no in-place writes, its own window stacks, scatter-adds and masks, and its own entry
checks: the same shapes, dtypes and values as the NumPy target's, up to rounding, in
float64 and float32, for compiled outputs and for value_and_grad.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from _fuzz import LONG, SEEDS, long, quick
from _target_check import check

pytest.importorskip("array_api_compat")



@quick(30)
@given(SEEDS)
def test_array_api_programs_like_numpy_target(seed):
    check(seed, np.float64, "array-api")


@pytest.mark.fuzz
@long(LONG // 4)
@given(SEEDS)
def test_array_api_fuzz_long_float64(seed):
    check(seed, np.float64, "array-api")


@pytest.mark.fuzz
@long(LONG // 4)
@given(SEEDS)
def test_array_api_fuzz_long_float32(seed):
    check(seed, np.float32, "array-api")
