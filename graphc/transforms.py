"""Transforms traced inside the open trace: the reverse-mode gradient.

:func:`grad_body` is the body :func:`graphc.capture.trace_into` runs for
``graphc.grad`` and ``graphc.value_and_grad``: it marks the differentiated
arguments, runs the user's function, checks the loss and appends the backward
pass (:func:`graphc.autodiff.backward`) to the same graph.  Forward mode and
batching will live here too.
"""
from __future__ import annotations

import inspect

from .argnums import normalize_argnums
from .autodiff import backward
from .capture import def_where, live
from .errors import GradError
from .ops.shape import identity
from .pytree import flatten, unflatten
from .tracing import Tracer, current_trace


def _static_leaves(tdef, path=()):
    """``(path, value)`` of every static leaf (Python int/bool/str) in a pytree."""
    if tdef.kind == "static":
        return [(path, tdef.static)]
    keys = tdef.keys if tdef.kind == "dict" else range(len(tdef.children))
    return [hit for k, c in zip(keys, tdef.children) for hit in _static_leaves(c, path + (k,))]


def _positional_name(fn, i):
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    if i < len(params) and params[i].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                              inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return params[i].name
    return f"args[{i}]"


def _check_no_static_leaves(fn, name, i, tdef):
    """A differentiated argument must be traced floats: a static Python int/bool/str
    (or None in its place) would silently come back as its own "gradient"."""
    hits = [((), None)] if tdef.kind == "none" else _static_leaves(tdef)
    if not hits:
        return
    path, value = hits[0]
    label = _positional_name(fn, i) + "".join(f"[{k!r}]" for k in path)
    kind = "None" if value is None else f"the Python {type(value).__name__} {value!r:.40}"
    if isinstance(value, int):       # bool too
        try:
            fix = f"pass {float(value)!r} (a float) to differentiate it"
        except OverflowError:
            fix = "pass a float to differentiate it"
    else:
        fix = "pass a float or a floating NumPy array to differentiate it"
    raise GradError(
        f"{name} was asked for the gradient of argument {i} ({label}), which is {kind}: "
        "Python ints, bools, strings and None are static (baked into the graph) and have no "
        "gradient",
        hint=f"{fix}, or " + (f"leave argument {i} out of argnums" if not path else
                              f"pass {label} as a separate argument outside argnums"))


def grad_body(fn, argnums, has_aux, with_value, name):
    """The traced body of ``grad``/``value_and_grad`` of ``fn`` (see :func:`graphc.capture.trace_into`).

    ``name`` (``graphc.grad(f)``) starts every error message.
    """
    def body(call_args, call_kwargs):
        trace = current_trace()
        nums = normalize_argnums(argnums, len(call_args))
        wrt_trees = [_mark_wrt(trace, fn, name, call_args, i) for i in nums]
        start = trace.graph._next
        # the inputs' nodes, taken before the call: a write into an argument
        # (x[0] = 0, graphc.updates) points the user's object at a new node
        wrt = [trace.tracer(x.node) for _, ls in wrt_trees for x in ls]
        trace.wrt.update(x.node for x in wrt)   # float() of what depends on them: refused
        outer = getattr(trace, "shared_transposes", None)
        trace.shared_transposes = None    # (a nested grad: a later backward pass reads it)
        try:
            out, aux = _loss(trace, fn, name, live(fn)(*call_args, **call_kwargs), has_aux)
            if getattr(trace, "top_body", None) is body:    # nothing differentiates it again
                trace.shared_transposes = {}                  # (graphc/ops/linalg.py's _mT)
            cts = backward(out, wrt, start=start)
        finally:
            trace.shared_transposes = outer
        grads, k = [], 0
        for tdef, ls in wrt_trees:
            grads.append(unflatten(tdef, cts[k:k + len(ls)]))
            k += len(ls)
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        if with_value:
            return ((out, aux), g) if has_aux else (out, g)
        return (g, aux) if has_aux else g
    return body


def _mark_wrt(trace, fn, name, call_args, i):
    """Replace argument ``i`` by fresh identities of its leaves, the values differentiated.

    Returns ``(treedef, leaves)``; the identities keep the inputs themselves
    out of the backward pass's bookkeeping.
    """
    leaves, tdef, _ = flatten(call_args[i])
    _check_no_static_leaves(fn, name, i, tdef)
    lifted = []
    for x in leaves:
        x = trace.lift(x) if not isinstance(x, Tracer) else x
        if x.dtype.kind != "f":
            raise GradError(
                f"{name} was asked for the gradient of argument {i}, which has "
                f"integer or boolean dtype ({x.aval.short()})",
                hint="gradients exist only for floating arguments: pass floats "
                     "(e.g. 1.0 or x.astype(np.float64)), or leave this argument out "
                     "of argnums")
        lifted.append(identity(x))
    call_args[i] = unflatten(tdef, lifted)
    return tdef, lifted


def _loss(trace, fn, name, out, has_aux):
    """``(loss tracer, aux)`` from the function's result; the loss must be a real scalar."""
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise GradError(f"{name}: with has_aux=True the function must return "
                            "(scalar, aux), a pair", where=def_where(fn))
        out, aux = out
    _check_loss_value(out, name, has_aux, fn)
    out = trace.lift(out)
    out_where = trace.graph[out.node].where or def_where(fn)
    if out.shape != ():
        raise GradError(f"{name} needs a function that returns a scalar (shape ()), but it "
                        f"returned {out.aval.short()}",
                        where=out_where,
                        hint="reduce the output first, e.g. loss.sum() or loss.mean(), or "
                             "use graphc.compile for a non-scalar function")
    if out.dtype.kind != "f":
        raise GradError(f"{name} needs a real floating output, but the function returned "
                        f"{out.aval.short()}", where=out_where,
                        hint="make the output a float, e.g. .astype(np.float64)")
    return out, aux


def _check_loss_value(out, name, has_aux, fn):
    """A loss that is None, a pair or another container: say what to change."""
    if out is None:
        got = "None"
    elif isinstance(out, (tuple, list, dict)):
        got = f"a {type(out).__name__} of {len(out)} value{'s' if len(out) != 1 else ''}"
    else:
        return
    if has_aux:
        raise GradError(f"{name}: with has_aux=True the function must return (loss, aux) with "
                        f"a scalar loss, but the loss is {got}", where=def_where(fn),
                        hint="make the first item of the returned pair the scalar loss")
    if out is None:
        hint = ("return the loss, e.g. `return np.sum((y - t) ** 2)` (a function without a "
                "return statement returns None)")
    elif isinstance(out, (tuple, list)) and len(out) == 2:
        hint = "pass has_aux=True to return (loss, aux), as in JAX, or return the loss alone"
    else:
        hint = ("return the scalar loss alone (sum or mean the terms), or pass has_aux=True "
                "and return (loss, aux)")
    raise GradError(f"{name}: the function returned {got}, not a scalar loss",
                    where=def_where(fn), hint=hint)
