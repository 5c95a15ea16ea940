"""How much work a symbolic ``graphc.check`` of a graph would give SymPy.

``graphc.check`` proves small graphs with SymPy and checks larger ones by finite
differences; these estimates, read from the graph alone, decide which before
SymPy builds any expression.
"""
from __future__ import annotations

import numpy as np

__all__ = ["symbolic_work", "nonlinear_layers", "LINEAR_OPS"]


def symbolic_work(graph, symbolic_inputs):
    """An estimate of the SymPy operations the check would build and differentiate.

    Each node's elements get an expression size: 0 for plain numbers, 1 for a
    differentiated input, and for an operation the sizes of its arguments times
    how many elements feed one output element (the reduced length of a sum, the
    inner dimension of a matmul).  The work is the sum of size x elements over
    every node holding expressions; measured, SymPy takes seconds past ~4,000
    (a 4x2x3 MLP: 4,455 and 20 s; the lecture example: 478 and well under 1 s).
    """
    size = {}
    work = 0
    for nid in graph.order():
        node = graph[nid]
        n_out = int(np.prod(node.shape, dtype=np.int64))
        if node.op == "input":
            size[nid] = 1 if nid in symbolic_inputs else 0
        elif node.op == "const":
            size[nid] = 0
        else:
            args = node.args
            s = sum(size[a] for a in args)
            if s:
                n_in = max(int(np.prod(graph[a].shape, dtype=np.int64)) for a in args)
                fan = max(1, n_in // max(n_out, 1))
                if node.op == "matmul" and graph[args[0]].shape:
                    fan = max(fan, int(graph[args[0]].shape[-1]))
                s = min(s * fan + 1, 10 ** 15)
            size[nid] = s
        work += size[nid] * n_out
    return work


# Operations linear in their differentiated operand: they add no nonlinear layer.
LINEAR_OPS = {"add", "sub", "neg", "sum", "reshape", "transpose", "broadcast_to", "getitem",
           "identity", "concatenate", "contiguous", "astype", "stop_gradient", "col2im", "im2col",
           "put_along_axis", "scatter_add", "take_along_axis", "unpool", "pool_select", "where"}


def nonlinear_layers(graph, symbolic_inputs):
    """Nonlinear operations stacked after the first contraction of symbolic values.

    ``tanh(x @ W)`` summed is one layer; a loss on top of it (``(tanh(x @ W) - y) ** 2``) is
    two: each checked element's derivative then mixes every row, and SymPy's simplify and
    50-digit evaluation ran past 10 s on a 5x3 batch (measured).
    """
    sym, depth = {}, {}
    for nid in graph.order():
        node = graph[nid]
        if node.section == "backward":
            continue
        if node.op in ("input", "const"):
            sym[nid], depth[nid] = node.op == "input" and nid in symbolic_inputs, -1
            continue
        args = [a for a in node.args if a in sym]
        hot = [a for a in args if sym[a]]
        sym[nid] = bool(hot)
        d = max((depth[a] for a in hot), default=-1)
        n_out = int(np.prod(node.shape, dtype=np.int64))
        n_in = max((int(np.prod(graph[a].shape, dtype=np.int64)) for a in hot),
                   default=0)
        contraction = hot and (node.op == "matmul" or n_in > n_out)
        linear = node.op in LINEAR_OPS or (node.op in ("mul", "matmul") and len(hot) == 1) \
            or (node.op == "div" and hot == [node.args[0]])
        if d >= 0 and not linear:
            d += 1
        elif d < 0 and contraction:
            d = 0
        depth[nid] = d
    return max(depth.values(), default=-1)
