"""A small graph interpreter: evaluate a :class:`graphc.Graph` node by node.

Generated code is the fast path; this is the slow, inspectable one.  Each
node is computed with its primitive's eager implementation
(:meth:`graphc.primitive.Primitive.impl`, compiled from the same emission text
the code generator writes), so every intermediate value is available.
``check_finite=True`` uses it to find the node where a NaN or infinity first
appeared (:func:`explain_nonfinite`).
"""
from __future__ import annotations

import numpy as np

from .errors import NonFiniteError
from .literals import const_text
from .precedence import wrap
from .primitive import REGISTRY, type_str

__all__ = ["evaluate", "evaluate_node", "explain_nonfinite", "all_finite", "NODE_EVALUATORS",
           "NODE_EXPLAINERS"]


class _Failed:
    """Stands for the value of a node whose evaluation raised (Python-float
    ``1.0 / 0.0`` raises instead of giving inf)."""

    def __init__(self, error):
        self.error = error


def _low_precision(graph) -> bool:
    return any(graph[n].dtype.kind == "f" and graph[n].dtype.itemsize < 8
               for n in graph)


def evaluate(graph, leaves) -> dict:
    """Values of every node of ``graph`` for input ``leaves`` (in ``graph.inputs`` order).

    Python-float inputs become ``np.float64`` in an all-float64 graph, as in
    generated code, so division by zero gives ``inf`` rather than raising.  A
    node whose evaluation raises anyway gets a placeholder and so do its users.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> g = graphc.trace(lambda x: np.exp(x) * 2.0, np.zeros(2))
    >>> values = evaluate(g, [np.zeros(2)])
    >>> values[g.outputs[0]]
    array([2., 2.])
    """
    if len(leaves) != len(graph.inputs):
        raise ValueError(f"graph has {len(graph.inputs)} inputs, got {len(leaves)} values")
    promote = not _low_precision(graph)
    values = {}
    for nid, x in zip(graph.inputs, leaves):
        node = graph[nid]
        if node.weak and promote and node.dtype.kind == "f" and isinstance(x, float):
            x = np.float64(x)
        values[nid] = x
    with np.errstate(all="ignore"):
        for nid in graph.order():
            if nid in values:
                continue
            node = graph[nid]
            if node.op == "const" or node.closure:   # closed-over: its trace value
                values[nid] = node.value
                continue
            args = [values[a] for a in node.args]
            failed = next((a for a in args if isinstance(a, _Failed)), None)
            if failed is not None:
                values[nid] = failed
                continue
            try:
                values[nid] = evaluate_node(graph, nid, args)
            except (ZeroDivisionError, OverflowError, FloatingPointError) as e:
                values[nid] = _Failed(e)
    return values


# {op: fn(graph, nid, arg_values) -> value}: ops whose evaluation needs more than
# their record's eager implementation (nodes holding sub-graphs, guards), installed by
# the modules that define them.
NODE_EVALUATORS: dict = {}
# {op: fn(graph, nid, arg_values, fn_label) -> NonFiniteError or None}: where inside a
# loop's body a non-finite value first appeared (installed by graphc/control/emit.py).
NODE_EXPLAINERS: dict = {}


def evaluate_node(graph, nid, args):
    """The value of node ``nid`` of ``graph`` given its argument values ``args``.

    The one door for evaluating a single node (the interpreter, and tracing's
    concrete values for guards): the primitive's eager implementation, or the
    evaluator an op with sub-graphs registered in :data:`NODE_EVALUATORS`.
    """
    node = graph[nid]
    special = NODE_EVALUATORS.get(node.op)
    if special is not None:
        return special(graph, nid, args)
    return REGISTRY[node.op].impl(node.params)(*args)


def _finite(value) -> bool:
    if isinstance(value, _Failed):
        return False
    if isinstance(value, (bool, int)):
        return True
    if isinstance(value, (tuple, list)):    # a loop's results (its proj nodes are checked)
        return True
    arr = np.asarray(value)
    return arr.dtype.kind not in "fc" or bool(np.isfinite(arr).all())


def all_finite(leaves) -> bool:
    """True when every float leaf (array or scalar) is free of NaN and infinity."""
    for x in leaves:
        if type(x) is float:
            if x - x != 0.0:          # nan or +-inf, without calling NumPy
                return False
        elif isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind in "fc":
            if not np.isfinite(x).all():
                return False
    return True


def _what(value) -> str:
    """``"nan"``, ``"inf"``, ``"-inf"`` or a mix, with a count for arrays."""
    if isinstance(value, _Failed):
        return f"non-finite (Python raised {type(value.error).__name__}: {value.error})"
    arr = np.asarray(value)
    kinds = []
    if np.isnan(arr).any():
        kinds.append("nan")
    if np.isposinf(arr).any():
        kinds.append("inf")
    if np.isneginf(arr).any():
        kinds.append("-inf")
    text = "/".join(kinds) or "non-finite"
    if arr.size > 1:
        bad = int((~np.isfinite(arr)).sum())
        text += f" (in {bad} of {arr.size} elements)"
    return text


