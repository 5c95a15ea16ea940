"""Bodies of structured control flow: tracing a function into a sub-graph.

:func:`trace_body` runs a loop body (or a branch) on abstract values under a
:class:`BodyTrace` nested in the active trace.  A value of an enclosing trace
used inside (the weights ``W`` of an RNN) is *captured*: it becomes an extra
input of the body and an extra argument of the loop node (:meth:`BodyTrace.adopt`).
:func:`add_structured` records the node holding the bodies and one ``proj``
node per result; :func:`replay` re-records a body's nodes in the current trace
(the reverse pass recomputes a step from its saved carry this way).
"""
from __future__ import annotations

import inspect

import numpy as np

from .. import errors
from ..errors import ShapeError
from ..naming import sanitize
from ..ir import SUBGRAPH_OPS, Graph
from ..primitive import REGISTRY, Aval, type_str
from ..pytree import flatten, unflatten
from ..tracing import Trace, Tracer, current_trace, foreign_tracer_error

__all__ = ["BodyTrace", "Body", "trace_body", "add_structured", "results_of", "replay",
           "MultiCt", "Handler", "PLACEHOLDER", "strong_leaves", "numbers_to_arrays"]

#: The aval of a multi-result node itself (its results are its ``proj`` users).
PLACEHOLDER = Aval((), np.dtype(np.float64), False)
#: The aval of a Python list tape (a loop's saved carries when its trip count is not static).
LIST_AVAL = Aval((), np.dtype(object), False)


class Handler:
    """What graphc knows about one structured op: installed in ``ir.SUBGRAPH_OPS``.

    ``vjp(trace, nid, ct) -> [(arg, ct)]`` (here), ``emit(em, nid) -> lines``,
    ``evaluate(graph, nid, args)``, ``cost(graph, nid, body_cost) -> flops`` and
    ``label(node) -> str`` (installed by :mod:`graphc.control.emit`);
    ``result_avals(node)``, the avals of its results.
    """

    def __init__(self, name, vjp, result_avals=None):
        self.name, self.vjp, self.result_avals = name, vjp, result_avals
        self.emit = self.evaluate = self.cost = self.label = None
        self.jvp = None          # forward mode (graphc.control.tangents)
        SUBGRAPH_OPS[name] = self


class BodyTrace(Trace):
    """The trace of a loop body or branch, nested in ``parent``."""

    def __init__(self, graph, parent):
        super().__init__(graph)
        self.parent = parent
        self.captured: dict = {}     # (id(trace), node) -> input node id here
        self.outer: list = []        # the captured values, as tracers of ``parent``

    def adopt(self, x) -> Tracer:
        """Capture ``x``, a value of an enclosing trace, as an input of this body."""
        t = x._trace
        if not t.active or t is self or not t.encloses(self):
            raise foreign_tracer_error(x)
        key = (id(t), x.node)
        nid = self.captured.get(key)
        if nid is None:
            outer = x if t is self.parent else self.parent.adopt(x)
            src = t.graph[x.node]
            name = src.name or (t.graph[src.args[0]].name if src.op == "identity" else None) \
                or t.names.get(x.node, (0, None))[1] \
                or (t.graph.display_name(x.node) if src.tangent_of is not None else "captured")
            nid = self.graph.add_input(x.aval, name=name, where=src.where)
            self.captured[key] = nid
            self.outer.append(outer)
        return self.tracer(nid)


class Body:
    """A traced body: its graph, result treedef and the captured outer values."""

    def __init__(self, graph, out_tdef, outer):
        self.graph, self.out_tdef, self.outer = graph, out_tdef, outer

    @property
    def out_avals(self):
        return [self.graph.aval(o) for o in self.graph.outputs]


