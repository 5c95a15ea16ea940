"""Common-subexpression elimination: one node per distinct (op, args, params).

Gradient rules often rebuild a value the forward pass already has (``cos(x)``
in the second derivative of ``sin``); CSE keeps one.  Scalar constants with
the same value and type are merged too.
"""
from __future__ import annotations

import numpy as np

from ..primitive import params_key


def _const_key(node):
    value = node.value
    if type(value) not in (int, float, bool) and np.ndim(value) != 0:
        return None
    return ("const", node.dtype.str, node.weak, repr(value.item() if hasattr(value, "item") else value))


def cse(graph):
    """Merge duplicate nodes, in place.  Keeps the first in program order."""
    seen: dict = {}
    nodes = graph.node_map()
    for nid in graph.order():
        node = nodes[nid]
        op = node.op
        if op == "input":
            continue
        if op == "const":
            key = _const_key(node)
            if key is None:
                continue
        else:
            # a loop's or branch's bodies are part of what it computes
            key = (op, node.args, params_key(node.params) if node.params else (),
                   tuple(map(id, node.bodies)) if node.bodies else ())
        first = seen.setdefault(key, nid)      # (one hash of the key, not two)
        if first == nid:
            continue
        graph.replace_uses(nid, first)
        graph.remove_nodes([nid])
    return graph
