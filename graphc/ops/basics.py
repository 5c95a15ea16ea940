"""NumPy's array basics on traced values, with NumPy's own signatures: where, reshape,
transpose, broadcast_to and the shape queries (shape, ndim, size, result_type)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from . import composite as C
from . import elementwise as E
from ._numpy_table import Call, implements


def _only_c(order, what):
    if order not in ("C", None):
        raise UnsupportedError(f"np.{what}(order={order!r}) is not supported; only order='C'",
                               hint="graphc's arrays are C-ordered: leave order= out")


def _where_samples(d):
    x, y = d.rnd(3, 4), d.rnd(3, 4)
    return [Call((x > 0, x, y), {}, "mask"), Call((d.rnd(3, 4) > 0, d.rnd(4), 0.0), {}, "bcast"),
            Call((d.rnd(3) > 0, d.rnd(3).astype(np.float32), d.rnd(3).astype(np.float32)), {}, "f32")]


@implements(np.where, samples=_where_samples)
def where(condition, x=None, y=None, /):
    """``x`` where ``condition`` holds, else ``y``; the gradient flows to the chosen side only.

    The one-argument form (``np.nonzero``) has a data-dependent shape and is refused.
    """
    if x is None or y is None:
        raise UnsupportedError("np.where(condition) with one argument (np.nonzero) gives a "
                               "data-dependent shape", hint="use np.where(cond, x, y)")
    return E.where(condition, x, y)


def _reshape_samples(d):
    return [Call((d.rnd(3, 4), (4, 3)), {}, "(4,3)"), Call((d.rnd(3, 4), (-1,)), {}, "-1"),
            Call((d.rnd(2, 3, 2), (3, -1)), {"order": "C"}, "order=C")]


@implements(np.reshape, samples=_reshape_samples)
def reshape(a, /, shape, order="C", *, copy=None):
    """``a`` with a new shape (one dimension may be -1); only C order."""
    _only_c(order, "reshape")
    if copy is False:
        raise UnsupportedError("np.reshape(copy=False) asks for a view guarantee graphc does "
                               "not make", hint="leave copy= out")
    return C.do_reshape(a, shape)


def _transpose_samples(d):
    return [Call((d.rnd(3, 4),), {}, "2-d"), Call((d.rnd(2, 3, 4), (1, 0, 2)), {}, "axes"),
            Call((d.rnd(2, 3, 4),), {"axes": (-1, 0, 1)}, "negative axes")]


@implements(np.transpose, samples=_transpose_samples)
def transpose(a, axes=None):
    """``a`` with its axes permuted (reversed when ``axes`` is None)."""
    return C.do_transpose(a, axes)


def _broadcast_samples(d):
    return [Call((d.rnd(4), (3, 4)), {}, "(4,)->(3,4)"), Call((d.rnd(3, 1), (2, 3, 5)), {}, "3-d")]


@implements(np.broadcast_to, samples=_broadcast_samples)
def broadcast_to(array, shape, subok=False):
    """``array`` broadcast to ``shape``; the gradient is summed back over the new axes."""
    return C.do_broadcast_to(array, shape)


def _expand_samples(d):
    return [Call((d.rnd(3, 4), 0), {}, "axis 0"), Call((d.rnd(3, 4), -1), {}, "axis -1"),
            Call((d.rnd(3), (0, 2)), {}, "tuple")]


@implements(np.expand_dims, samples=_expand_samples)
def expand_dims(a, axis):
    """``a`` with new length-1 axes at the positions ``axis`` (an int or a tuple)."""
    return C.expand_dims(a, axis)

