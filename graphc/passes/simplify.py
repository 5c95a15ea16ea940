"""Algebraic simplification: rewrites that remove work without changing values.

Each rule looks at one node whose arguments are already simplified (the pass
walks in program order) and either leaves it alone or rewires it.  Rules never
create nodes, because node ids must stay in program order; a rewritten node
points at an earlier node instead, and dead leftovers go to ``dce``.

- ``reshape`` / ``broadcast_to`` / ``transpose`` that change nothing disappear.
- ``reshape(reshape(x))`` is one reshape; ``transpose(transpose(x))`` is one
  transpose (or none).
- ``sum(x, keepdims=True).reshape(<shape without those axes>)`` is a plain sum.
- An elementwise operand that is ``broadcast_to(y)`` is replaced by ``y`` when
  another operand already has the result's shape: NumPy broadcasts anyway, and
  the explicit broadcast only costs a call and a read-only view.
- A constant array whose entries are all equal (``np.full``), used by one
  elementwise op whose other operand already has the result's shape and dtype,
  becomes the scalar.
- ``x[:, 0]`` where that axis has size 1, and the matching ``scatter_add``,
  only remove or add unit axes: they become reshapes.
- ``scatter_add`` whose integer-array index is a constant with distinct values
  covering the whole index shape (``d[np.arange(n), labels]``) cannot hit an
  element twice, so it is emitted as plain assignment instead of ``np.add.at``.
- The sum of such a one-hot seed along its label axis (``(-d_logp).sum(axis=1)``) is a
  constant, whatever the labels (graphc/passes/onehot_sum.py).
- ``-(-a * b)`` is ``a * b`` (and the same with ``/``) for floats: the sigmoid's
  gradient (graphc/passes/neg_cancel.py).
"""
from __future__ import annotations

import numpy as np

from ..primitive import REGISTRY, Aval
from .neg_cancel import cancel_negations
from .onehot_sum import sum_of_onehot
from .pool_mask import relu_mask_after_unpool

BASIS = "basis"     # the hint of a Jacobian's identity seed (graphc/jacobians.py sets it)


def _forward(graph, nid, to):
    """Replace every use of ``nid`` by ``to`` (names move along: Graph.replace_uses)."""
    graph.replace_uses(nid, to)
    return True


def _same_as_input(graph, nid, node):
    op = node.op
    if op not in ("reshape", "broadcast_to", "transpose"):
        return False
    (x,) = node.args
    xn = graph[x]
    if op == "transpose":
        same = tuple(node.params["axes"]) == tuple(range(len(node.shape)))
    else:
        same = tuple(xn.shape) == tuple(node.shape)
    return same and _forward(graph, nid, x)


def _chain(graph, nid, node):
    op = node.op
    if op not in ("reshape", "transpose"):
        return False
    (x,) = node.args
    xn = graph[x]
    if xn.op != op:
        return False
    (inner,) = xn.args
    if op == "reshape":
        graph.set_args(nid, (inner,))
        if tuple(graph[inner].shape) == tuple(node.shape):
            _forward(graph, nid, inner)
        return True
    a, b = xn.params["axes"], node.params["axes"]
    axes = tuple(int(a[i]) for i in b)
    graph.set_args(nid, (inner,))
    node.params = dict(node.params, axes=axes)
    if axes == tuple(range(len(axes))):
        _forward(graph, nid, inner)
    return True


def _sum_keepdims_reshape(graph, nid, node):
    if node.op != "reshape":
        return False
    (s,) = node.args
    sn = graph[s]
    if sn.op != "sum" or not sn.params.get("keepdims"):
        return False
    axis = sn.params["axis"]
    x_shape = graph[sn.args[0]].shape
    squeezed = tuple(d for i, d in enumerate(x_shape) if i not in axis)
    if tuple(node.shape) != squeezed or len(graph.users(s)) != 1 or s in graph.outputs:
        return False
    # Turn the sum itself into the plain sum and drop the reshape.
    sn.params = dict(sn.params, keepdims=False)
    sn.aval = Aval(tuple(squeezed), sn.dtype, sn.weak)
    return _forward(graph, nid, s)


def _full_operand(graph, node, args, i):
    """Whether an argument other than ``args[i]`` (the current, possibly rewritten
    arguments) already has the result's shape and dtype."""
    for j, a in enumerate(args):
        an = graph[a]
        if j != i and a != args[i] and tuple(an.shape) == tuple(node.shape) \
                and an.dtype == node.dtype:
            return True
    return False


