"""Table-driven tests of the NumPy functions graphc implements with composites.

Every NumPy callable registered with ``graphc.ops._numpy_table.implements(...,
samples=...)`` is called inside a compiled function on each sample ``Call`` and
compared with NumPy itself: same values, dtype and shape; and, for float64
arguments of a differentiable call, the gradient of ``sum(f(...) * R)`` against
central finite differences.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import graphc
from graphc.ops._numpy_table import SAMPLES
from graphc.ops._samples import Draw

from _fd import fd_grad_args

SEED = 20261202


def _name(f):
    if isinstance(f, str):
        return f".{f}()"
    mod = getattr(f, "__module__", "") or ""
    prefix = "np.linalg." if "linalg" in mod else "np."
    return prefix + f.__name__


def _calls():
    out = []
    for f, samples in sorted(SAMPLES.items(), key=lambda kv: _name(kv[0])):
        draw = Draw(np.random.default_rng([SEED, zlib.crc32(_name(f).encode())]))
        for i, call in enumerate(samples(draw)):
            out.append(pytest.param(f, call, id=f"{_name(f)}-{i}-{call.desc}"))
    return out


def _runner(f, call):
    if isinstance(f, str):
        return lambda *a: getattr(a[0], f)(*a[1:], **call.kwargs)
    return lambda *a: f(*a, **call.kwargs)


CALLS = _calls()


@pytest.mark.parametrize("f,call", CALLS)
def test_value_dtype_and_shape_match_numpy(f, call):
    run = _runner(f, call)
    expected = run(*call.args)
    got = graphc.compile(run)(*call.args)
    for e, g in zip(*(x if isinstance(x, (tuple, list)) else (x,) for x in (expected, got))):
        e, g = np.asarray(e), np.asarray(g)
        assert g.shape == e.shape and g.dtype == e.dtype, (g.shape, g.dtype, e.shape, e.dtype)
        tol = 1e-5 if e.dtype == np.float32 else 1e-10
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


def _float64_args(call):
    return [i for i, a in enumerate(call.args)
            if isinstance(a, np.ndarray) and a.dtype == np.float64]


@pytest.mark.parametrize("f,call", [c for c in CALLS if c.values[1].grad
                                    and _float64_args(c.values[1])])
def test_gradient_matches_finite_differences(f, call):
    run = _runner(f, call)
    out = np.asarray(run(*call.args))
    if out.dtype.kind != "f":
        pytest.skip("integer/bool result: no gradient")
    weights = np.random.default_rng(0).standard_normal(out.shape)
    argnums = tuple(_float64_args(call))

    def loss(*a):
        return np.sum(run(*a) * weights)

    got = graphc.grad(loss, argnums=argnums)(*call.args)
    want = fd_grad_args(loss, call.args, argnums)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_every_registration_is_sampled():
    """A NumPy function graphc implements through the table has samples to test it."""
    from graphc.ops._numpy_table import FUNCTIONS, METHODS, UFUNCS
    missing = [_name(f) for f in (*UFUNCS, *FUNCTIONS) if f not in SAMPLES]
    missing += [_name(m) for m in METHODS if m not in SAMPLES]
    assert missing == []


def _takes_out(f, call):
    """The NumPy function has ``out`` and the sample does not pass it already (positionally)."""
    import inspect
    if isinstance(f, str):
        return False
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return isinstance(f, np.ufunc)
    return "out" in sig.parameters and \
        "out" not in sig.bind_partial(*call.args, **call.kwargs).arguments


@pytest.mark.parametrize("f,call", [c for c in CALLS if _takes_out(*c.values)])
def test_out_is_refused(f, call):
    """``out=`` writes into an array in place: graphc refuses it, naming the fix."""
    result = f(*call.args, **call.kwargs)
    if isinstance(result, (tuple, list)):       # np.divmod, np.linalg.slogdet: one per result
        out = tuple(np.empty(np.shape(r), np.asarray(r).dtype) for r in result)
    else:
        out = np.empty(np.shape(result), np.asarray(result).dtype)

    def run(*a):
        return f(*a, out=out, **call.kwargs)
    with pytest.raises(graphc.InPlaceError, match="assign the result"):
        graphc.compile(run)(*call.args)
