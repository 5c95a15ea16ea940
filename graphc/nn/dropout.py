"""Inverted dropout with an explicit integer key."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ops import composite as C
from ..ops import elementwise as E
from ..ops import random as P

__all__ = ["dropout"]


def dropout(x, rate, key, training=True):
    """Zero each element with probability ``rate``; scale the kept ones by ``1/(1-rate)``.

    The keep-mask is a deterministic function of ``(key, shape, rate)``
    (``np.random.default_rng(key)``), computed once in the forward pass and
    reused by the backward pass.  Pass the key as a NumPy integer
    (``np.int64(step)``): it is traced, so a new key gives a new mask without
    re-tracing.  ``training=False`` returns ``x``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> y = graphc.nn.dropout(np.ones(8), 0.5, key=np.int64(0))
    >>> sorted(set(y.tolist())) == [0.0, 2.0]
    True
    """
    if not isinstance(training, (bool, np.bool_)):
        raise UnsupportedError("dropout's training flag must be a Python bool (static)",
                               hint="pass training=True or training=False")
    if isinstance(rate, (int, float)) and not 0.0 <= rate < 1.0:
        raise UnsupportedError(f"dropout rate must be in [0, 1), got {rate}")
    if not training or rate == 0:
        return x
    shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    if not hasattr(key, "aval") and not isinstance(key, (int, np.integer)):
        raise UnsupportedError(f"a dropout key must be an integer, got {type(key).__name__}",
                               hint="pass np.int64(step)")
    keep = C.hint(P.bernoulli(key, shape=shape, rate=float(rate)), "keep")
    # masked_mul(x * scale, keep) rather than np.where(keep, x * scale, 0): a product
    # with the mask, without where's slow branchy loop, and still exactly 0 for a dropped
    # element, in the value and in the gradient, even when it is infinite (inf * 0 = nan).
    return C.hint(E.masked_mul(x * (1.0 / (1.0 - rate)), keep), "dropout")
