"""Flips: NumPy's fliplr/flipud/flip as reversed static slices (views in generated code)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ._numpy_table import Call, implements
from ._rules import norm_axis


def _flip_samples(*kw_list):
    def samples(d):
        return [Call((d.rnd(3, 4),), kw, f"f64(3,4){kw or ''}") for kw in kw_list] + \
               [Call((d.rnd(2, 3, 2).astype(np.float32),), kw_list[0], "f32(2,3,2)")]
    return samples


@implements(np.flip, samples=_flip_samples({}, {"axis": 0}, {"axis": -1}, {"axis": (0, 1)}))
def flip(m, axis=None):
    """``m`` with the order of elements reversed along ``axis`` (all axes when None)."""
    axes = norm_axis(axis, np.ndim(m))
    return m[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(m.ndim))]


@implements(np.fliplr, samples=_flip_samples({}))
def fliplr(m):
    """Reverse the columns (axis 1) of an array of at least 2 dimensions."""
    if m.ndim < 2:
        raise ShapeError(f"np.fliplr needs an array of 2 or more dimensions, got {m.ndim}")
    return m[:, ::-1]


@implements(np.flipud, samples=_flip_samples({}))
def flipud(m):
    """Reverse the rows (axis 0) of an array of at least 1 dimension."""
    if m.ndim < 1:
        raise ShapeError("np.flipud needs an array of 1 or more dimensions, got 0")
    return m[::-1]