def _expr(graph, nid, depth=2, top=False) -> str:
    """Readable text of a node's expression: names where the user named
    values, small constants as literals, a couple of levels of unnamed ops."""
    node = graph[nid]
    if node.op == "input" or node.name and not top:
        return _label(graph, nid)
    if node.op == "const":
        text = const_text(node.value, graph.aval(nid))
        return text if len(text) <= 24 else "const"
    prim = REGISTRY.get(node.op)
    if depth == 0 or prim is None:
        return _label(graph, nid)
    args = [_expr(graph, a, depth - 1) for a in node.args]
    if callable(prim.numpy):
        return f"{node.op}({', '.join(args)})"
    args = [wrap(a, prim.slot_prec(k, len(args))) for k, a in enumerate(args)]
    try:
        return prim.emit(args, "out", [graph.aval(a) for a in node.args], graph.aval(nid),
                         node.params)
    except Exception:       # a template needing something we did not give it
        return f"{node.op}({', '.join(args)})"


def _range(value) -> str:
    if isinstance(value, (tuple, list)):
        return ""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.size == 0:
        return ""
    if arr.size == 1:
        return f" = {arr.reshape(()).item():.6g}"
    return f" in [{arr.min():.6g}, {arr.max():.6g}]"


_GENERIC_HINT = ("guard the input range (np.clip, np.where) or rewrite the expression in a "
                 "numerically stable form; check_finite=False lets NaN/Inf propagate as in NumPy")


def _nonfinite_hint(op) -> str:
    prim = REGISTRY.get(op)
    return (prim.nonfinite_hint if prim is not None else None) or _GENERIC_HINT


def _label(graph, nid) -> str:
    return graph.display_name(nid)


def explain_nonfinite(graph, leaves, fn_label: str) -> NonFiniteError:
    """The :class:`NonFiniteError` for a call whose results were not all finite.

    Re-evaluates ``graph`` on ``leaves`` with :func:`evaluate` and walks back
    from every non-finite output through non-finite arguments to the earliest
    node (in program order) that turned finite arguments into a NaN or an
    infinity; when that is an input, the argument itself was not finite.
    """
    values = evaluate(graph, leaves)
    finite = {nid: _finite(v) for nid, v in values.items()}
    bad_outputs = [o for o in graph.outputs if not finite[o]]
    if not bad_outputs:
        # The generated code and the interpreter disagree (different
        # association order near overflow, say); still report, by output.
        return NonFiniteError(
            f"{fn_label} returned a NaN or infinite value (check_finite=True), but evaluating "
            "its graph node by node gave finite values, so no single operation can be blamed",
            where=graph[graph.outputs[0]].where if graph.outputs else None,
            hint=_GENERIC_HINT)
    sources, seen, stack = [], set(), list(bad_outputs)
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        bad_args = [a for a in graph[nid].args if not finite[a]]
        if bad_args:
            stack.extend(bad_args)
        else:
            sources.append(nid)
    culprit = min(sources)
    node = graph[culprit]
    if (found := _inside_loop(graph, node, values, fn_label)) is not None:
        return found
    label = _label(graph, culprit)
    value = values[culprit]
    shape = type_str(node.shape, node.dtype)
    if node.op == "input":
        label = _argument_text(graph, culprit) or label
        return NonFiniteError(
            f"{fn_label}: argument {label} ({shape}) holds {_what(value)}, so the result is "
            "not finite (check_finite=True)",
            where=node.where, node=label, op="input",
            hint="NaN/Inf inputs are allowed but propagate as in NumPy; clean the input "
                 "(np.nan_to_num, masking) or call without check_finite to let them through")
    args = node.args
    ranges = "; ".join(f"{_expr(graph, a, 1)}: {type_str(graph[a].shape, graph[a].dtype)}"
                       f"{_range(values[a])}"
                       for a in args if graph[a].op != "const")
    part = ""
    if node.section == "backward":
        part = " in the backward pass (the gradient of the line below)"
    expr = _expr(graph, culprit, top=True)
    named = node.name or node.adjoint_of is not None
    msg = (f"{fn_label}: {f'{label} = ' if named else ''}{expr} became {_what(value)}{part}, "
           f"although its inputs were finite (check_finite=True)")
    if ranges:
        msg += f"; inputs: {ranges}"
    return NonFiniteError(msg, where=node.where or _grad_where(graph, node),
                          node=label, op=node.op, hint=_nonfinite_hint(node.op))


def _inside_loop(graph, node, values, fn_label):
    """For a loop's result: the error naming the step and the node of its body."""
    inner = NODE_EXPLAINERS.get(graph[node.args[0]].op) if node.op == "proj" else None
    if inner is None:
        return None
    loop = node.args[0]
    return inner(graph, loop, [values[a] for a in graph[loop].args], fn_label)


def _argument_text(graph, nid):
    """``p['W1']`` for a pytree leaf input (the user's parameter name and keys)."""
    sig = getattr(graph, "signature", None)
    if sig is None or nid not in graph.inputs:
        return None
    path = sig.leaf_paths[graph.inputs.index(nid)]
    return sig.params[path[0]].name + "".join(f"[{k!r}]" for k in path[1:])


def _grad_where(graph, node):
    primal = node.grad_of
    if primal is not None and primal in graph:
        return graph[primal].where
    return None
