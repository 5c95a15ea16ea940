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

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import graphc
from test_fuzz import _as_fn, draw_program

numba = pytest.importorskip("numba")

LONG = max(1, int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "2000")) // 20)
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
quick = settings(max_examples=4, deadline=None, derandomize=True, database=None,
                 suppress_health_check=_HEALTH, phases=[Phase.explicit, Phase.generate])
long = settings(max_examples=LONG, deadline=None, suppress_health_check=_HEALTH,
                phases=[Phase.explicit, Phase.reuse, Phase.generate])


def _leaves(tree):
    return [np.asarray(v) for v in graphc.pytree.flatten(tree)[0]]


def assert_same_up_to_rounding(got, want, rtol, prog):
    got, want = _leaves(got), _leaves(want)
    assert len(got) == len(want), prog
    for i, (u, v) in enumerate(zip(got, want)):
        assert u.shape == v.shape and u.dtype == v.dtype, \
            f"output {i}: {u.dtype}{list(u.shape)} vs the NumPy target's {v.dtype}{list(v.shape)}\n{prog}"
        scale = max(1.0, float(np.max(np.abs(v), initial=0.0)))
        err = np.abs(u.astype(np.float64) - v.astype(np.float64))
        assert np.all(err <= rtol * scale), \
            f"output {i}: numba {u} vs the NumPy target {v} (max error {np.max(err)})\n{prog}"


def check(seed, dtype):
    prog = draw_program(seed)
    xs = [x.astype(dtype) for x in prog.inputs]
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for kind, make in (("outputs", graphc.compile),
                       ("loss", lambda f, **k: graphc.value_and_grad(f, argnums=(0, 1, 2), **k))):
        f = _as_fn(prog, kind)
        with np.errstate(all="ignore"):
            want = make(f)(*xs)
            got = make(f, target="numba")(*xs)
        assert_same_up_to_rounding(got, want, rtol, prog)


@settings(quick)
@given(st.integers(0, 2**32 - 1))
def test_numba_programs_like_numpy_target(seed):
    check(seed, np.float64)


@pytest.mark.fuzz
@settings(long)
@given(st.integers(0, 2**32 - 1))
def test_numba_fuzz_long_float64(seed):
    check(seed, np.float64)


@pytest.mark.fuzz
@settings(long)
@given(st.integers(0, 2**32 - 1))
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
