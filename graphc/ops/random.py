"""Random primitives: ``bernoulli``, dropout's keep-mask, a deterministic function of
``(key, shape, rate)``."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..primitive import NOT_DIFFERENTIABLE, Aval, primitive
from . import _samples as S
from . import array_api as XP
from ._rules import sym_at_point


def _bernoulli_rule(key, *, shape, rate):
    if key.shape != () or key.dtype.kind not in "iu":
        raise UnsupportedError(f"a dropout key must be an integer scalar, got {key.short()}",
                               hint="pass np.int64(step) (traced) or a Python int (static)")
    if not 0.0 <= rate < 1.0:
        raise UnsupportedError(f"dropout rate must be in [0, 1), got {rate}")
    return Aval(tuple(shape), np.dtype(bool), False)


bernoulli = primitive(
    name="bernoulli", array_api=XP.bernoulli,
    samples=lambda d: [
        S.Sample((np.int64(5),), {"shape": (3, 4), "rate": 0.3},
                 lambda k: np.random.default_rng(int(k)).random((3, 4)) >= 0.3, "key5"),
        S.Sample((np.array(7),), {"shape": (2, 5), "rate": 0.5},
                 lambda k: np.random.default_rng(int(k)).random((2, 5)) >= 0.5, "0-d-array-key")], shape=_bernoulli_rule,
    # ``% 2**64``: NumPy seeds must be non-negative; any int64 key gets its own mask.
    numpy="np.random.default_rng(int({0}) % 2**64).random({shape}) >= {rate}", prec=6, vjp=NOT_DIFFERENTIABLE,
    sympy=sym_at_point(lambda key, *, shape, rate:
                        np.random.default_rng(int(key) % 2**64).random(shape) >= rate),
    sympy_at_point=True, label="keep mask", family="random",
    flops=lambda out, *a, **p: out.size,
    doc="Keep-mask: True with probability 1 - rate; a function of (key, shape, rate).")
