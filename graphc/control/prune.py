"""Dead carries, ys and inputs of scans: the loop-level half of dead-code elimination.

DCE inside a body keeps every body output, because each is a result of the loop.
:func:`prune_loops` drops what no one reads: a carry whose final value and tape are
unused and that no kept output depends on (the sum of the cotangent of an argument
nobody asked the gradient of), a ``ys`` nobody reads, and then the ``xs`` and captured
values the body no longer uses (the tape of a loop counter the backward pass does not
read).  Loops whose tape is a Python list keep their carries (the tape's entries hold
all of them).
"""
from __future__ import annotations

import numpy as np

from ..passes import dce
from .body import results_of
from .scan import arg_slices

__all__ = ["prune_loops"]


def prune_loops(graph):
    """Drop the unused carries, ys and inputs of every scan in ``graph``; in place.
    An ``xs`` that is a uniform constant (the cotangent ``np.ones`` of a sum) becomes
    a constant of the body instead of an array sliced at each step."""
    changed = False
    for nid in sorted((n for n in graph if graph[n].op == "scan"), reverse=True):
        _constant_xs(graph, nid)
        changed |= _prune(graph, nid)
    if changed:
        dce(graph)
    return graph


def _constant_xs(graph, nid):
    """Uniform constant xs: their body inputs become constants (the slice's value)."""
    node = graph[nid]
    if node.params["xs_list"]:
        return
    k = node.params["n_carry"]
    _, sx, _, _ = arg_slices(node)
    body = node.bodies[0]
    drop = []
    for j, a in enumerate(node.args[sx]):
        value = graph[a].value
        if graph[a].op != "const" or graph[a].weak or np.size(value) == 0:
            continue
        flat = np.ravel(value)
        signs = np.signbit(flat) if flat.dtype.kind == "f" else np.zeros(1, bool)
        if not np.all(flat == flat[0]) or signs.any() != signs.all():
            continue
        drop.append(j)
    if not drop:
        return
    body = body.copy()
    for j in drop:
        inp = body.inputs[k + j]
        body[inp].op = "const"
        first = np.ravel(graph[node.args[sx][j]].value)[0]
        body[inp].value = np.full(body[inp].shape, first, dtype=body[inp].dtype)
        body[inp].name = None
    gone = {body.inputs[k + j] for j in drop}
    body.inputs = [i for i in body.inputs if i not in gone]
    xs_args = [a for j, a in enumerate(node.args[sx]) if j not in drop]
    args = list(node.args)
    graph.set_args(nid, args[:sx.start] + xs_args + args[sx.stop:])
    node.bodies = (body,)
    node.params = {**node.params, "n_x": node.params["n_x"] - len(drop),
                   "n_args_x": len(xs_args)}


def _used(graph, pid) -> bool:
    return graph.n_uses(pid) > 0 or pid in graph.outputs


def _needed(body, outputs) -> set:
    need, stack = set(), list(outputs)
    while stack:
        n = stack.pop()
        if n not in need:
            need.add(n)
            stack.extend(body[n].args)
    return need


def _kept_carries(node, graph, res):
    p = node.params
    body = node.bodies[0]
    k, ny = p["n_carry"], p["n_y"]
    if p["tape"] == "list" or p["xs_list"]:
        return list(range(k))
    keep = {i for i in range(k) if i in res and _used(graph, res[i])
            or k + ny + i in res and _used(graph, res[k + ny + i])}
    used_y = [j for j in range(ny) if k + j in res and _used(graph, res[k + j])]
    while True:
        need = _needed(body, [body.outputs[i] for i in keep]
                       + [body.outputs[k + j] for j in used_y])
        more = {i for i in range(k) if body.inputs[i] in need} - keep
        if not more:
            return sorted(keep)
        keep |= more


def _prune(graph, nid) -> bool:
    node = graph[nid]
    p = node.params
    body = node.bodies[0]
    k, ny = p["n_carry"], p["n_y"]
    res = results_of(graph, nid)
    carries = _kept_carries(node, graph, res)
    ys = [j for j in range(ny) if k + j in res and _used(graph, res[k + j])]
    outputs = [body.outputs[i] for i in carries] + [body.outputs[k + j] for j in ys]
    need = _needed(body, outputs)
    si, sx, so, lpos = arg_slices(node)
    n_x = p["n_x"]
    xs = list(range(n_x)) if p["xs_list"] else \
        [j for j in range(n_x) if body.inputs[k + j] in need]
    n_outer = len(body.inputs) - k - n_x
    outer = [j for j in range(n_outer) if body.inputs[k + n_x + j] in need]
    if len(carries) == k and len(ys) == ny and len(xs) == n_x and len(outer) == n_outer:
        return False
    new = body.copy()
    new.inputs = [body.inputs[i] for i in carries] + [body.inputs[k + j] for j in xs] \
        + [body.inputs[k + n_x + j] for j in outer]
    new.outputs = outputs
    dce(new)
    args = list(node.args)
    x_args = args[sx] if p["xs_list"] else [args[sx][j] for j in xs]
    new_args = [args[si][i] for i in carries] + x_args + [args[so][j] for j in outer] \
        + ([args[lpos]] if lpos is not None else [])
    index = {i: n for n, i in enumerate(carries)}
    index.update({k + j: len(carries) + n for n, j in enumerate(ys)})
    tape_at = len(carries) + len(ys)
    if p["tape"] == "list":
        index[k + ny] = tape_at
    else:
        index.update({k + ny + i: tape_at + n for n, i in enumerate(carries)})
    for i, pid in res.items():
        if i in index:
            graph[pid].params = {**graph[pid].params, "index": index[i]}
        elif not _used(graph, pid):
            graph.remove_nodes([pid])
    node.bodies = (new,)
    node.params = {**p, "n_carry": len(carries), "n_y": len(ys), "n_x": len(xs),
                   "n_args_x": len(x_args)}
    graph.set_args(nid, new_args)
    return True
