"""ReLU's gradient mask before max pooling's unpool: a quarter of the work.

``max_pool(relu(a))``'s gradient is ``masked_mul(unpool(v, M), r > 0)``: the pooled
cotangent ``v`` placed at each window's first maximum (``M = max_pool_mask(r, p)``,
``r = relu(a)``, ``p = max_pool(r)``), then ReLU's mask over the full image.  Where ``M``
is set, ``r`` equals ``p``, so ``r > 0`` there is ``p > 0``; everywhere else the unpooled
image is 0 and stays 0.  Max pooling's VJP (graphc/ops/pool.py) therefore applies the
mask to the pooled values when its input is a ReLU (``unpool(masked_mul(v, p > 0), M)``,
a quarter of the elements for a 2x2 pool), and this rule drops the full-size ReLU mask
that follows: the same values, bit for bit (no ``inf * 0`` can arise in it: an infinite
value sits only where ``p > 0``, where the mask is set).
"""
from __future__ import annotations

__all__ = ["relu_mask_after_unpool"]


def _zero(graph, nid) -> bool:
    node = graph[nid]
    return node.op == "const" and not node.shape and node.value == 0


def relu_mask_after_unpool(graph, nid, node) -> bool:
    """``masked_mul(unpool(masked_mul(v, p > 0), M), r > 0)`` is the unpool itself when
    ``M = max_pool_mask(r, p)``: point the users at it."""
    if node.op != "masked_mul":
        return False
    u, w = node.args
    un, wn = graph[u], graph[w]
    if un.op != "unpool" or wn.op != "gt" or not _zero(graph, wn.args[1]):
        return False
    v, m = un.args
    vn, mn = graph[v], graph[m]
    if mn.op != "max_pool_mask" or mn.args[0] != wn.args[0] or vn.op != "masked_mul":
        return False
    pos = graph[vn.args[1]]
    if pos.op != "gt" or pos.args[0] != mn.args[1] or not _zero(graph, pos.args[1]):
        return False
    graph.replace_uses(nid, u)
    return True
