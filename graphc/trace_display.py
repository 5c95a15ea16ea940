"""The trace shown for reading: ``graphc.trace(..., values=True)`` and ``Compiled.trace``.

The compiled code is made from the optimized graph, where common subexpressions
are shared, ``x * 1`` is folded and an adjoint that equals another value has no
node of its own (``d_z2`` *is* ``d_z5`` when ``z5 = z2 + z4``).  The trace printed
for a student is made from a second trace of the same function in which the
backward pass keeps one adjoint node per named value (graphc/autodiff.py's
``keep_adjoints``: ``d_z6 = 1.0``, ``d_z5 = d_z6 * z4``, ``d_z2 = d_z5``), with
only the argument aliases and dead code removed: the lecture's table, line by line.
"""
from __future__ import annotations

from .capture import Spec, gc_paused, trace_into
from .errors import OptionError
from .ir import Graph
from .passes import dce, drop_aliases
from .pytree import flatten
from .signature import from_function
from .tracing import current_trace
from .trace_table import TraceTable, valued
from .transforms import grad_body

__all__ = ["display_trace", "with_values"]


def display_trace(compiled, args, kwargs, values=False) -> TraceTable:
    """The evaluation trace of ``compiled`` (a :class:`graphc.Compiled`) for reading.

    For ``grad`` and ``value_and_grad``: the forward pass, its value, and the
    backward pass with one adjoint per named value; for other transforms their
    traced graph without argument aliases and dead code.
    """
    if hasattr(compiled, "_args"):         # jvp: (primals, tangents) -> flat arguments
        args, kwargs = compiled._args(*args, **kwargs), {}
    kind = compiled._kind
    if kind in ("grad", "value_and_grad"):
        name = f"graphc.{kind}({compiled.__wrapped__.__name__})" \
            if hasattr(compiled, "__wrapped__") else f"graphc.{kind}"
        inner = grad_body(compiled._fn, compiled._argnums, compiled._has_aux, True, name)

        def body(a, k):
            current_trace().keep_adjoints = True
            return inner(a, k)
    else:
        body = compiled._body()
    sig_fn = compiled._signature_fn(args)
    with gc_paused():
        g = trace_into(sig_fn, list(args), dict(kwargs), body)
    kept = {n for n in g if g[n].op == "identity" and g[n].section == "backward"
            and g[n].adjoint_of is not None}
    drop_aliases(g, keep=kept)
    dce(g)
    if values:
        return with_values(g, sig_fn, args, kwargs)
    return TraceTable.of(g, None)


def with_values(graph: Graph, fn, args, kwargs) -> TraceTable:
    """``graph`` (traced from ``fn(*args, **kwargs)``) with the value of every node."""
    _params, vals = from_function(fn, args, kwargs)
    leaves = flatten(tuple(vals))[0]
    if any(isinstance(x, Spec) for x in leaves):
        raise OptionError("values=True needs example values, but the arguments hold "
                          "graphc.Spec placeholders", hint="pass arrays of the shapes the "
                          "Specs describe, or leave values=True out")
    if len(leaves) != len(graph.inputs):
        leaves = leaves + [graph[n].value for n in graph.inputs[len(leaves):]]
    return valued(graph, leaves)
