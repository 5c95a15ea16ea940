"""Forward mode (``graphc.jvp``) through loops and branches.

A structured node is not recorded through ``tracing.bind``, so the forward-mode
hook (:mod:`graphc.forward`) never sees it; instead :func:`graphc.control.body.add_structured`
asks the handler's ``jvp`` rule (installed here) when one of its operands has a
tangent in an open level.  The rule records, in place of the node, one node of
the same kind whose bodies are the forward-mode transforms of the original
bodies: each body is replayed under a forward level of its own body trace, its
inputs seeded with tangent inputs, so the generated loop computes ``dot_h`` right
after ``h``.  A scan carries ``(c, dc)`` and reads ``(x, dx)``, a while loop carries
``(c, dc)``, a branch maps ``(operands, d_operands)`` to ``(results, d_results)``;
captured values' tangents are captured too.  Tangents that are symbolically zero
stay absent: a carry gets a tangent only when its initial value has one or the body
gives it one (a fixpoint, as in JAX's ``_scan_jvp``), a result of a branch only when
some branch gives it one.  The results' tangents are registered in the level
(``Level.tangents``); the new node is recorded through ``add_structured`` again, with
this level shielded, so outer levels transform it in turn (jvp of jvp).
"""
from __future__ import annotations

import numpy as np

from ..forward import forward_level
from ..ir import SUBGRAPH_OPS
from ..primitive import Aval
from ..pytree import LEAF, TreeDef
from ..tracing import current_trace
from .body import LIST_AVAL, add_structured, replay, trace_body
from .branches import branch_node, branch_slices
from .scan import scan_node
from .while_ import while_slices

__all__ = ["jvp_replay"]


def jvp_replay(graph, ins, dins):
    """Replay ``graph`` on ``ins`` in the current (body) trace with ``ins[i]`` perturbed
    along ``dins[i]`` (None: not perturbed); returns (outputs, their tangents or None)."""
    trace = current_trace()
    with forward_level(trace) as level:
        for x, dx in zip(ins, dins):
            if dx is not None:
                level.seed(x, dx)
        outs = replay(graph, ins, keep=True)
        dots = [level.tangent(o) for o in outs]
    return outs, dots


def _zeros(trace, aval):
    return trace.lift(np.zeros(aval.shape, aval.dtype))


def _float(x) -> bool:
    return x.dtype.kind == "f"


def _tangents(level, xs):
    return [level.tangent(x) if _float(x) else None for x in xs]


def _input_names(graph, idx):
    """Names of a new body's inputs: the original input's name, or dot_ of it."""
    out = {}
    for pos, (i, dot) in enumerate(idx):
        name = graph[graph.inputs[i]].name
        if name:
            out[pos] = f"dot_{name}" if dot else name
    return out


def _register(level, primals, tangents):
    """``tangents``: {index into primals: tangent tracer}: the level's tangents, marked."""
    g = level.trace.graph
    for i, t in tangents.items():
        if g[t.node].tangent_of is None and g[t.node].op == "proj":
            g[t.node].tangent_of = primals[i].node
        level.tangents[primals[i].node] = t.node