def numbers_to_arrays(tree, weak: set | None = None):
    """Python numbers in a carry become NumPy scalars (a pytree would keep a Python
    int static; a loop's carry changes from step to step); ``weak`` collects their ids."""
    if isinstance(tree, dict):
        return {k: numbers_to_arrays(v, weak) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        out = [numbers_to_arrays(v, weak) for v in tree]
        return out if isinstance(tree, list) else tuple(out)
    if isinstance(tree, (bool, int, float)):
        arr = np.asarray(tree)
        if weak is not None:
            weak.add(id(arr))
        return arr
    return tree


def strong_leaves(leaves):
    """Python numbers as NumPy arrays of their default dtype (a carry's type is fixed)."""
    out = []
    for x in leaves:
        if isinstance(x, Tracer):
            out.append(x)
        else:
            a = np.asarray(x)
            if a.dtype.kind not in "biuf":
                raise errors.UnsupportedError(
                    f"a loop carry or operand of dtype {a.dtype} cannot be traced",
                    hint="carries and operands are arrays or Python numbers")
            out.append(a)
    return out


def trace_body(fn, arg_specs, what, where, section="forward", names=None,
               param_fn=None) -> Body:
    """Trace ``fn(*args)`` on fresh inputs: ``arg_specs`` is a list of
    ``(treedef, avals)``, one per positional argument of ``fn``.  ``section``:
    ``"backward"`` for the body of a backward loop; ``names``: {input index: name}
    for inputs not named by the user's parameters; ``param_fn``: the user's function whose
    parameter names name the inputs, when ``fn`` wraps it."""
    parent = current_trace()
    g = Graph(what)
    t = BodyTrace(g, parent)
    t.attrs["section"] = section
    try:
        with t.activate():
            args = []
            for tdef, avals in arg_specs:
                ins = [t.tracer(g.add_input(a, name="c", where=where)) for a in avals]
                args.append(unflatten(tdef, ins))
            params = _param_names(param_fn or fn, len(arg_specs))
            leaf = 0
            for (tdef, avals), pname in zip(arg_specs, params):
                for _ in avals:        # an array parameter (h in step(h, x)) keeps its name
                    default = pname if tdef.kind == "leaf" else None
                    g[g.inputs[leaf]].name = (names or {}).get(leaf, default)
                    leaf += 1
            out = fn(*args)
            leaves, tdef, _ = flatten(out)
            g.outputs = [_lift_out(t, x, what, where) for x in leaves]
    except BaseException:
        t.active = False
        raise
    t.finish()
    return Body(g, tdef, t.outer)


def _param_names(fn, n):
    """The names of ``fn``'s first ``n`` positional parameters (None where unknown)."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [sanitize(p.name) if p.name.isidentifier() else None for p in params[:n]]
    return names + [None] * (n - len(names))


def _lift_out(t, x, what, where):
    if not isinstance(x, (Tracer, int, float, bool, np.ndarray, np.generic)):
        raise errors.UnsupportedError(
            f"the {what} function returned a {type(x).__name__}, which is not an array",
            where=where, hint="return arrays, Python numbers, or tuples/lists/dicts of them")
    return t.lift(x).node


def check_types(got, want, tdef_got, tdef_want, what, where, hint):
    """Same pytree structure, shapes and dtypes, or a ShapeError naming the user's line."""
    if tdef_got != tdef_want:
        raise ShapeError(f"{what}: the structure {tdef_got!r} differs from {tdef_want!r}",
                         where=where, hint=hint)
    for i, (a, b) in enumerate(zip(got, want)):
        if a.shape != b.shape or a.dtype != b.dtype:
            raise ShapeError(f"{what}: leaf {i} is {type_str(a.shape, a.dtype)} but must be "
                             f"{type_str(b.shape, b.dtype)}", where=where, hint=hint)


def add_structured(op, args, bodies, params, result_avals, where):
    """Record node ``op`` holding ``bodies`` and its ``proj`` results; returns the results."""
    trace = current_trace()
    g = trace.graph
    nids = [trace.lift(a).node for a in args]
    index = _perturbing_level(trace, nids)
    if index is not None:
        rule = SUBGRAPH_OPS[op].jvp
        if rule is None:
            _refuse_tangents(op, where)
        return rule(trace, index, op, [trace.tracer(n) for n in nids], bodies, params, where)
    attrs = {k: v for k, v in trace.attrs.items() if k != "where"}
    nid = g.add_node(op, nids, PLACEHOLDER, params=params, where=where,
                     bodies=tuple(bodies), **attrs)
    return [trace.tracer(g.add_node("proj", (nid,), av, params={"index": i}, where=where,
                                    **attrs))
            for i, av in enumerate(result_avals)]


def _perturbing_level(trace, nids):
    """The index of the innermost open forward level (graphc.jvp) that perturbs one of
    ``nids`` and whose rules are not running, or None."""
    levels = getattr(trace, "jvp_levels", ())
    for i in range(len(levels) - 1, -1, -1):
        if not levels[i].shield and any(n in levels[i].tangents for n in nids):
            return i
    return None


def _refuse_tangents(op, where):
    """A structured op without a forward rule: a perturbed operand would silently get a
    zero tangent, so it is an error."""
    raise errors.UnsupportedError(
        f"graphc.jvp through graphc.{_PUBLIC.get(op, op)} is not supported: "
        "this structured op has no forward-mode rule", where=where,
        hint="differentiate it in reverse mode (graphc.grad, graphc.vjp), or write "
             "the loop as a Python loop (unrolled) inside graphc.jvp")


_PUBLIC = {"while": "while_loop", "fori": "fori_loop"}


def results_of(graph, nid) -> dict:
    """``{index: proj node id}`` of a multi-result node."""
    return {graph[u].params["index"]: u for u in graph.users(nid) if graph[u].op == "proj"}


def replay(body: Graph, inputs, keep=False) -> list:
    """Record ``body``'s nodes again in the current trace, on ``inputs``; its outputs.
    ``keep``: the new nodes keep the originals' names and sections (a transformed body,
    not a recomputation)."""
    trace = current_trace()
    env = dict(zip(body.inputs, inputs))
    first = trace.graph._next
    for nid in body.order():
        if nid in env:
            continue
        node = body[nid]
        if node.op == "const":
            value = node.value
            env[nid] = trace.lift(value if node.weak else np.array(value, dtype=node.dtype))
            continue
        args = [env[a] for a in node.args]
        attrs = _kept(node, env) if keep else {"section": "forward"}   # else a recomputation
        with trace.context(where=node.where, **attrs):
            if node.op == "proj":
                env[nid] = args[0][node.params["index"]]
            elif node.op in SUBGRAPH_OPS:
                env[nid] = _replay_structured(trace, node, args, body, nid)
            else:
                env[nid] = REGISTRY[node.op](*args, **node.params)
        if keep:
            _keep_name(trace.graph, env[nid], node, first, env)
    return [env[o] for o in body.outputs]


def _kept(node, env):
    grad_of = env.get(node.grad_of)
    return {"section": node.section or "forward",
            "grad_of": grad_of.node if isinstance(grad_of, Tracer) else None}


def _keep_name(g, x, node, first, env):
    """A replayed node new in this trace takes the original's name and marks."""
    if not isinstance(x, Tracer) or x.node < first:
        return
    new = g[x.node]
    if new.op != node.op or new.name is not None or new.tangent_of is not None:
        return
    new.name, new.hint = node.name, new.hint or node.hint
    for attr in ("adjoint_of", "tangent_of"):
        old = env.get(getattr(node, attr))
        if isinstance(old, Tracer):
            setattr(new, attr, old.node)


def _replay_structured(trace, node, args, body, nid):
    """A nested loop/branch recorded again: same bodies and params, new arguments."""
    avals = SUBGRAPH_OPS[node.op].result_avals(node)
    return add_structured(node.op, args, [b.copy() for b in node.bodies], dict(node.params),
                          avals, node.where)


class MultiCt:
    """Cotangents of a multi-result node's results, gathered by index (``proj``'s rule)."""

    __slots__ = ("cts",)

    def __init__(self, cts):
        self.cts = dict(cts)

    def get(self, i):
        return self.cts.get(i)

    def __add__(self, other):
        out = dict(self.cts)
        for i, c in other.cts.items():
            out[i] = c if out.get(i) is None else out[i] + c
        return MultiCt(out)


Handler("proj", lambda trace, nid, ct: [
    (trace.graph[nid].args[0], MultiCt({trace.graph[nid].params["index"]: ct}))])
