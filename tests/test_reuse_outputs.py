"""Buffer reuse never writes into memory the caller gets back.

Codegen writes a large elementwise result into a dead argument (``out=``) when that
argument is a fresh array, or a reshape of one with no other user.  A reshape's base
that is itself returned is not dead: writing into the reshape would change the
returned array (a silent wrong answer found in review, 2026-12-03).
"""
import numpy as np
import pytest

import graphc


def _returns_base_and_masked(x, W):
    b = x @ W
    r = b.reshape(1024, 512)
    h = r * (r > 0)
    return b, h


def _returns_base_and_relu(x, W):
    b = x @ W
    r = b.reshape(1024, 512)
    return b, np.maximum(r, 0.0) + r


@pytest.mark.parametrize("fn", [_returns_base_and_masked, _returns_base_and_relu])
def test_a_returned_base_is_never_written_through_a_reshape(fn):
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((512, 64)), rng.standard_normal((64, 1024))   # 4 MiB results
    compiled = graphc.compile(fn)
    got = compiled(x, W)
    want = fn(x, W)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    assert "out=r" not in compiled.source(x, W)


def test_a_reshape_of_a_dead_fresh_result_is_still_reused():
    def f(x, W):
        r = (x @ W).reshape(1024, 512)
        return r * (r > 0)
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((512, 64)), rng.standard_normal((64, 1024))
    compiled = graphc.compile(f)
    assert np.array_equal(compiled(x, W), f(x, W))
    assert "out=" in compiled.source(x, W)          # the optimisation stays where it is safe
