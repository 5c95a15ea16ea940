"""Advanced indexing with several integer arrays on the ``"array-api"`` target.

The standard (2024.12) indexes with integer arrays only when they index every axis;
NumPy's mixed forms (``x[i, :, j]``, ``x[:, i, j]``, ``x[0, :, i]``, arrays with slices
and ``None``) are computed here from what it has, with NumPy's result layout:

1. the slices and ``None`` are applied first (basic indexing), the axes the arrays
   (and integers, which NumPy then counts as advanced indices) index kept whole;
2. those axes are moved first and flattened into one (``xp.permute_dims``,
   ``xp.reshape``);
3. the flat position of each selected element, ``i * d1 + j``, is computed by the
   module's ``_flat_index`` helper (broadcasting the arrays, negative indices counted
   from the end, an out-of-bounds index an ``IndexError`` as in NumPy), and the
   elements are taken with ``xp.take``;
4. the broadcast index shape goes where NumPy puts it: in place of the indexed axes
   when they are adjacent in the key, else first.
"""
from __future__ import annotations

import numpy as np

__all__ = ["advanced_index", "FLAT_INDEX_HELPER", "AT_HELPER"]

#: ``x[i, j]`` with an integer array or int on every axis, the standard's form; an engine
#: without it (Dask: "nd fancy indexing") takes the elements at their flat positions.
AT_HELPER = '''
def _at(xp, x, *index):
    """x[i, j, ...] with an integer array (or int) on every axis.  Dask has no such
    indexing: there the elements are taken at their flat positions instead."""
    try:
        return x[index]
    except NotImplementedError:
        flat = _flat_index(xp, x.shape, *index)
        taken = xp.take(xp.reshape(x, (-1,)), xp.reshape(flat, (-1,)), axis=0)
        return xp.reshape(taken, flat.shape)
'''

FLAT_INDEX_HELPER = '''
def _flat_index(xp, dims, *index):
    """The flat position, in an array of shape dims, of the elements integer arrays
    (or ints) select on those axes: NumPy's rules (the arrays broadcast, a negative
    index counts from the end, one out of bounds is an IndexError)."""
    flat = 0
    for a, d in zip(index, dims):
        if not isinstance(a, int):
            a = xp.where(a < 0, a + d, a)
            try:
                bad = bool(xp.any((a < 0) | (a >= d)))
            except Exception:   # no value yet (jax.jit): JAX's own indexing clamps too
                bad = False
            if bad:
                raise IndexError(f"an index is out of bounds for an axis of size {d}")
        flat = flat * d + a
    return flat
'''


def _expand(spec, ndim):
    """``spec`` with an ellipsis replaced by full slices."""
    n_axes = sum(it[0] in ("slice", "int", "array") for it in spec)
    out = []
    for it in spec:
        if it[0] == "ellipsis":
            out += [("slice", None, None, None)] * (ndim - n_axes)
        else:
            out.append(it)
    return out + [("slice", None, None, None)] * (ndim - sum(
        it[0] in ("slice", "int", "array") for it in out))


def _slice_text(it):
    start, stop, step = it[1:]
    s = f"{'' if start is None else start}:{'' if stop is None else stop}"
    return s + (f":{step}" if step is not None else "")


def advanced_index(x, spec, arrays, shape_of, idx_shapes):
    """The text of ``x[spec]`` (spec with integer arrays, see the module docstring)."""
    from .array_api import _flip_negative_steps
    spec = _expand(list(spec), len(shape_of))
    x, spec = _flip_negative_steps(x, spec, shape_of)
    basic, dims, adv, index = [], [], [], []
    axis = 0
    for it in spec:
        if it[0] == "none":
            basic.append("None")
            dims.append(1)
            continue
        d = shape_of[axis]
        axis += 1
        if it[0] == "slice":
            basic.append(_slice_text(it))
            dims.append(len(range(*slice(*it[1:]).indices(d))))
        else:
            basic.append(":")
            adv.append(len(dims))
            dims.append(d)
            index.append(arrays[it[1]] if it[0] == "array" else str(int(it[1]) % d))
    if any(b != ":" for b in basic):
        x = f"{x}[{', '.join(basic)}]"
    rest = [i for i in range(len(dims)) if i not in adv]
    if adv + rest != list(range(len(dims))):
        x = f"xp.permute_dims({x}, {tuple(adv + rest)!r})"
    rest_dims = tuple(dims[i] for i in rest)
    n = int(np.prod([dims[i] for i in adv], dtype=np.int64))
    x = f"xp.reshape({x}, {(n,) + rest_dims!r})"
    where = [i for i, it in enumerate(spec) if it[0] in ("int", "array")]
    bshape = np.broadcast_shapes(*[tuple(idx_shapes[it[1]]) for it in spec if it[0] == "array"])
    flat = f"_flat_index(xp, {tuple(dims[i] for i in adv)!r}, {', '.join(index)})"
    if len(bshape) != 1:
        flat = f"xp.reshape({flat}, (-1,))"
    out = f"xp.take({x}, {flat}, axis=0)"
    if len(bshape) != 1 or not rest_dims:
        out = f"xp.reshape({out}, {tuple(bshape) + rest_dims!r})"
    adjacent = where == list(range(where[0], where[-1] + 1))
    at = sum(1 for i in rest if i < adv[0]) if adjacent else 0
    if at:
        b, r = len(bshape), len(rest_dims)
        perm = tuple(range(b, b + at)) + tuple(range(b)) + tuple(range(b + at, b + r))
        out = f"xp.permute_dims({out}, {perm!r})"
    return out
