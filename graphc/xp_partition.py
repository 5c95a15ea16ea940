"""``np.partition`` on the ``"array-api"`` target, where it reads the ``kth`` places only.

graphc's partition is NumPy's own arrangement (docs/ops.md): ``x`` gathered by a
permutation (``partition_perm``).  The standard has no partition, and the order NumPy
leaves on each side of a ``kth`` place is its algorithm's, which no engine reproduces.
But at the ``kth`` places themselves the permutation is determined: NumPy's partition
puts exactly ``k`` elements no greater than the ``k``-th smallest before it, so the
element graphc gathers there (equal values paired in order, by stable rank) is
``argsort(x, stable)[k]``, on every engine.  So ``partition_perm`` is emitted as
``xp.argsort(x, axis=axis, stable=True)`` when the graph provably reads the
partitioned values at the ``kth`` places only (``np.partition(x, k)[..., k]``,
a median or quantile written with it) and their gradient is zero elsewhere; the
result is then the NumPy target's, bit for bit.  Anything else (the whole
partitioned array, ``[:k]``) is a clear error.
"""
from __future__ import annotations

from .errors import UnsupportedError

__all__ = ["check_partition"]


def _item_at(spec, axis, ndim):
    """The spec item that indexes input axis ``axis`` (None: no item does)."""
    n_axes = sum(it[0] in ("slice", "int", "array") for it in spec)
    at = 0
    for it in spec:
        if it[0] == "ellipsis":
            at += ndim - n_axes
            if at > axis:
                return ("slice", None, None, None)
        elif it[0] in ("slice", "int", "array"):
            if at == axis:
                return it
            at += 1
    return ("slice", None, None, None)


def _kth_only(spec, axis, shape, places):
    """Whether ``zeros(shape)[spec]`` selects only the ``places`` along ``axis``."""
    if any(it[0] == "array" for it in spec):
        return False
    it = _item_at(spec, axis, len(shape))
    n = shape[axis]
    if it[0] == "int":
        return int(it[1]) % n in places
    return set(range(*slice(*it[1:]).indices(n))) <= places


def _zero_outside(g, nid, axis, shape, places, depth=0):
    """Whether node ``nid`` (a cotangent of the partitioned values) is provably zero
    outside the ``places`` along ``axis``: a scatter of such a selection, or a sum of them."""
    node = g[nid]
    if depth > 20:
        return False
    if node.op == "scatter_add" and len(node.args) == 1:
        return _kth_only(node.params["spec"], axis, tuple(node.params["shape"]), places)
    if node.op == "add":
        return all(_zero_outside(g, a, axis, shape, places, depth + 1) for a in node.args)
    return False


def check_partition(g, nid):
    """Refuse a ``partition_perm`` whose partitioned values are read beyond its kth places."""
    node = g[nid]
    axis, shape = node.params["axis"], tuple(g.aval(nid).shape)
    places = {int(k) % shape[axis] for k in node.params["kth"]}
    outputs = set(g.outputs)
    ok = nid not in outputs
    for user in g.users(nid):
        u = g[user]
        if u.op not in ("getitem", "scatter_add") or nid not in u.args[1:] or u.args[0] == nid:
            ok = False
        elif u.op == "scatter_add":
            ok = ok and _zero_outside(g, u.args[0], axis, shape, places)
        else:
            readers = g.users(user)
            ok = ok and user not in outputs and all(
                g[r].op == "getitem" and g[r].args[0] == user and len(g[r].args) == 1
                and _kth_only(g[r].params["spec"], axis, shape, places) for r in readers)
    if not ok:
        raise UnsupportedError(
            "np.partition on the array-API target: only its values at the kth places can be "
            "read (np.partition(x, k)[..., k]); the order NumPy leaves on either side is its "
            "own algorithm's, which the standard has no way to reproduce", where=node.where,
            hint="read the kth places only (np.partition(x, k)[k]), use np.sort, or "
                 'target="numpy"')

