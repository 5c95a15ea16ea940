"""What a drawing writes in a collapsed layer's box, and on a constant.

A collapsed ``graphc.scope`` box is named by what the layer computes, read
from the operations inside it: ``conv 3×3, 1→8 · relu``, ``max pool 2×2``,
``dense 64→32 · relu``, ``cross-entropy``; any other scope lists its main
operations.  Constants read as what they are: ``arange(64)``, ``full(-0.01562)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["layer_text", "const_array_text", "const_label", "is_scalar_const"]

_ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "elu", "softplus", "gelu", "maxout",
                "softmax")
# Plumbing: operations that only move values around, never named in a box.
_PLUMBING = {"transpose", "reshape", "contiguous", "identity", "broadcast_to", "astype",
             "expand_dims", "squeeze", "getitem", "input", "const"}


def _ops(g, members):
    return [g[m].op for m in members]


def _param_inputs(g, members, ndim):
    """The box's input nodes (graph inputs) of rank ``ndim``, in argument order."""
    inside = set(members)
    seen = []
    for m in members:
        for a in g[m].args:
            if a not in inside and g[a].op == "input" and len(g[a].shape) == ndim and a not in seen:
                seen.append(a)
    return seen


def _activation(g, members):
    for m in members:
        for word in (g[m].op, g[m].hint):
            if word in _ACTIVATIONS:
                return word
    return None


def _conv(g, members):
    kernel = next(g[m].params.get("kernel") for m in members if g[m].op == "im2col")
    k = "×".join(str(int(v)) for v in kernel)
    weights = [w for w in _param_inputs(g, members, 2 + len(kernel))
               if tuple(g[w].shape[2:]) == tuple(kernel)]
    if weights:
        f, c = g[weights[0]].shape[:2]
        return f"conv {k}, {c}→{f}"
    return f"conv {k}"


def _describe(g, members):
    ops = _ops(g, members)
    if "im2col" in ops and "matmul" in ops:
        text = _conv(g, members)
    elif "im2col" in ops and "sum" in ops:
        kernel = next(g[m].params.get("kernel") for m in members if g[m].op == "im2col")
        text = "avg pool " + "×".join(str(int(v)) for v in kernel)
    elif "max_pool" in ops:
        kernel = next(g[m].params.get("kernel") for m in members if g[m].op == "max_pool")
        text = "max pool " + "×".join(str(int(v)) for v in kernel)
    elif "log_softmax" in ops and "getitem" in ops:
        return "cross-entropy"
    elif "matmul" in ops and (w := _param_inputs(g, members, 2)):
        n_in, n_out = g[w[0]].shape
        text = f"dense {n_in}→{n_out}"
    else:
        main = [op for op in dict.fromkeys(ops) if op not in _PLUMBING]
        text = " · ".join(main[:3]) + (" …" if len(main) > 3 else "")
        return text or f"{len(members)} ops"
    act = _activation(g, members)
    return f"{text} · {act}" if act else text


def layer_text(g, members, backward, forward_members=()) -> str:
    """What the layer in ``members`` computes; for a backward box, what it differentiates
    (``forward_members``: the same scope's forward nodes)."""
    if not backward:
        return _describe(g, members)
    return "∂ " + (_describe(g, list(forward_members)) if forward_members else
                   f"{len(members)} ops")


def const_array_text(value) -> str:
    """A short text for an array constant: ``arange(64)``, ``full(0.5)``, else ``const``."""
    try:
        arr = np.asarray(value)
        if arr.ndim == 1 and arr.dtype.kind in "iu" and arr.size > 1 \
                and np.array_equal(arr, np.arange(arr.size)):
            return f"arange({arr.size})"
        if arr.size > 1 and arr.dtype.kind in "fiub":
            flat = arr.reshape(-1)
            if np.all(flat == flat[0]):
                v = flat[0].item()
                return f"full({v:.4g})" if isinstance(v, float) else f"full({v})"
    except Exception:  # pragma: no cover - drawing must never fail on a constant
        pass
    return "const"


def is_scalar_const(g, nid):
    node = g[nid]
    return node.op == "const" and node.shape == ()


def const_label(node):
    value = node.value
    try:
        import numpy as np
        if np.ndim(value) == 0:
            v = value.item() if hasattr(value, "item") else value
            return f"{v:.4g}" if isinstance(v, float) else str(v)
    except Exception:  # pragma: no cover - drawing must never fail on a constant
        pass
    return const_array_text(value)
