"""Flips and rotations: NumPy's fliplr/flipud/flip as reversed static slices (views in generated
code), rot90 as flips and a transpose."""
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


def _rot90_samples(d):
    x = d.rnd(3, 4)
    return [Call((x,), {}, "k1"), Call((x, 2), {}, "k2"), Call((x, 3), {}, "k3"),
            Call((x, -1), {}, "k-1"), Call((x, 4), {}, "k4"), Call((x, 5), {}, "k5"),
            Call((d.rnd(2, 3, 4),), {"k": 1, "axes": (1, 2)}, "axes12"),
            Call((d.rnd(2, 3, 4),), {"k": 3, "axes": (2, 0)}, "axes20"),
            Call((d.rnd(2, 3, 4),), {"axes": (-1, -3)}, "negative-axes"),
            Call((d.rnd(3, 2).astype(np.float32), 1, [1, 0]), {}, "f32-list-axes"),
            Call((d.ints(2, 3),), {"k": 2}, "int64")]


@implements(np.rot90, samples=_rot90_samples)
def rot90(m, k=1, axes=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane of ``axes`` (from the first axis
    towards the second): NumPy's own sequence of flips and a transpose."""
    axes = tuple(axes)
    if len(axes) != 2:
        raise ShapeError("len(axes) must be 2.")
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == m.ndim:
        raise ShapeError("Axes must be different.")
    if (axes[0] >= m.ndim or axes[0] < -m.ndim or axes[1] >= m.ndim or axes[1] < -m.ndim):
        raise ShapeError(f"Axes={axes} out of range for array of ndim={m.ndim}.")
    k = int(k) % 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, axes[0]), axes[1])
    perm = list(range(m.ndim))
    perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
    if k == 1:
        return flip(m, axes[1]).transpose(perm)
    return flip(m.transpose(perm), axes[1])