# --- scan ------------------------------------------------------------------------------
def _scan_jvp(level, args, bodies, params, where):
    p, body = params, bodies[0]
    k, mx = p["n_carry"], p["n_args_x"]
    n_outer = len(body.inputs) - k - p["n_x"]
    init, xs, outer = args[:k], args[k:k + mx], args[k + mx:k + mx + n_outer]
    length = args[k + mx + n_outer] if len(args) > k + mx + n_outer else p["length"]
    entries = None
    if p["xs_list"]:     # a backward pass over a list of saved carries: their tangents are
        entries = level.list_tangents.get(xs[0].node, {})   # saved next to them
    dinit, dxs, douter = _tangents(level, init), _tangents(level, xs), _tangents(level, outer)
    X = [j for j, d in enumerate(dxs) if d is not None and entries is None]
    S = [i for i, d in enumerate(dinit) if d is not None]
    while True:                       # carries whose tangent is not zero: a fixpoint
        new, info = _scan_body(body, k, S, X, outer, douter, init, xs, where, entries)
        if set(info["carry"]) <= set(S):
            break
        S = sorted(set(S) | set(info["carry"]))
    trace = level.trace
    carries = init + [dinit[i] if dinit[i] is not None else _zeros(trace, init[i].aval)
                      for i in S]
    outs = scan_node(new, carries, xs + [dxs[j] for j in X], length, p["reverse"], where,
                     xs_list=p["xs_list"])
    Y, ny, ks = info["y"], p["n_y"], k + len(S)
    primal = outs[:k] + outs[ks:ks + ny]
    tang = {i: outs[k + s] for s, i in enumerate(S)}
    tang.update({k + j: outs[ks + ny + s] for s, j in enumerate(Y)})
    tape = outs[ks + ny + len(Y):]
    if p["tape"] == "list":
        primal.append(tape[0])
        level.list_tangents[tape[0].node] = {i: k + s for s, i in enumerate(S)}
    else:
        primal += tape[:k]
        tang.update({k + ny + i: tape[k + s] for s, i in enumerate(S)})
    return primal, tang


def _scan_body(body, k, S, X, outer, douter, init, xs, where, entries=None):
    """Trace the forward-mode body of a scan: ``((c, dc_S), (x, dx_X)) -> ((c', dc'_S), (y, dy))``;
    ``entries``: for a scan over a list of saved carries, {entry: entry holding its tangent}."""
    info = {}
    moved = [j for j, d in enumerate(douter) if d is not None]

    def step(carry, x):
        cs, dcs = carry
        xv, dxv = x
        trace = current_trace()
        consts = [trace.lift(c) for c in outer]
        dconsts = {j: trace.lift(douter[j]) for j in moved}
        dins = [None] * len(body.inputs)
        for s, i in enumerate(S):
            dins[i] = dcs[s]
        for s, j in enumerate(X):
            dins[k + j] = dxv[s]
        for i, j in (entries or {}).items():
            dins[k + i] = xv[j]
        base = k + len(xv)
        for j, d in dconsts.items():
            dins[base + j] = d
        outs, dots = jvp_replay(body, list(cs) + list(xv) + consts, dins)
        info["carry"] = [i for i in range(k) if dots[i] is not None]
        info["y"] = [j for j in range(len(outs) - k) if dots[k + j] is not None]
        dc = [dots[i] if dots[i] is not None else _zeros(trace, outs[i].aval) for i in S]
        return (list(outs[:k]), dc), (list(outs[k:]), [dots[k + j] for j in info["y"]])

    c_avals = [a.aval for a in init]
    x_avals = [Aval(tuple(x.shape[1:]), x.dtype, False) for x in xs] if entries is None else \
        [body.aval(i) for i in body.inputs[k:len(body.inputs) - len(outer)]]
    cspec = ([c_avals[i] for i in range(k)], [c_avals[i] for i in S])
    xspec = (x_avals, [x_avals[j] for j in X])
    names = _input_names(body, [(i, False) for i in range(k)] + [(i, True) for i in S])
    off = k + len(S)
    names.update({off + pos: n for pos, n in _input_names(
        body, [(k + j, False) for j in range(len(x_avals))] + [(k + j, True) for j in X]).items()})
    new = trace_body(step, [_spec(cspec), _spec(xspec)], "scan body", where, names=names)
    return new, info


def _spec(pair):
    """(treedef, avals) of a pair of lists of avals."""
    a, b = pair
    tdef = TreeDef("tuple", (TreeDef("tuple", tuple(LEAF for _ in a)),
                             TreeDef("tuple", tuple(LEAF for _ in b))))
    return tdef, list(a) + list(b)


