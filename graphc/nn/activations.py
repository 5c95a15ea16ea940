"""Activation functions, as composites of primitives.

Kink convention, the same everywhere: at exactly 0, ``relu`` and
``leaky_relu`` take the derivative of their left piece (0 and
``negative_slope``), as PyTorch does.  (``np.maximum`` itself splits a tie
half/half between its two inputs, as in JAX.)
"""
from __future__ import annotations

import numpy as np

from ..ops import composite as C
from ..ops import elementwise as E
from ..ops import activation as _nn
from ..ops._rules import one_axis
from ._util import floating

__all__ = ["sigmoid", "relu", "leaky_relu", "elu", "softplus", "maxout", "tanh"]


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed as ``exp(min(x, 0)) / (1 + exp(-|x|))``,
    which never overflows and stays accurate in the tails.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> graphc.nn.sigmoid(np.array([0.0, 1000.0, -1000.0]))
    array([0.5, 1. , 0. ])
    """
    return _nn.sigmoid(floating(x))


def tanh(x):
    """``np.tanh`` (provided for symmetry; ``np.tanh`` works directly)."""
    return E.tanh(floating(x))


def relu(x):
    """``max(x, 0)``; derivative 0 at 0.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> graphc.nn.relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """
    return _nn.relu(floating(x))


def leaky_relu(x, negative_slope=0.01):
    """``x`` for ``x > 0``, else ``negative_slope * x``; derivative ``negative_slope`` at 0."""
    x = floating(x)
    return C.hint(E.where(x > 0, x, negative_slope * x), "leaky_relu")


def elu(x, alpha=1.0):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    The exponential sees ``x`` clamped to ``<= 0``, so large positive inputs cannot
    overflow (and cannot turn the unused branch's gradient into ``0 * inf = nan``).
    The clamp is a ``where`` rather than ``np.minimum`` (which splits a tie's
    gradient half/half), so the derivative at 0 is ``alpha``, the left piece's.
    """
    x = floating(x)
    pos = x > 0
    neg = alpha * E.expm1(E.where(pos, 0.0, x))
    return C.hint(E.where(pos, x, neg), "elu")


def softplus(x):
    """``log(1 + exp(x))``, stable for any finite input (``max(x, 0) + log1p(exp(-|x|))``).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> graphc.nn.softplus(np.array([-1000.0, 0.0, 1000.0])).tolist()
    [0.0, 0.6931471805599453, 1000.0]
    """
    return _nn.softplus(floating(x))


def maxout(x, pieces, axis=-1):
    """Maxout: output feature j is the max of inputs ``j*pieces ... j*pieces + pieces - 1``
    along ``axis`` (ties share the gradient equally, as ``np.max``).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> graphc.nn.maxout(np.array([[1.0, 5.0, 2.0, 0.0]]), pieces=2)
    array([[5., 2.]])
    """
    from ..errors import ShapeError
    from ._util import single
    x = floating(x)
    shape = tuple(np.shape(x)) if not hasattr(x, "aval") else x.shape
    pieces = single(pieces, "pieces")
    if pieces < 1:
        raise ShapeError(f"maxout: pieces must be >= 1, got pieces={pieces}",
                         hint="pieces is the number of inputs per output feature, e.g. 2")
    axis = one_axis(axis, len(shape))
    if shape[axis] % pieces:
        raise ShapeError(f"maxout: axis {axis} has {shape[axis]} features, not a multiple of "
                         f"pieces={pieces}")
    grouped = C.do_reshape(x, shape[:axis] + (shape[axis] // pieces, pieces) + shape[axis + 1:])
    return C.hint(C.max(grouped, axis=axis + 1), "maxout")
