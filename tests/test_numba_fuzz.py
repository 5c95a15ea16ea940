"""Random programs on target="numba" against the NumPy target (issue 18's fused loops).

tests/test_fuzz.py's programs (every op of its table, broadcasting, reductions, indexing,
products, shapes of rank 0-3) are compiled twice, with the NumPy target and with the numba
target, and their values and gradients compared: the same shapes and dtypes, the same
values up to the C library's rounding (numba calls libm where NumPy may use its own SIMD
functions), in float64 and float32.  The fused loops decide what to fuse, which loops to
write, which sums to accumulate per row and where to write in place: a wrong decision is a
wrong number, which this catches.

Numba compiles each kernel (about a second), so ``make test`` runs a handful of programs
and ``make fuzz`` ``GRAPHC_FUZZ_EXAMPLES // 20`` of each kind.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from _fuzz import LONG, SEEDS, long, quick
from _target_check import check as _check
from test_fuzz import draw_program

numba = pytest.importorskip("numba")


def check(seed, dtype):
    _check(seed, dtype, "numba")


@quick(4)
@given(SEEDS)
def test_numba_programs_like_numpy_target(seed):
    check(seed, np.float64)


@pytest.mark.fuzz
@long(LONG // 20)
@given(SEEDS)
def test_numba_fuzz_long_float64(seed):
    check(seed, np.float64)


@pytest.mark.fuzz
@long(LONG // 20)
@given(SEEDS)
def test_numba_fuzz_long_float32(seed):
    check(seed, np.float32)


def test_a_select_among_the_totals():
    """Seed 347 of the long run: the gradient of ``max`` over a 0-d value is a
    ``masked_mul`` computed after the loop from two sums (a total); its product was never
    named there, and code generation failed with a KeyError."""
    prog = draw_program(347)
    assert "max(v3, {'axis': None" in repr(prog)
    check(347, np.float64)
    check(347, np.float32)


@pytest.mark.parametrize("seed, dtype", [(38632237, np.float64), (1166132, np.float32)])
def test_a_one_element_constant_in_a_tiny_product(seed, dtype):
    """Seeds of the long run: a 1x1 constant (the loss weight of a 1-element output)
    inside a product written as a loop, or read as a row's value, is a number in the
    kernel, not an argument; code generation failed with a KeyError."""
    check(seed, dtype)
