"""``graphc.scan`` and ``graphc.fori_loop``: loops kept rolled, and their reverse mode.

A scan is one ``scan`` node whose body is a sub-graph ``(carry, x) -> (carry, y)``.
Its arguments are the initial carry leaves, the stacked ``xs`` leaves (or, for the
backward pass of a loop of runtime length, one Python list of saved carries), the
values the body captured from enclosing traces and, when the trip count is a traced
integer, the trip count.  Its results (``proj`` nodes) are the final carry leaves,
the stacked ``ys`` and the *tape*: the carry entering each step, stacked
(``np.empty((length, ...))``) when the length is static, a Python list when it is
not.  Generated code writes the tape only when the backward pass reads it.

The backward pass of a scan is another scan, running the other way over the tape:
each step recomputes the body from its saved carry (:func:`~graphc.control.body.replay`)
and runs the body's adjoint (:func:`graphc.autodiff.backward`), carrying the
cotangent of the carry and the sums of the captured values' cotangents.  Being a
scan itself, it is differentiated again the same way (``grad(grad(f))``).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import errors
from ..autodiff import backward
from ..errors import GradError, ShapeError
from ..primitive import Aval
from ..pytree import LEAF, TreeDef, flatten, unflatten
from ..tracing import Tracer, current_trace
from .body import (LIST_AVAL, Handler, add_structured, check_types, results_of, replay,
                   numbers_to_arrays, strong_leaves, trace_body)

__all__ = ["scan", "fori_loop", "loop_backward", "carry_fn", "settle_weak"]


def _has_tracer(leaves) -> bool:
    return any(isinstance(x, Tracer) for x in leaves)


def _static_int(n, what, where):
    if isinstance(n, Tracer):
        if n.shape != () or n.dtype.kind not in "iu":
            raise ShapeError(f"{what} must be an integer scalar, got {n.aval.short()}", where=where,
                             hint="pass a Python int or a traced integer scalar")
        return n
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ShapeError(f"{what} must be an integer, got {type(n).__name__} {n!r:.40}",
                         where=where, hint="pass a Python int (or a traced integer scalar)")
    return int(n)


def scan(f, init, xs=None, length=None, reverse=False):
    """Loop ``f`` over the leading axis of ``xs``, carrying a state: ``jax.lax.scan``.

    ``carry, y = f(carry, x)`` runs once per step; the result is the final carry and
    the ``y`` of every step stacked along a new leading axis.  Traced, it stays one
    loop in the generated code (a Python ``for`` whose body is ``f``'s code), so the
    code and its compile time do not grow with the number of steps; it is
    differentiable in reverse mode (the backward pass is a reversed loop over the
    saved carries).  Outside a traced function it runs as a plain Python loop.

    Parameters
    ----------
    f : callable
        ``f(carry, x) -> (carry, y)``.  The carry keeps its structure, shapes and
        dtypes; ``y`` may be ``None``.  Values of the enclosing traced function
        (weights) may be used inside.
    init : pytree of arrays
        The initial carry (dicts, lists, tuples of arrays or Python numbers).
    xs : pytree of arrays or None
        Sliced along their first axis, one slice per step; ``None`` with ``length``.
    length : int, optional
        The number of steps; required when ``xs`` is None.  May be a traced integer
        when ``xs`` is None (then ``f`` may return no ``y``).
    reverse : bool, default False
        Run from the last slice to the first (``ys[t]`` still belongs to ``xs[t]``).

    Returns
    -------
    carry, ys
        The final carry, and the stacked ``y`` values (``None`` when ``y`` is).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def cumsum(xs):
    ...     total, sums = graphc.scan(lambda c, x: (c + x, c + x), 0.0, xs)
    ...     return sums
    >>> cumsum(np.array([1.0, 2.0, 3.0]))
    array([1., 3., 6.])
    >>> graphc.grad(lambda xs: cumsum(xs).sum())(np.array([1.0, 2.0, 3.0]))
    array([3., 2., 1.])
    """
    where = errors.user_where(1)
    weak_ids: set = set()
    init_leaves, ctdef, _ = flatten(numbers_to_arrays(init, weak_ids))
    x_leaves, xtdef, _ = flatten(xs)
    n = _scan_length(x_leaves, length, where)
    if current_trace() is None and not _has_tracer(init_leaves + x_leaves) \
            and not isinstance(n, Tracer):
        return _eager_scan(f, init, xs, x_leaves, xtdef, n, reverse)
    if isinstance(n, Tracer) and x_leaves:
        raise ShapeError("scan: a traced length cannot be used with xs", where=where)
    init_leaves = settle_weak(f, ctdef, strong_leaves(init_leaves),
                              [id(x) in weak_ids for x in init_leaves],
                              [(xtdef, [Aval(tuple(x.shape[1:]), x.dtype) for x in x_leaves])],
                              where, "scan")
    return _traced_scan(f, init_leaves, ctdef, x_leaves, xtdef, n, reverse, where)


def _scan_length(x_leaves, length, where):
    lengths = {x.shape[0] if np.ndim(x) else None for x in x_leaves}
    if None in lengths:
        raise ShapeError("scan: every leaf of xs needs a leading axis to scan over (a 0-d "
                         "value was given)", where=where, hint="pass arrays of shape (n, ...)")
    if len(lengths) > 1:
        raise ShapeError(f"scan: the leaves of xs have different leading lengths "
                         f"{sorted(lengths)}", where=where,
                         hint="every array in xs is sliced along axis 0: give them one length")
    if length is None:
        if not lengths:
            raise ShapeError("scan: with xs=None, pass length=", where=where,
                             hint="e.g. graphc.scan(f, init, None, length=10)")
        return lengths.pop()
    n = _static_int(length, "scan's length", where)
    if lengths and not isinstance(n, Tracer) and lengths != {n}:
        raise ShapeError(f"scan: length={n} but xs has leading length {lengths.pop()}",
                         where=where, hint="drop length= or make it match xs")
    return n


def _eager_scan(f, init, xs, x_leaves, xtdef, n, reverse):
    """Plain NumPy: a Python loop, ys stacked."""
    carry, ys = init, []
    steps = range(n - 1, -1, -1) if reverse else range(n)
    for t in steps:
        carry, y = f(carry, unflatten(xtdef, [x[t] for x in x_leaves]))
        ys.append(y)
    if reverse:
        ys.reverse()
    leaves, ctdef, _ = flatten(carry)
    carry = unflatten(ctdef, [np.asarray(c) for c in leaves])
    if not ys:          # no step ran: one call on zeros tells the type of y (as tracing would)
        _, y = f(init, unflatten(xtdef, [np.zeros(x.shape[1:], x.dtype) for x in x_leaves]))
        y_leaves, ytdef, _ = flatten(y)
        return carry, unflatten(ytdef, [np.empty((0,) + np.shape(v), np.asarray(v).dtype)
                                        for v in y_leaves])
    y_leaves = [flatten(y)[0] for y in ys]
    ytdef = flatten(ys[0])[1]
    return carry, unflatten(ytdef, [np.stack(col) for col in zip(*y_leaves)])


def settle_weak(f, ctdef, leaves, weak, x_spec, where, what):
    """Carry leaves given as Python numbers take the dtype the body gives them, as
    JAX's weak types do (``0.0`` next to float32 data is a float32 carry): the body
    is traced once with them weak to see it, then traced for good with that dtype."""
    if not any(weak):
        return leaves
    avals = [Aval(tuple(x.shape), x.dtype, w) for x, w in zip(leaves, weak)]
    probe = trace_body(carry_fn(f, ctdef, avals, where, what, loose=True),
                       [(ctdef, avals)] + x_spec, f"{what} body", where)
    outs = probe.out_avals[:len(leaves)]
    return [np.asarray(x, dtype=o.dtype) if w and o.dtype.kind == x.dtype.kind else x
            for x, w, o in zip(leaves, weak, outs)]


def carry_fn(f, ctdef, carry_avals, where, what="scan", loose=False):
    """``f`` with its carry result checked and cast to the carry's dtypes (a Python
    float result takes the carry's float dtype, as a weak type does in JAX);
    ``loose``: dtypes are not checked (the probe of :func:`settle_weak`)."""
    hint = ("the carry must keep its structure, shapes and dtypes from step to step: "
            "initialize it with the dtype the body produces (e.g. np.zeros(n, np.float32)), "
            "or cast in the body with .astype")

    def body(carry, x):
        out = f(carry, x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ShapeError(f"{what}: the body must return a pair (carry, y), got "
                             f"{type(out).__name__}", where=where,
                             hint="return (new_carry, y); y may be None")
        new, y = out
        leaves, tdef, _ = flatten(new)
        leaves = [_cast_weak(c, a) for c, a in zip(leaves, carry_avals)]
        got = [c.aval if isinstance(c, Tracer) else Aval(np.shape(c), np.asarray(c).dtype)
               for c in leaves]
        want = [Aval(a.shape, g.dtype) for a, g in zip(carry_avals, got)] if loose \
            else carry_avals
        check_types(got, want, tdef, ctdef, f"{what}: the carry returned by the body",
                    where, hint)
        return unflatten(tdef, leaves), y
    return body


def _cast_weak(c, aval):
    """A weak (Python-number) carry result, or one of the same kind, takes the carry's dtype."""
    if isinstance(c, Tracer):
        if c.aval.weak and c.shape == aval.shape and c.dtype.kind == aval.dtype.kind:
            return c.astype(aval.dtype)
        return c
    if isinstance(c, (int, float, bool)) and np.dtype(type(c)).kind in "biuf" \
            and aval.shape == () and (aval.dtype.kind == np.asarray(c).dtype.kind
                                      or aval.dtype.kind == "f" and isinstance(c, int)):
        return np.asarray(c, dtype=aval.dtype)
    return c


def _traced_scan(f, init_leaves, ctdef, x_leaves, xtdef, n, reverse, where):
    carry_avals = [Aval(tuple(x.shape), x.dtype, False) for x in init_leaves]
    x_avals = [Aval(tuple(x.shape[1:]), x.dtype, False) for x in x_leaves]
    body = trace_body(carry_fn(f, ctdef, carry_avals, where), [(ctdef, carry_avals),
                                                               (xtdef, x_avals)],
                      "scan body", where, param_fn=f)
    ytdef = body.out_tdef.children[1]
    if isinstance(n, Tracer) and ytdef.num_leaves:
        raise ShapeError("scan: with a traced length the body cannot return ys (their "
                         "stacked shape would not be known)", where=where,
                         hint="return (carry, None), or pass a Python int length")
    outs = scan_node(body, init_leaves, x_leaves, n, reverse, where)
    k = len(init_leaves)
    ys = outs[k:k + ytdef.num_leaves]
    return unflatten(ctdef, outs[:k]), unflatten(ytdef, ys)


def scan_node(body, init_leaves, x_leaves, n, reverse, where, xs_list=False):
    """Record a ``scan`` node for a traced body; returns its results (carries, ys, tape)."""
    k = len(init_leaves)
    dyn = isinstance(n, Tracer) or n is None
    params = {"n_carry": k, "n_x": len(body.graph.inputs) - k - len(body.outer),
              "n_y": len(body.graph.outputs) - k, "length": None if dyn else n,
              "reverse": bool(reverse), "tape": "list" if dyn else "array",
              "xs_list": xs_list}
    args = list(init_leaves) + list(x_leaves) + list(body.outer)
    if isinstance(n, Tracer):
        args.append(n)
    params["n_args_x"] = len(x_leaves)
    node_like = SimpleNamespace(params=params, bodies=(body.graph,))
    return add_structured("scan", args, [body.graph], params, _result_avals(node_like), where)


def _result_avals(node):
    p, body = node.params, node.bodies[0]
    k = p["n_carry"]
    carries = [body.aval(i) for i in body.inputs[:k]]
    n = p["length"]
    ys = [Aval((n,) + tuple(body.aval(o).shape), body.aval(o).dtype, False)
          for o in body.outputs[k:]]
    if p["tape"] == "list":
        tape = [LIST_AVAL]
    else:
        tape = [Aval((n,) + tuple(a.shape), a.dtype, False) for a in carries]
    return carries + ys + tape


def arg_slices(node):
    """Where a scan node's arguments are, by role: slices of init, xs, captured
    values, and the position of the traced length (or None)."""
    p = node.params
    k, mx = p["n_carry"], p["n_args_x"]
    n_outer = len(node.bodies[0].inputs) - k - p["n_x"]
    end = k + mx + n_outer
    return (slice(0, k), slice(k, k + mx), slice(k + mx, end),
            end if len(node.args) > end else None)


def parts(graph, nid):
    """The arguments of a scan node by role: init, xs, captured, length (or None)."""
    a = list(graph[nid].args)
    si, sx, so, lpos = arg_slices(graph[nid])
    return a[si], a[sx], a[so], (a[lpos] if lpos is not None else None)


# --- reverse mode -------------------------------------------------------------------
def _scan_vjp(trace, nid, ct):
    """Cotangents of a scan's arguments: a scan over the tape, the other way."""
    g = trace.graph
    node = g[nid]
    p = node.params
    if p["xs_list"]:
        raise GradError("differentiating the backward pass of a loop whose trip count is not "
                        "static (a while_loop, or a fori_loop/scan with traced bounds) again "
                        "is not supported", where=node.where,
                        hint="use static bounds (fori_loop with Python ints, scan over xs) "
                             "for higher derivatives")
    init, xs, outer, _ = (list(map(trace.tracer, s)) if isinstance(s, list) else s
                          for s in parts(g, nid))
    return loop_backward(trace, nid, ct, node.bodies[0], init, xs, outer, p["n_y"],
                         p["tape"] == "list", p["length"], p["reverse"])


def loop_backward(trace, nid, ct, body, init, xs, outer, ny, list_tape, length, reverse):
    """The cotangents of a loop's arguments (a scan's, a while_loop's) as
    ``(argument, cotangent)`` pairs: a backward scan over the tape (result ``k + ny``
    on, ``k`` carries), running the body's adjoint; ``ct`` holds the results' cotangents."""
    g = trace.graph
    where = g[nid].where
    k = len(init)
    res = {i: trace.tracer(u) for i, u in results_of(g, nid).items()}
    fc, reached = _live_carries(body, k, ny, ct, list_tape,
                                [i for i in range(k) if init[i].dtype.kind == "f"])
    base = len(body.inputs) - len(outer)
    fo = [j for j, c in enumerate(outer) if c.dtype.kind == "f"
          and body.inputs[base + j] in reached]
    fx = [j for j, x in enumerate(xs) if x.dtype.kind == "f" and body.inputs[k + j] in reached]
    ct_final = [ct.get(i) if ct.get(i) is not None else
                trace.lift(np.zeros(init[i].shape, init[i].dtype)) for i in fc]
    ct_y = [j for j in range(ny) if ct.get(k + j) is not None]
    ct_tape = [] if list_tape else [i for i in fc if ct.get(k + ny + i) is not None]
    step = _adjoint_step(body, k, ny, fc, fo, fx, outer, ct_y, ct_tape)
    names = _backward_names(trace, body, res, outer, k, fc, fo)
    zeros = [trace.lift(np.zeros(outer[j].shape, outer[j].dtype)) for j in fo]
    init_b = (ct_final, zeros)
    if list_tape:
        (ct_init, ct_outer), ct_xs = _backward_scan(
            step, init_b, [res[k + ny]], None, True, where, xs_list=True,
            carry_avals=[body.aval(i) for i in body.inputs[:k]], names=names)
    else:
        tape = [res[k + ny + i] for i in range(k)]
        xs_b = (tape, xs, [ct.get(k + j) for j in ct_y], [ct.get(k + ny + i) for i in ct_tape])
        (ct_init, ct_outer), ct_xs = _backward_scan(step, init_b, xs_b, length, not reverse,
                                                    where, names=names)
    pairs = [(init[i].node, c) for i, c in zip(fc, ct_init)]
    pairs += [(outer[j].node, c) for j, c in zip(fo, ct_outer)]
    pairs += [(xs[j].node, c) for j, c in zip(fx, ct_xs or [])]
    return pairs


def _live_carries(body, k, ny, ct, list_tape, fc):
    """The float carries whose cotangent is not zero: those given one (final value or
    tape) and, to a fixpoint, those a body output with a cotangent depends on (a carry
    no such output reads, such as the tangent carry of a forward-mode loop, gets none);
    and the body nodes those outputs depend on (an input outside has a zero cotangent)."""
    live = {i for i in fc if ct.get(i) is not None
            or (not list_tape and ct.get(k + ny + i) is not None)}
    ys = [body.outputs[k + j] for j in range(ny) if ct.get(k + j) is not None]
    while True:
        reached = set()
        for o in ys + [body.outputs[i] for i in live]:
            reached |= body.ancestors(o) | {o}
        more = live | {i for i in fc if body.inputs[i] in reached}
        if more == live:
            return sorted(live), reached
        live = more


def _backward_names(trace, body, res, outer, k, fc, fo):
    """Names of the backward body's inputs: ``d_h`` for the carry's cotangent, ``d_W``
    for a captured value's sum, ``h`` for the carry's saved value (the tape slice)."""
    def name(nid):
        return trace.graph[nid].name or trace.names.get(nid, (0, None))[1]
    carry = [body[body.inputs[i]].name or (name(res[i].node) if i in res else None)
             for i in range(k)]
    names = {j: f"d_{carry[i]}" for j, i in enumerate(fc) if carry[i]}
    names.update({len(fc) + j: f"d_{name(outer[i].node)}" for j, i in enumerate(fo)
                  if name(outer[i].node)})
    base = len(fc) + len(fo)
    names.update({base + i: c for i, c in enumerate(carry) if c})
    return names


def _adjoint_step(body, k, ny, fc, fo, fx, outer, ct_y, ct_tape):
    """The backward scan's body: recompute one step from its saved carry, run its adjoint."""
    graph = body

    def step(carry, x):
        cts, acc = carry
        tape_t, xs_t, cty_t, cttape_t = x if isinstance(x, tuple) and len(x) == 4 \
            else (x, [], [], [])
        trace = current_trace()
        consts = [trace.lift(c) for c in outer]
        ins = list(tape_t) + list(xs_t) + consts
        outs = replay(graph, ins)
        seeds_out = [outs[i] for i in fc] + [outs[k + j] for j in ct_y]
        seeds = list(cts) + list(cty_t)
        wrt = [ins[i] for i in fc] + [ins[k + j] for j in fx] + [consts[j] for j in fo]
        grads = backward(seeds_out, wrt, seeds) if seeds_out else \
            [trace.lift(np.zeros(w.shape, w.dtype)) for w in wrt]
        g_c, g_x, g_o = grads[:len(fc)], grads[len(fc):len(fc) + len(fx)], grads[len(fc) + len(fx):]
        for pos, c in zip(ct_tape, cttape_t):
            i = fc.index(pos)
            g_c[i] = g_c[i] + c
        return (list(g_c), [a + b for a, b in zip(acc, g_o)]), list(g_x)
    return step


def _backward_scan(step, init_b, xs_b, n, reverse, where, xs_list=False, carry_avals=None,
                   names=None):
    """Trace and record the backward scan; returns ((ct carry, ct captured), ct xs)."""
    init_leaves, ctdef, _ = flatten(init_b)
    carry_avals_b = [x.aval for x in init_leaves]
    if xs_list:
        x_leaves = xs_b
        entry = TreeDef("tuple", tuple(LEAF for _ in carry_avals))
        spec = [(ctdef, carry_avals_b), (entry, list(carry_avals))]
        body = trace_body(lambda c, x: step(c, (tuple(x), [], [], [])), spec,
                          "scan backward body", where, "backward", names)
    else:
        x_leaves, xtdef, _ = flatten(xs_b)
        x_avals = [Aval(tuple(x.shape[1:]), x.dtype, False) for x in x_leaves]
        body = trace_body(step, [(ctdef, carry_avals_b), (xtdef, x_avals)],
                          "scan backward body", where, "backward", names)
    with current_trace().context(section="backward"):
        outs = scan_node(body, init_leaves, x_leaves, n, reverse, where, xs_list=xs_list)
    kb = len(init_leaves)
    ytdef = body.out_tdef.children[1]
    carry = unflatten(ctdef, outs[:kb])
    return carry, unflatten(ytdef, outs[kb:kb + ytdef.num_leaves])


Handler("scan", _scan_vjp, _result_avals)


# --- fori_loop ----------------------------------------------------------------------
def fori_loop(lower, upper, body_fn, init_val):
    """``for i in range(lower, upper): val = body_fn(i, val)``, kept as one loop.

    As ``jax.lax.fori_loop``, and differentiable in reverse mode.  ``lower`` and
    ``upper`` may be Python ints or traced integer scalars: with traced bounds the
    trip count is a runtime value (the backward pass keeps a Python list of the
    carries).  Outside a traced function it is a plain Python loop.

    Parameters
    ----------
    lower, upper : int or traced integer scalar
    body_fn : callable
        ``body_fn(i, val) -> val``; ``i`` is a traced integer inside.
    init_val : pytree of arrays

    Returns
    -------
    pytree
        The final ``val``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def power(x, n):
    ...     return graphc.fori_loop(0, n, lambda i, y: y * x, np.ones_like(x))
    >>> power(np.array([2.0, 3.0]), 3)
    array([ 8., 27.])
    >>> graphc.grad(lambda x: power(x, 3).sum())(np.array([2.0, 3.0]))
    array([12., 27.])
    """
    where = errors.user_where(1)
    lo = _static_int(lower, "fori_loop's lower bound", where)
    hi = _static_int(upper, "fori_loop's upper bound", where)
    leaves = flatten(init_val)[0]
    if current_trace() is None and not isinstance(lo, Tracer) and not isinstance(hi, Tracer) \
            and not _has_tracer(leaves):
        val = init_val
        for i in range(lo, hi):
            val = body_fn(i, val)
        return val
    if not isinstance(lo, Tracer) and not isinstance(hi, Tracer):
        n = max(hi - lo, 0)
    else:
        n = hi - lo
        if n.dtype != np.int64:
            n = n.astype(np.int64)
    start = lo if isinstance(lo, Tracer) else np.int64(lo)

    def step(carry, _):
        i, val = carry
        return (i + 1, body_fn(i, val)), None
    (_, val), _ = scan(step, (start, init_val), None, length=n)
    return val
