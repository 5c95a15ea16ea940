"""Values of the lines inside a loop's body, for the evaluation-trace table.

``graphc.trace(f, *args, values=True)`` prints a value beside every line; inside a
``scan`` / ``fori_loop`` / ``while_loop`` body a line runs once per step, so the
table shows the values of the loop's *first step* (``t = 0``; for a reversed loop,
as the backward pass runs them, its first step ``t = n - 1``), under a comment
saying so.  They are computed by running the body once with the interpreter
(:func:`graphc.interpret.evaluate`) on the loop's initial carries, the first
slice of its scanned inputs and its captured values.  A loop that runs no step
(``length`` 0, a ``while`` condition false at entry) shows no body values.
"""
from __future__ import annotations

import re

from .control.scan import arg_slices
from .control.while_ import while_slices
from .interpret import evaluate

__all__ = ["first_step_values", "LOOP_HEAD"]

LOOP_HEAD = re.compile(r"(for|while) ")        # the loop's own line


def first_step_values(g, nid, records, values) -> tuple:
    """``(note, {line: value})``: the values of the statements of the loop ``nid``'s
    body at its first step (by the line that defines each), and the comment that
    says which step that is.

    ``records`` are the ``(body graph, {line: node})`` pairs the emitter wrote for
    this loop (graphc/control/emit.py ``subgraph_lines``); ``values`` the outer
    graph's values.  ``("", {})`` when the loop ran no step or a value is missing.
    """
    node = g[nid]
    args = [values.get(a) for a in node.args]
    if any(a is None or type(a).__name__ == "_Failed" for a in args):
        return "", {}
    try:
        note = "# values in the loop body: its first step"
        if node.op == "scan":
            leaves, t = _scan_leaves(node, args)
            runs = [(graph, leaves) for graph, _ in records] if leaves is not None else []
            note += f" (t = {t})" if t is not None else ""
        elif node.op == "while":
            runs = _while_runs(node, args, records)
        else:
            return "", {}
        out = {}
        for (graph, leaves), (_, names) in zip(runs, records):
            vals = evaluate(graph, leaves)
            out.update({line: vals[n] for line, n in names.items() if n in vals})
        return (note if out else ""), out
    except Exception:              # a table without body values rather than no table
        return "", {}


def _scan_leaves(node, args):
    """``(leaves, t)``: the body's inputs at the first step (carries, the first xs slice,
    captured values) and its index (None for a list tape); ``(None, None)``: no step."""
    p = node.params
    si, sx, so, lpos = arg_slices(node)
    carry, xs, outer = list(args[si]), list(args[sx]), list(args[so])
    if p["xs_list"]:
        if not xs or not len(xs[0]):
            return None, None
        x, t = list(xs[0][-1]), None      # the tape is walked from its end
    else:
        n = p["length"] if p["length"] is not None else int(args[lpos])
        if n <= 0:
            return None, None
        t = n - 1 if p["reverse"] else 0
        x = [v[t] for v in xs]
    return carry + x + outer, t


def _while_runs(node, args, records):
    """``(graph, leaves)`` of the condition and, when it holds at entry, of the body."""
    cond, body = node.bodies
    sc, soc, sob = while_slices(node)
    carry = list(args[sc])
    runs = []
    for graph, _ in records:
        if graph is cond:
            leaves = carry + list(args[soc])
            runs.append((graph, leaves))
            if not bool(evaluate(cond, leaves)[cond.outputs[0]]):
                break
        else:
            runs.append((graph, carry + list(args[sob])))
    return runs
