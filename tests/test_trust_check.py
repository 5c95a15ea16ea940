"""Issue 12, "Trust": static arguments asked for a gradient, and graphc.check's verdicts.

API.md section 2: every differentiated argument must be floating (a Python int, bool, str or
None named in argnums is a GradError, never a result), and check never reports success for
something it did not verify; its tolerances follow the dtype.
"""
import os
import time

import numpy as np
import pytest

import graphc
from graphc.cli import main

HERE = os.path.basename(__file__)


def _scaled(x, n):
    return np.sum(x) * n


def _product(a, b):
    return a * b


# --- grad of a static argument --------------------------------------------------------------
@pytest.mark.parametrize("transform", [graphc.grad, graphc.value_and_grad])
@pytest.mark.parametrize("value, fix", [(3, "pass 3.0"), (True, "pass 1.0"),
                                        ("s", "pass a float"), (None, "pass a float")])
def test_static_argument_asked_for_a_gradient_is_a_grad_error(transform, value, fix):
    g = transform(_scaled, argnums=1)
    for call in (g, g.source, g.graph):
        with pytest.raises(graphc.GradError) as info:
            call(np.ones(3), value)          # the line the error must name
        err = info.value
        assert isinstance(err, TypeError)
        assert err.where is not None and os.path.basename(err.where).startswith(HERE + ":")
        assert "argument 1 (n)" in str(err) and fix in err.hint


def test_two_python_ints_do_not_come_back_as_their_own_gradient():
    # Was (3, 1), and .source() was "return 3".
    g = graphc.grad(_product, argnums=(0, 1))
    with pytest.raises(graphc.GradError, match="Python int 3") as info:
        g(3, 1)
    assert "pass 3.0" in info.value.hint
    with pytest.raises(graphc.GradError, match="Python int 3"):
        g.source(3, 1)
    assert g(3.0, 1.0) == (1.0, 3.0)


def test_a_python_int_inside_a_differentiated_pytree_is_a_grad_error():
    def f(p):
        return p["w"] * p["n"]
    with pytest.raises(graphc.GradError, match=r"argument 0 \(p\['n'\]\)") as info:
        graphc.grad(f)({"w": 2.0, "n": 3})
    assert "pass 3.0" in info.value.hint
    # None inside a pytree is an empty subtree (as in JAX), and an int outside argnums is static.
    assert graphc.grad(lambda p, n: p["w"] * n)({"w": 2.0, "b": None}, 3) == {"w": 3.0, "b": None}


def test_integer_and_boolean_arrays_asked_for_a_gradient_name_the_call():
    for x in (np.arange(3), np.array([True, False]), np.int64(2)):
        with pytest.raises(graphc.GradError, match="integer or boolean") as info:
            graphc.value_and_grad(lambda x: np.sum(x * 1.0))(x)
        assert os.path.basename(info.value.where).startswith(HERE + ":")