def _drop_operand_broadcast(graph, nid, node):
    prim = REGISTRY.get(node.op)
    if prim is None or not prim.elementwise or node.op in ("identity", "contiguous"):
        return False
    changed = False
    args = list(node.args)
    for i, a in enumerate(args):
        an = graph[a]
        # Checked against the arguments as rewritten so far: of two broadcasts, at
        # most one may go (the other then sets the result's shape).
        if an.op == "broadcast_to" and _full_operand(graph, node, args, i):
            args[i] = an.args[0]
            changed = True
        elif (an.op == "const" and np.ndim(an.value) > 0 and np.size(an.value) > 1
              and an.dtype.kind == "f" and len(graph.users(a)) == 1 and a not in graph.outputs
              and _full_operand(graph, node, args, i)):
            value = np.asarray(an.value)
            first = value.flat[0]
            # signbit too: [0., -0., 0.] is not the scalar 0.0; and a longdouble value
            # that a Python float would round stays an array
            if (np.all(value == first) and not np.isnan(first) and float(first) == first
                    and np.all(np.signbit(value) == np.signbit(first))):
                # A Python float is weak: it takes the other operand's dtype, which is
                # the result's, so the result type is unchanged.
                an.value, an.aval = float(first), Aval((), an.dtype, True)
                changed = True
    if changed:
        graph.set_args(nid, args)
    return changed


def _unique_scatter(graph, nid, node):
    if node.op != "scatter_add" or node.params.get("unique"):
        return False
    spec, full = node.params["spec"], node.params["shape"]
    # Only indexes made of integer arrays and ints: item k then indexes axis k.
    if not spec or any(item[0] not in ("array", "int") for item in spec):
        return False
    idx_nodes = [graph[a] for a in node.args[1:]]
    shape = np.broadcast_shapes(*(tuple(n.shape) for n in idx_nodes))
    if len(shape) != 1:
        return False
    for axis, item in enumerate(spec):
        if item[0] != "array":
            continue
        n = idx_nodes[item[1]]
        if n.op != "const" or tuple(n.shape) != shape:
            continue
        # -1 and n-1 are the same element: compare positions, not raw values.
        value = np.asarray(n.value) % full[axis]
        if np.unique(value).size == value.size:
            node.params = dict(node.params, unique=True)
            return True
    return False


def _index_as_reshape(graph, nid, node):
    """``x[:, 0]`` on an axis of size 1 (and its scatter) only drops or adds unit axes."""
    op = node.op
    if op not in ("getitem", "scatter_add") or len(node.args) != 1:
        return False
    spec = node.params["spec"]
    full = graph[nid].shape if op == "scatter_add" else graph[node.args[0]].shape
    axis = 0
    for item in spec:
        if item[0] == "none":
            continue
        if item[0] == "slice" and item[1:] == (None, None, None):
            axis += 1
        elif item[0] == "int" and full[axis] == 1 and item[1] in (0, -1):
            axis += 1
        else:
            return False
    node.op = "reshape"
    node.params = {"shape": tuple(node.shape)}
    return True


def _is_basis(node) -> bool:
    """A Jacobian's identity seed (``jacobians._basis``): a 2-D identity constant."""
    if node.op != "const" or node.hint != BASIS or len(node.shape) != 2:
        return False
    value = np.asarray(node.value)
    return value.shape[0] == value.shape[1] and np.array_equal(value, np.eye(value.shape[0]))


def _basis_matmul(graph, nid, node):
    """``basis @ A`` and ``A @ basis`` are ``A``: the seed picks A's rows (columns)."""
    if node.op != "matmul" or nid in graph.outputs:
        return False
    for i in (0, 1):
        other = graph[node.args[1 - i]]
        if _is_basis(graph[node.args[i]]) and tuple(other.shape) == tuple(node.shape) \
                and other.dtype == node.dtype:
            return _forward(graph, nid, node.args[1 - i])
    return False


_RULES = (_index_as_reshape, _same_as_input, _chain, _sum_keepdims_reshape, _drop_operand_broadcast, _unique_scatter, _basis_matmul,
          relu_mask_after_unpool,   # graphc/passes/pool_mask.py
          sum_of_onehot,            # graphc/passes/onehot_sum.py
          cancel_negations)         # graphc/passes/neg_cancel.py


def simplify(graph):
    """Apply the rules above to every node, in program order, in place."""
    nodes = graph.node_map()
    rules = [(rule, _RULE_OPS.get(rule)) for rule in _RULES]
    for nid in graph.order():
        node = nodes.get(nid)
        if node is None or node.op in ("input", "const"):
            continue
        for rule, ops in rules:
            if ops is not None and node.op not in ops:
                continue              # (the rule would return False at once)
            if nid not in nodes:
                break
            rule(graph, nid, node)
    return graph


# The ops each rule can rewrite (its first check), so that the walk calls it only on
# those; a rule not listed here is called on every node.
_RULE_OPS = {_index_as_reshape: {"getitem", "scatter_add"},
             _same_as_input: {"reshape", "broadcast_to", "transpose"},
             _chain: {"reshape", "transpose"}, _sum_keepdims_reshape: {"reshape"},
             _unique_scatter: {"scatter_add"}, _basis_matmul: {"matmul"},
             relu_mask_after_unpool: {"masked_mul"}, sum_of_onehot: {"sum"},
             cancel_negations: {"neg"}}
