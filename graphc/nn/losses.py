"""The softmax family and losses (means over the batch), numerically stable."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops import composite as C
from ..ops import elementwise as E
from ..ops._rules import norm_axis, one_axis
from ..ops.activation import log_softmax as _log_softmax
from ..ops.shape import stop_gradient
from ._util import floating
from .activations import softplus

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "logistic_loss", "mse"]


def _shape(x):
    return x.shape if hasattr(x, "aval") else np.shape(x)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x, axis)``, stable for any finite input.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> graphc.nn.log_softmax(np.array([0.0, 1e4]))
    array([-10000.,      0.])
    """
    x = floating(x)
    if not _shape(x):
        # A 0-d array has the one-element axis 0 (-1) here, as in NumPy's reductions
        # and PyTorch's softmax; any other axis is NumPy's AxisError.
        norm_axis(axis, 0)
        return C.hint(C.do_reshape(_log_softmax(C.do_reshape(x, (1,)), axis=0), ()), "logp")
    return C.hint(_log_softmax(x, axis=one_axis(axis, len(_shape(x)))), "logp")


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x), axis)``, stable for any finite input."""
    return C.hint(E.exp(log_softmax(x, axis)), "softmax")


def logsumexp(x, axis=-1):
    """``log(sum(exp(x), axis))`` with the max shifted out (no overflow)."""
    x = floating(x)
    m = stop_gradient(C.max(x, axis=axis, keepdims=True))
    s = E.log(C.sum(E.exp(x - m), axis=axis, keepdims=True)) + m
    return C.hint(C.squeeze(s, axis=axis), "logsumexp")


def cross_entropy(logits, labels):
    """Mean cross-entropy of ``logits (N, K)``.

    ``labels`` are integer classes ``(N,)`` or one-hot / probability targets
    ``(N, K)``.  The gradient with respect to the logits is
    ``(softmax(logits) - onehot) / N``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> round(float(graphc.nn.cross_entropy(np.zeros((2, 4)), np.array([0, 3]))), 6)
    1.386294
    """
    logits = floating(logits)
    shape = _shape(logits)
    if len(shape) != 2:
        raise ShapeError(f"cross_entropy expects logits of shape (N, K), got {shape}")
    n = shape[0]
    logp = log_softmax(logits, axis=1)
    lshape = _shape(labels)
    dtype = labels.dtype if hasattr(labels, "dtype") else np.asarray(labels).dtype
    if len(lshape) == 1 and np.dtype(dtype).kind in "iu":
        if lshape[0] != n:
            raise ShapeError(f"cross_entropy: {lshape[0]} labels for {n} rows of logits")
        picked = logp[np.arange(n), labels]
        # divide before summing: the mean fits float32 even where the sum would overflow
        return C.hint(-C.sum(picked / n), "loss")
    if tuple(lshape) != tuple(shape):
        raise ShapeError(f"cross_entropy: targets of shape {tuple(lshape)} do not match logits {shape}; "
                         "pass integer labels (N,) or one-hot/probabilities (N, K)")
    return C.hint(-C.sum(labels * (logp / n)), "loss")


def logistic_loss(scores, y):
    """``mean(log(1 + exp(-y * scores)))`` for labels ``y`` in {-1, +1} (stable).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> round(float(graphc.nn.logistic_loss(np.array([0.0, 1000.0]), np.array([1.0, 1.0]))), 6)
    0.346574
    """
    scores = floating(scores)
    terms = softplus(-(y * scores))
    # the mean as a sum of terms / n: it fits float32 where the plain sum would overflow
    return C.hint(C.sum(terms / int(np.prod(_shape(terms), dtype=np.int64))), "loss")


def mse(pred, target):
    """Mean squared error over all elements."""
    pred = floating(pred)
    d = pred - target
    # d * (d / n) summed: the mean fits float32 where sum(d * d) would overflow
    return C.hint(C.sum(d * (d / int(np.prod(_shape(d), dtype=np.int64)))), "loss")