# --- while_loop ------------------------------------------------------------------------
def _while_jvp(level, args, bodies, params, where):
    node_like = _Args(params, args)
    sc, scond, sb = while_slices(node_like)
    init, cond_outer, outer = args[sc], args[scond], args[sb]
    cond_g, body = bodies
    k = len(init)
    dinit, douter = _tangents(level, init), _tangents(level, outer)
    S = [i for i, d in enumerate(dinit) if d is not None]
    while True:
        new, info = _scan_body(body, k, S, [], outer, douter, init, [], where)
        if set(info["carry"]) <= set(S):
            break
        S = sorted(set(S) | set(info["carry"]))
    avals = [a.aval for a in init]
    cspec = _spec((avals, [avals[i] for i in S]))

    def cond(carry):
        cs, _ = carry
        trace = current_trace()
        return replay(cond_g, list(cs) + [trace.lift(c) for c in cond_outer], keep=True)[0]
    names = _input_names(body, [(i, False) for i in range(k)] + [(i, True) for i in S])
    newc = trace_body(cond, [cspec], "while_loop cond", where, names=names)
    trace = level.trace
    carries = init + [dinit[i] if dinit[i] is not None else _zeros(trace, init[i].aval)
                      for i in S]
    p = {"n_carry": len(carries), "n_cond_outer": len(newc.outer)}
    outs = add_structured("while", carries + newc.outer + new.outer, [newc.graph, new.graph],
                          p, [c.aval for c in carries] + [LIST_AVAL], where)
    primal = outs[:k] + [outs[-1]]
    level.list_tangents[outs[-1].node] = {i: k + s for s, i in enumerate(S)}
    return primal, {i: outs[k + s] for s, i in enumerate(S)}


class _Args:
    """A stand-in node (params, args) for the ``*_slices`` helpers."""

    def __init__(self, params, args):
        self.params, self.args = params, args


# --- cond / switch ---------------------------------------------------------------------
def _cond_jvp(level, args, bodies, params, where):
    sops, souts = branch_slices(_Args(params, args))
    ops, outers = args[sops], [args[s] for s in souts]
    dops = _tangents(level, ops)
    douters = [_tangents(level, o) for o in outers]
    D = [j for j, d in enumerate(dops) if d is not None]
    m, n_res = len(ops), len(bodies[0].outputs)
    R = set()
    for b, graph in enumerate(bodies):        # which results have a tangent in some branch
        info = {}
        trace_body(_branch(graph, m, D, outers[b], douters[b], None, info),
                   [_spec(([x.aval for x in ops], [ops[j].aval for j in D]))],
                   "branch", where)
        R |= set(info["r"])
    R = sorted(R)
    fns = [_branch(graph, m, D, outers[b], douters[b], R, {}) for b, graph in enumerate(bodies)]
    leaves = ops + [dops[j] for j in D]
    otdef = _spec(([x.aval for x in ops], [ops[j].aval for j in D]))[0]
    outs, _ = branch_node(args[0], fns, leaves, otdef, where, params["kind"])
    return outs[:n_res], {r: outs[n_res + s] for s, r in enumerate(R)}


def _branch(graph, m, D, outer, douter, R, info):
    """One branch's forward-mode transform: ``(ops, dops_D) -> results + d_results_R``."""
    def branch(args):
        ops, dops = args
        trace = current_trace()
        consts = [trace.lift(c) for c in outer]
        dins = [None] * len(graph.inputs)
        for s, j in enumerate(D):
            dins[j] = dops[s]
        for j, d in enumerate(douter):
            if d is not None:
                dins[m + j] = trace.lift(d)
        outs, dots = jvp_replay(graph, list(ops) + consts, dins)
        info["r"] = [i for i, d in enumerate(dots) if d is not None]
        if R is None:
            return list(outs)
        return list(outs) + [dots[r] if dots[r] is not None else _zeros(trace, outs[r].aval)
                             for r in R]
    return branch


def structured_jvp(trace, index, op, args, bodies, params, where):
    """Record the forward-mode transform of structured node ``op`` for level
    ``trace.jvp_levels[index]``; returns its results in the original node's layout."""
    levels = trace.jvp_levels
    shielded = levels[index:]
    for lv in shielded:
        lv.shield += 1
    try:
        primal, tang = _RULES[op](levels[index], args, bodies, params, where)
    finally:
        for lv in shielded:
            lv.shield -= 1
    _register(levels[index], primal, tang)
    return primal


_RULES = {"scan": _scan_jvp, "while": _while_jvp, "cond": _cond_jvp}
for _op in _RULES:
    SUBGRAPH_OPS[_op].jvp = structured_jvp
