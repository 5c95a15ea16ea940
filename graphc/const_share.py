"""Scalar constants shared while a compiled function's backward pass is built.

Gradient rules lift the same Python scalars again and again (``1 - out * out`` in
every ``tanh``, the ``0.5`` of every ``x * 0.5``): one constant node per use,
which common-subexpression elimination (graphc/passes/cse.py) merges into the
first one afterwards.  When CSE is sure to follow (``Compiled`` builds; never
for a trace shown to the user), the backward pass reuses that first node at
once: the graph after CSE is the same, built with fewer nodes.  Only 0-d
constants, keyed as CSE keys them, and only in the ``"backward"`` section, which
no user code names and no later derivative differentiates (a constant has none).
"""
from __future__ import annotations

import numpy as np

__all__ = ["shared_const"]


def shared_const(trace, x, aval):
    """The node id of the 0-d constant ``x`` (of aval ``aval``) in ``trace``'s graph:
    the first one made with CSE's key in this pass, else a new one."""
    value = x if aval.weak else np.asarray(x)
    # (passes/cse.py's _const_key of the node add_const makes)
    key = (np.asarray(value).dtype.str, aval.weak,
           repr(value.item() if hasattr(value, "item") else value))
    memo, graph = trace.shared_consts, trace.graph
    nid = memo.get(key)
    if nid is None or nid not in graph:
        attrs = {k: v for k, v in trace.attrs.items() if k in ("section", "grad_of")}
        nid = memo[key] = graph.add_const(value, weak=aval.weak, **attrs)
    return nid
