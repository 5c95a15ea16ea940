"""Closed-over arrays in array-API modules.

A function that reads a module-level or closure NumPy array (``W`` in
``def f(x): return x @ W``) gets it, as on the NumPy target, as a keyword-only
parameter whose default is the value seen at trace time; a compiled callable passes
the array's current contents at each call (graphc/compiled_xp.py).  The array-API
module converts it to the caller's namespace and device once per call::

    def f(x, *, W=W_DEFAULT, xp=None):
        ...
        W = xp.asarray(W, dtype=xp.float64, device=_device)

``W_DEFAULT`` is written into the module as nested lists (exact: ``repr`` of each
float), so an exported module stands alone; in-process it is bound to the NumPy
array itself.  Converting at each call (not once per namespace, cached) is what
is correct under ``jax.jit`` (the array becomes a constant of the traced
computation) and when the user rebinds or mutates the array between calls.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import UnsupportedError
from .xp_emit import xp_dtype

__all__ = ["closure_params", "closure_lines", "data_text"]


def _item(v, kind) -> str:
    if kind == "b":
        return repr(bool(v))
    if kind in "iu":
        return repr(int(v))
    if kind == "c":
        return f"complex({_item(v.real, 'f')}, {_item(v.imag, 'f')})"
    v = float(v)
    if math.isnan(v):
        return 'float("nan")'
    if math.isinf(v):
        return 'float("inf")' if v > 0 else '-float("inf")'
    return repr(v)


def data_text(arr) -> str:
    """Nested Python lists (or a number for a 0-d array) that rebuild ``arr`` exactly."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return _item(arr.item(), arr.dtype.kind)
    if arr.ndim == 1:
        return "[" + ", ".join(_item(v, arr.dtype.kind) for v in arr.tolist()) + "]"
    return "[" + ", ".join(data_text(a) for a in arr) + "]"


def closure_params(g, em, closure, defaults, bound):
    """The ``name=NAME_DEFAULT`` parameters of the closed-over arrays; their module-level
    data lines go to ``defaults`` and are bound to the arrays in-process (``bound``)."""
    params = []
    for nid, name in closure:
        value = g[nid].value
        if not isinstance(value, np.ndarray):
            raise UnsupportedError("the array-API target reads closed-over NumPy arrays only",
                                   where=g[nid].where, hint="pass the value as an argument")
        mod = em.ns.new(f"{name.upper()}_DEFAULT")
        defaults.append(f"{mod} = {data_text(value)}")
        bound[len(defaults) - 1] = (mod, value)
        params.append(f"{name}={mod}")
    return params


def closure_lines(g, closure):
    """Each closed-over array converted to the namespace and device of the call, and
    (in the checked variant) its shape checked: an exported module may be passed others."""
    lines = []
    for nid, name in closure:
        aval = g.aval(nid)
        lines.append(f"{name} = xp.asarray({name}, dtype={xp_dtype(aval.dtype)}, "
                     "device=_device)")
        lines.append(f"_check({name!r}, {name}, {tuple(aval.shape)!r}, "
                     f"{np.dtype(aval.dtype).name!r}, xp)")
    return lines
