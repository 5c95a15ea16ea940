"""Signature fidelity: every NumPy function graphc implements takes NumPy's own call forms.

Generated from NumPy's signatures (``inspect.signature``), so a new function cannot
silently reorder arguments, rename a keyword or drop a default: for each NumPy
function graphc maps, its implementation must have the same parameters, with the
same names, kinds (positional-only, keyword-only, ...) and order, and the same
defaults wherever NumPy's default is a value (``np._NoValue``, NumPy's "not given",
may be spelled by graphc as any default).
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import graphc  # noqa: F401  (installs the NumPy tables)
from graphc import numpy_api
from graphc.ops._numpy_table import METHODS

_NO_VALUE = getattr(np, "_NoValue", object())


def _signature(f):
    try:
        return inspect.signature(f)
    except (TypeError, ValueError):
        return None


def _params(sig, skip_self=False):
    params = list(sig.parameters.values())
    return params[1:] if skip_self else params


def _same_default(t, o):
    # np._NoValue is NumPy's "not given": graphc may use it for any NumPy default
    return (t.default is _NO_VALUE or o.default is _NO_VALUE or o.default is t.default
            or o.default == t.default)


def _mismatch(numpy_sig, graphc_sig, skip_self=False):
    theirs, ours = _params(numpy_sig, skip_self), _params(graphc_sig, skip_self)
    shape_t = [(p.name, p.kind) for p in theirs]
    shape_o = [(p.name, p.kind) for p in ours]
    if shape_t != shape_o:
        return f"parameters {shape_o} != NumPy's {shape_t}"
    return _defaults_mismatch(theirs, ours)


def _method_mismatch(numpy_sig, graphc_sig):
    """ndarray methods' text signatures hide keywords in ``**kwargs`` (``x.sum(keepdims=)``)
    and mark parameters positional-only: graphc's method must take NumPy's named parameters
    first, in order and by name, and may accept more (the keywords ``**kwargs`` stands for)."""
    theirs = [p for p in _params(numpy_sig, True) if p.kind is not p.VAR_KEYWORD]
    ours = _params(graphc_sig, True)
    names_o = [p.name for p in ours][:len(theirs)]
    if names_o != [p.name for p in theirs]:
        return f"parameters {names_o} != NumPy's {[p.name for p in theirs]}"
    return _defaults_mismatch(theirs, ours[:len(theirs)])


def _defaults_mismatch(theirs, ours):
    for t, o in zip(theirs, ours):
        if t.default is inspect.Parameter.empty:
            if o.default is not inspect.Parameter.empty:
                return f"{t.name} has a default, NumPy's is required"
        elif o.default is inspect.Parameter.empty:
            return f"{t.name} is required, NumPy's has a default"
        elif not _same_default(t, o):
            return f"{t.name}={o.default!r}, NumPy's default is {t.default!r}"
    return None


def _name(f):
    mod = getattr(f, "__module__", "") or ""
    return ("np.linalg." if "linalg" in mod else "np.") + f.__name__


FUNCTIONS = sorted(((f, impl) for f, impl in numpy_api.FUNCTIONS.items()
                    if _signature(f) is not None), key=lambda fi: _name(fi[0]))


@pytest.mark.parametrize("f,impl", FUNCTIONS, ids=[_name(f) for f, _ in FUNCTIONS])
def test_function_takes_numpys_signature(f, impl):
    ours = _signature(impl)
    assert ours is not None, f"{_name(f)}: graphc's implementation has no signature"
    problem = _mismatch(_signature(f), ours)
    assert problem is None, f"{_name(f)}{_signature(f)}: graphc's {ours}: {problem}"


_METHODS = sorted((name, impl) for name, impl in METHODS.items()
                  if _signature(getattr(np.ndarray, name, None)) is not None)


@pytest.mark.parametrize("name,impl", _METHODS, ids=[f".{n}()" for n, _ in _METHODS])
def test_method_takes_numpys_signature(name, impl):
    problem = _method_mismatch(_signature(getattr(np.ndarray, name)), _signature(impl))
    assert problem is None, f"ndarray.{name}: {problem}"


def test_the_check_covers_the_mapped_functions():
    # a check over nothing would pass trivially
    assert len(FUNCTIONS) >= 20

