"""The :mod:`graphc.batch_axis` rule for ``getitem``: basic indexing that keeps the
example axis whole, the label pick ``logp[np.arange(n), y]`` (also as
``np.take_along_axis`` builds it) and embedding lookups ``E[y]``."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .batch_axis import Free, Red, Row, _check_free_operand, _uniform_row_const, refuse

__all__ = ["getitem_rule"]


def _expand(spec, nd):
    """The index with the ellipsis (or the missing trailing axes) as full slices."""
    used = sum(1 for item in spec if item[0] in ("slice", "int", "array"))
    full = [("slice", None, None, None)] * (nd - used)
    if any(item[0] == "ellipsis" for item in spec):
        out = []
        for item in spec:
            out.extend(full if item[0] == "ellipsis" else [item])
        return out
    return list(spec) + full


def _is_full(item, extent):
    return (item[0] == "slice" and item[1] in (None, 0) and item[3] in (None, 1)
            and (item[2] is None or item[2] >= extent))


def _out_positions(spec):
    """``(position of each spec item's output axis or None, start of the advanced block)``."""
    arrays = [i for i, item in enumerate(spec) if item[0] == "array"]
    contiguous = arrays == list(range(arrays[0], arrays[-1] + 1)) if arrays else True
    start = (sum(1 for item in spec[:arrays[0]] if item[0] in ("slice", "none"))
             if arrays and contiguous else 0)
    return start, contiguous


def getitem_rule(g, nid, states, label):
    node = g[nid]
    x, sx, idx = node.args[0], states[0], list(zip(node.args[1:], states[1:]))
    spec = _expand(node.params["spec"], len(g[x].shape))
    if isinstance(sx, Red) or any(isinstance(s, Red) for _, s in idx):
        if isinstance(sx, Red) and all(isinstance(s, Free) and not s.sized for _, s in idx):
            return sx          # picking entries of the sums is linear
        refuse(g, nid, label, "indexes with a sum over the examples")
    arrays = [item for item in spec if item[0] == "array"]
    if arrays and any(item[0] == "int" for item in spec):
        refuse(g, nid, label, "graphc cannot prove that mixed integer and array indexing "
                "keeps the examples apart")
    if isinstance(sx, Free):
        return _gather(g, nid, spec, idx, label)
    k = [i for i, item in enumerate(spec) if item[0] != "none"][sx.axis]
    axis_item = spec[k]
    if axis_item[0] == "int":
        refuse(g, nid, label, "indexes the example axis (picks one example)")
    if axis_item[0] == "slice":
        if (not _is_full(axis_item, g[x].shape[sx.axis]) or any(isinstance(s, Row) for _, s in idx)
                or any(s.sized for _, s in idx)):
            refuse(g, nid, label, "indexes the example axis (selects, reorders or pairs examples)")
        start, contiguous = _out_positions(spec)
        before = sum(1 for item in spec[:k] if item[0] in ("slice", "none"))
        if arrays and (not contiguous or spec.index(arrays[0]) < k):
            before += len(np.broadcast_shapes(*(g[a].shape for a, _ in idx)))
        return replace(sx, axis=before)
    return _pick_rows(g, nid, spec, axis_item, idx, sx, label)


def _gather(g, nid, spec, idx, label):
    """``E[y]``: a batch-independent table indexed by per-example indices."""
    rows = [(a, s) for a, s in idx if isinstance(s, Row)]
    if len(idx) != 1 or len(rows) != 1 or rows[0][1].scale is not None:
        refuse(g, nid, label, "graphc cannot prove that this indexing keeps the examples apart")
    start, _ = _out_positions(spec)
    return replace(rows[0][1], axis=start + rows[0][1].axis)


def _pick_rows(g, nid, spec, axis_item, idx, sx, label):
    """``logp[np.arange(n), y]``: each example's own row (the arange may be broadcast,
    as ``np.take_along_axis`` builds it)."""
    x = g[nid].args[0]
    a_axis, _ = idx[axis_item[1]]
    extent = g[x].shape[sx.axis]
    value = np.asarray(g[a_axis].value) if g[a_axis].op == "const" else np.zeros((0, 0))
    long = [i for i, n in enumerate(value.shape) if n != 1] or [value.ndim - 1]
    if (len(long) != 1 or value.ndim == 0 or value.shape[long[0]] != extent
            or not (value.reshape(-1) == np.arange(extent)).all()):
        refuse(g, nid, label, "indexes the example axis with an array other than "
               "np.arange(n) (selects, reorders or pairs examples)")
    nb = len(np.broadcast_shapes(*(g[a].shape for a, _ in idx)))
    jb = nb - value.ndim + long[0]
    for a, s in idx:
        nd = len(g[a].shape)
        if a == a_axis:
            continue
        if isinstance(s, Row):
            if s.axis + nb - nd != jb or s.scale is not None or s.inner != sx.inner:
                refuse(g, nid, label, "indexes with the indices of other examples")
        elif jb - (nb - nd) >= 0:
            if s.sized and not _uniform_row_const(g, a, jb - (nb - nd)):
                refuse(g, nid, label, "indexes with a value computed from the batch size")
            _check_free_operand(g, nid, a, jb + len(g[nid].shape) - nb, label)
    start, _ = _out_positions(spec)
    return replace(sx, axis=start + jb)
