"""Central finite differences in float64, for gradient tests.

Independent of graphc: the function under test is evaluated with plain NumPy.
Pytrees here are nested dict / list / tuple containers of arrays or Python
floats; ``None`` and non-float leaves (ints, integer/bool arrays) are left
alone and get ``None`` as their gradient.
"""
from __future__ import annotations

import numpy as np

__all__ = ["fd_grad", "fd_grad_args", "rel_err", "is_float_leaf"]


def is_float_leaf(x) -> bool:
    if isinstance(x, bool) or x is None:
        return False
    if isinstance(x, float):
        return True
    return isinstance(x, (np.ndarray, np.generic)) and np.asarray(x).dtype.kind == "f"


def _flatten(tree, out):
    if isinstance(tree, dict):
        return {k: _flatten(v, out) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        kids = [_flatten(v, out) for v in tree]
        return kids if isinstance(tree, list) else tuple(kids)
    if is_float_leaf(tree):
        out.append(np.array(tree, dtype=np.float64))  # a float64 copy we may perturb
        return len(out) - 1
    return ("static", tree)


def _rebuild(skel, leaves):
    if isinstance(skel, dict):
        return {k: _rebuild(v, leaves) for k, v in skel.items()}
    if isinstance(skel, list):
        return [_rebuild(v, leaves) for v in skel]
    if isinstance(skel, tuple) and not (len(skel) == 2 and skel[0] == "static"):
        return tuple(_rebuild(v, leaves) for v in skel)
    if isinstance(skel, tuple):
        return skel[1]
    return leaves[skel]


def fd_grad(f, tree, eps=1e-6):
    """Central differences of scalar ``f(tree)`` w.r.t. every float leaf.

    Float leaves are replaced by float64 copies (so a float32 input is
    differentiated as the same function evaluated in float64).  Returns a
    tree of the same structure with float64 gradients at the float leaves
    and ``None`` elsewhere.
    """
    leaves = []
    skel = _flatten(tree, leaves)
    grads = []
    for leaf in leaves:
        g = np.zeros(leaf.shape, np.float64)
        flat, gflat = leaf.reshape(-1), g.reshape(-1)  # views
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            fp = float(f(_rebuild(skel, leaves)))
            flat[i] = old - eps
            fm = float(f(_rebuild(skel, leaves)))
            flat[i] = old
            gflat[i] = (fp - fm) / (2 * eps)
        grads.append(g)
    none_skel = _mark_static_none(skel)
    return _rebuild(none_skel, grads)


def _mark_static_none(skel):
    if isinstance(skel, dict):
        return {k: _mark_static_none(v) for k, v in skel.items()}
    if isinstance(skel, list):
        return [_mark_static_none(v) for v in skel]
    if isinstance(skel, tuple) and not (len(skel) == 2 and skel[0] == "static"):
        return tuple(_mark_static_none(v) for v in skel)
    if isinstance(skel, tuple):
        return ("static", None)
    return skel


def fd_grad_args(f, args, argnums, eps=1e-6):
    """Central differences of scalar ``f(*args)`` w.r.t. ``args[i]``, ``i`` in ``argnums``."""
    argnums = tuple(argnums)
    fixed = list(args)

    def g(sub):
        full = list(fixed)
        for i, v in zip(argnums, sub):
            full[i] = v
        return f(*full)

    return fd_grad(g, tuple(args[i] for i in argnums), eps)


def rel_err(a, b) -> float:
    """``|a - b| / (|a| + |b|)`` over whole arrays (0 when both are 0)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    num = np.linalg.norm((a - b).ravel())
    den = np.linalg.norm(a.ravel()) + np.linalg.norm(b.ravel())
    return 0.0 if den == 0 else float(num / den)
