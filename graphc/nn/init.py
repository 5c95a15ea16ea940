"""Weight initializers (plain NumPy, from a ``numpy.random.Generator``).

fan_in / fan_out are ``shape[0]`` / ``shape[1]`` for dense ``(in, out)``
weights and ``C·KH·KW`` / ``F·KH·KW`` for conv weights ``(F, C, KH, KW)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["fans", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
           "xavier_uniform", "xavier_normal"]


def fans(shape):
    """``(fan_in, fan_out)`` of a weight shape."""
    shape = tuple(shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) >= 3:
        receptive = int(np.prod(shape[2:]))
        return shape[1] * receptive, shape[0] * receptive
    if len(shape) == 1:
        return shape[0], shape[0]
    raise ValueError("initializers need a weight shape with at least one axis")


def glorot_uniform(rng, shape, dtype=np.float64):
    """Xavier/Glorot uniform: U(-a, a) with ``a = sqrt(6 / (fan_in + fan_out))``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> w = graphc.nn.init.glorot_uniform(np.random.default_rng(0), (784, 256))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / (784 + 256)))
    True
    """
    fi, fo = fans(shape)
    a = np.sqrt(6.0 / (fi + fo))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def glorot_normal(rng, shape, dtype=np.float64):
    """Xavier/Glorot normal: N(0, 2 / (fan_in + fan_out))."""
    fi, fo = fans(shape)
    return (rng.normal(size=shape) * np.sqrt(2.0 / (fi + fo))).astype(dtype)


def he_normal(rng, shape, dtype=np.float64):
    """He (Kaiming) normal: N(0, 2 / fan_in), for ReLU layers."""
    fi, _ = fans(shape)
    return (rng.normal(size=shape) * np.sqrt(2.0 / fi)).astype(dtype)


def he_uniform(rng, shape, dtype=np.float64):
    """He (Kaiming) uniform: U(-a, a) with ``a = sqrt(6 / fan_in)``."""
    fi, _ = fans(shape)
    a = np.sqrt(6.0 / fi)
    return rng.uniform(-a, a, size=shape).astype(dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
