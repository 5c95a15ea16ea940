"""Shape and dtype rules shared by primitive records."""
from __future__ import annotations

import operator

import numpy as np

from ..errors import AxisError, ShapeError, UnsupportedError
from ..primitive import Aval, params_key as _params_key


def dummy(aval: Aval):
    """A tiny concrete stand-in with the same dtype (a Python scalar if weak)."""
    if aval.weak:
        return aval.np_proxy()
    return np.zeros((), aval.dtype)


def broadcast_shapes(*avals: Aval) -> tuple:
    shapes = [a.shape for a in avals]
    if len(shapes) == 2 and shapes[0] == shapes[1] and type(shapes[0]) is tuple \
            and all(type(d) is int for d in shapes[0]):
        return shapes[0]              # (two equal int shapes: the common case)
    if all(type(d) is int for s in shapes for d in s):
        out = _int_broadcast(shapes)  # (the common case, without NumPy's general rule)
        if out is not None:
            return out
    try:
        return tuple(np.broadcast_shapes(*(a.shape for a in avals)))
    except ValueError:
        shapes = " and ".join(a.short() for a in avals)
        raise ShapeError(f"operands could not be broadcast together: {shapes}",
                         hint="check the shapes; use x.reshape(...) or x[:, None] to add an axis "
                              "that should broadcast") from None


def _int_broadcast(shapes):
    """NumPy's broadcast of plain-int shapes, or None where they do not broadcast."""
    out = [1] * max((len(s) for s in shapes), default=0)
    for s in shapes:
        for i, d in enumerate(s, len(out) - len(s)):
            o = out[i]
            if d != o:
                if o == 1:
                    out[i] = d
                elif d != 1:
                    return None
    return tuple(out)


def result_dtype(fn, avals):
    """dtype NumPy gives ``fn`` on these inputs (NEP 50 weak scalars included)."""
    import warnings
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            out = fn(*[dummy(a) for a in avals])
        except TypeError as e:
            kinds = ", ".join(a.short() for a in avals)
            raise UnsupportedError(f"NumPy does not support this operation on {kinds}: {e}") from None
    return np.asarray(out).dtype


def elementwise_rule(fn):
    """Shape rule of an elementwise op: broadcast shapes, NumPy's result dtype."""
    dtypes: dict = {}     # (operand dtypes and weakness, params) -> result dtype

    results: dict = {}    # (operand avals, params) -> result aval (bounded)

    def rule(*avals, **params):
        try:              # (the whole answer, cached: a hot path of building a large graph)
            full = (tuple([(a.shape, a.dtype, a.weak) for a in avals]),
                    _params_key(params) if params else ())
            out = results.get(full)
        except TypeError:  # (an unhashable param or dimension: no caching)
            full, out = None, None
        if out is not None:
            return out
        shape = broadcast_shapes(*avals)
        try:              # the result dtype depends only on the operands' dtypes and params
            key = (tuple([(a.dtype, a.weak) for a in avals]),
                   _params_key(params) if params else ())
            dtype = dtypes.get(key)
        except TypeError:  # (an unhashable param: no caching)
            key, dtype = None, None
        if dtype is None:
            dtype = result_dtype(lambda *xs: fn(*xs, **params), avals)
            if key is not None:
                dtypes[key] = dtype
        out = Aval(shape, dtype, dtype.kind in "biuf" and all(a.weak for a in avals))
        if full is not None:
            if len(results) >= 4096:
                results.clear()
            results[full] = out
        return out
    return rule


def norm_axis(axis, ndim, what="axis"):
    """Normalize ``axis`` (None, int or tuple) to a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = _static_int(a, what)
        # NumPy accepts axis 0 and -1 on a 0-d array.
        if ndim == 0 and a in (0, -1):
            continue   # on a 0-d array there is no axis to reduce: normalize to ()
        out.append(one_axis(a, ndim, what))
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated {what} in {axis!r}")
    return tuple(sorted(out))


def _static_int(a, what, expected="a static int or tuple of ints", hint=None):
    # bool is an int to Python but not an axis or a size to NumPy (TypeError there too).
    if hasattr(a, "aval"):
        a.__index__()     # a traced value: the control-flow error, which says why
    try:
        if isinstance(a, (bool, np.bool_)):
            raise TypeError
        return int(operator.index(a))   # what NumPy accepts: ints, NumPy ints, 0-d int arrays
    except TypeError:
        raise UnsupportedError(f"{what} must be {expected}, got {a!r:.60}",
                               hint=hint or f"pass a Python int as {what}, e.g. 0 or -1") from None


def one_axis(axis, ndim, what="axis"):
    """One ``axis`` (an int in ``[-ndim, ndim)``) as a non-negative int, or NumPy's AxisError.

    Never wraps around with ``%``: ``axis=3`` on a 1-d array is a mistake NumPy
    reports, not axis 0.
    """
    a = _static_int(axis, what)
    if not -ndim <= a < ndim:
        raise AxisError(f"{what} {a} is out of bounds for an array of dimension {ndim}",
                        axis=a, ndim=ndim)
    return a % ndim


def shape_ints(shape, what="shape"):
    """A shape (an int or a sequence of ints) as a tuple of Python ints.

    Floats and bools are a ``TypeError`` in NumPy (``a.reshape(3.0)``) and here;
    ``int()`` also strips int subclasses, so only plain ints reach generated code.
    """
    dims = shape if isinstance(shape, (tuple, list)) else (shape,)
    return tuple(_static_int(d, f"{what}: each size", "an int",
                             hint="sizes are ints: write int(n) (or n // k, not n / k)")
                 for d in dims)


def size_flops(out, *ins, **params):
    return out.size


def zero_flops(out, *ins, **params):
    return 0


def input_flops(out, *ins, **params):
    return ins[0].size


def sym_at_point(fn):
    """SymPy semantics of a piecewise-constant op: its NumPy value at numeric
    inputs (graphc.symbolic substitutes the check's point first)."""
    def sym(*args, **params):
        nums = [np.asarray(a, dtype=object).astype(np.float64) if np.asarray(a).dtype == object
                else np.asarray(a) for a in args]
        return np.asarray(fn(*nums, **params), dtype=object)
    return sym
