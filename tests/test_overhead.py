"""The cached call path stays cheap: counted in function calls, not in wall time.

A compiled function called again with the same signature runs its cache-key
computation, one dictionary lookup and the generated code.  Timing that on a
shared machine is noise, so these tests count the Python function calls and
the C calls graphc's own dispatch makes (``sys.setprofile``), and check that the
signature check behind the fast path still tells signatures apart.
"""
import math
import os
import sys

import numpy as np
import pytest

import graphc
from graphc import compiled

import _libm


def lecture_f(w1, w2):
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    return z4 * z5


def lecture_grad(w1, w2):
    z1 = w1 / w2
    z4 = 3 * z1 - math.exp(2 * w2)
    z5 = math.sin(2 * math.pi * z1) + z4
    d_z4 = z5 + z4
    d_z1 = 3 * d_z4 + z4 * math.cos(2 * math.pi * z1) * 2 * math.pi
    return d_z1 / w2, -2 * d_z4 * math.exp(2 * w2) - d_z1 * z1 / w2


GRAPHC_DIR = os.path.dirname(compiled.__file__)


def profile_call(fn, *args, **kwargs):
    """(graphc's Python frames entered, C functions called from graphc/compiled.py)
    in one call of ``fn``."""
    events = []

    def hook(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith((GRAPHC_DIR, "<graphc:")):
            events.append(("py", frame.f_code.co_filename, frame.f_code.co_name))
        elif event == "c_call" and frame.f_code.co_filename == compiled.__file__:
            events.append(("c", frame.f_code.co_name, getattr(arg, "__name__", repr(arg))))

    sys.setprofile(hook)
    try:
        out = fn(*args, **kwargs)
    finally:
        sys.setprofile(None)
    py = [e for e in events if e[0] == "py"]
    c = [e for e in events if e[0] == "c"]
    return out, py, c


@pytest.mark.skipif(not _libm.LECTURE, reason=_libm.REASON)
def test_cached_scalar_call_is_two_python_frames():
    vg = graphc.value_and_grad(lecture_f, argnums=(0, 1))
    vg(1.5, 0.5)
    out, py, c = profile_call(vg, 1.5, 0.5)
    # Compiled.__call__ and the generated function: no key helper, no wrapper,
    # no traceback or name-capture machinery on the cached path.
    assert [name for _, _, name in py] == ["__call__", "lecture_f_value_and_grad"], py
    assert py[1][1].startswith("<graphc:"), py
    assert len(c) <= 3, c          # len, dict.get
    np.testing.assert_allclose(out[0], lecture_f(1.5, 0.5), rtol=1e-15)
    np.testing.assert_allclose(out[1], lecture_grad(1.5, 0.5), rtol=1e-12)


def test_cached_array_call_is_three_python_frames():
    f = graphc.grad(lambda x, w: np.tanh(x @ w).sum(), argnums=1)
    x, w = np.ones((3, 4)), np.full((4, 2), 0.1)
    f(x, w)
    _, py, c = profile_call(f, x, w)
    names = [name for _, _, name in py]
    assert names[:2] == ["__call__", "_args_key"], names
    assert len(names) == 3, names        # + the generated function
    assert len(c) <= 6, c


def test_scalar_fast_path_keeps_signatures_apart():
    """The float-only key must not serve another signature's code."""
    f = graphc.compile(lambda a, b: a * b ** 2)
    assert f(2.0, 3.0) == 18.0
    # an int is a static value: another entry with its own answer
    assert f(2.0, 3) == 18.0 and f(2.0, 4) == 32.0
    assert f(2, 3.0) == 18.0
    # NumPy scalars: their own dtype
    r = f(np.float32(2.0), np.float32(3.0))
    assert np.asarray(r).dtype == np.float32 and r == 18.0
    # a float subclass is not a float to the fast path (its type is not float)
    class F(float):
        pass
    assert f(F(2.0), F(3.0)) == 18.0
    assert f(2.0, 3.0) == 18.0 and f(2.0, 5.0) == 50.0
    # fewer or more arguments: an error, not another entry's code
    with pytest.raises(graphc.GraphcError):
        f(2.0)
    with pytest.raises(graphc.GraphcError):
        f(2.0, 3.0, 4.0)
    # keywords take the general key
    assert f(2.0, b=3.0) == 18.0
    g = graphc.grad(lambda a, b: a * b ** 2, argnums=(0, 1))
    assert g(2.0, 3.0) == (9.0, 12.0)


def test_scalar_fast_path_with_a_closed_over_array():
    """A float-only signature whose code reads a closed-over array still passes it."""
    w = np.array([1.0, 2.0])
    f = graphc.compile(lambda a: (a * w).sum())
    assert f(2.0) == 6.0
    w = np.array([3.0, 4.0])          # rebinding the cell: the current contents are used
    assert f(2.0) == 14.0
    # __call__, _args_key, _call_closure, generated (w1c: the floats-only path, which
    # skips the key, is for signatures without closed-over arrays; graphc/floats_call.py)
    assert len(profile_call(f, 2.0)[1]) == 4
