"""The evaluation trace as a table: one row per value, with its value and its adjoint.

``graphc.trace(f, *args, values=True)`` and ``graphc.grad(f).trace(*args, values=True)``
return a :class:`TraceTable`: a :class:`graphc.Graph` that also holds the value of
every node for those arguments.  Printed, it is the evaluation trace with a value
column (the lecture's table: forward values, then the backward pass's adjoints);
:meth:`TraceTable.rows` gives the same table as data, for reports and notebooks.

The lines are the trace's own (:mod:`graphc.codegen`): forward values one per line,
and in the backward pass one line per adjoint (``d_z5 = d_z6 * z4``) with the
unnamed helper values inlined, under ``# grad of:`` headers naming the forward line.
"""
from __future__ import annotations

import html
from typing import NamedTuple

import numpy as np

from .codegen import Emitter, _forward_text, _head_label, _reserve_inputs
from .interpret import evaluate
from .ir import SUBGRAPH_OPS, Graph
from .primitive import type_str
from .source_comments import source_text, where_short, with_comment
from .trace_loops import LOOP_HEAD, first_step_values

__all__ = ["TraceRow", "TraceTable", "summarize", "trace_rows", "table_text"]

_VALUE_COL = 60          # the value column starts here or after the longest line


class TraceRow(NamedTuple):
    """One value of an evaluation trace (a row of the lecture's table).

    ``value`` and ``adjoint_value`` are summaries (:func:`summarize`), empty when
    the trace holds no values; ``adjoint`` is the name of the row whose value is
    this value's adjoint (``d_z1`` for ``z1``), empty when there is none.

    Examples
    --------
    >>> import graphc
    >>> row = graphc.trace(lambda x: x * 3.0, 2.0, values=True).rows()[-1]
    >>> row.code, row.value
    ('mul = x * 3.0', '6.0')
    """
    node: int
    name: str
    op: str
    section: str          # "input", "forward" or "backward"
    type: str             # "f64[2,3]"
    where: str            # "path/file.py:LINE" of the user's line, or ""
    source: str           # that line of the user's file, or ""
    code: str             # the trace's statement (lines joined by newlines)
    header: str           # "grad of: z5 = z2 + z4" on the first row of a backward block
    value: str
    adjoint: str
    adjoint_value: str


def summarize(value) -> str:
    """A short text for a value: scalars in full, arrays as a few numbers with min and max.

    Examples
    --------
    >>> import numpy as np
    >>> summarize(np.float64(154.31901669702975)), summarize(np.array([1.0, 2.5]))
    ('154.31901669702975', '[1, 2.5]')
    >>> summarize(np.arange(10.0))
    '[0, 1, 2, ...] min 0 max 9'
    """
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return f"({len(value)} values)"
    if type(value).__name__ == "_Failed":        # interpret.evaluate's placeholder
        return f"(not computed: {value.error})"
    arr = np.asarray(value)
    if arr.ndim == 0:
        return str(arr[()]) if arr.dtype.kind != "b" else str(bool(arr))
    if arr.size == 0:
        return "[]"
    if arr.size <= 6:
        flat = ", ".join(_number(x) for x in arr.ravel())
        return f"[{flat}]"
    head = ", ".join(_number(x) for x in arr.ravel()[:3])
    if arr.dtype.kind == "b":
        return f"[{head}, ...] {int(arr.sum())} of {arr.size} true"
    text = f"[{head}, ...]"
    if arr.dtype.kind in "fc":
        bad = ~np.isfinite(arr)
        if bad.any():
            text += f" {int(bad.sum())} not finite"
            arr = arr[~bad]
            if arr.size == 0:
                return text
    if arr.dtype.kind == "c":
        return text
    return f"{text} min {_number(arr.min())} max {_number(arr.max())}"


def _number(x) -> str:
    x = np.asarray(x)[()]
    if isinstance(x, (np.floating, float)):
        return f"{float(x):.4g}"
    if isinstance(x, np.bool_):
        return str(bool(x))
    return str(x)


class _TableEmitter(Emitter):
    """The trace's emitter: every forward value on its own line; in the backward pass
    adjoints on their own lines and unnamed helpers inlined into them."""

    def __init__(self, graph):
        super().__init__(graph, inline=False)
        self.records = []          # (loop body, {line: node}), as the loop's lines are written

    def record_body(self, graph, names):
        self.records.append((graph, names))

    def can_inline(self, nid, node):
        if node.section != "backward" or node.adjoint_of is not None:
            return False
        self.inline = True
        try:
            return super().can_inline(nid, node)
        finally:
            self.inline = False


def _adjoints(g, named) -> dict:
    """{forward node: its adjoint's node}, among the nodes that have a line."""
    out = {}
    for nid in g.order():
        primal = g[nid].adjoint_of
        if primal is not None and nid in named and g[nid].section == "backward":
            out[primal] = nid
    return out


def trace_rows(graph: Graph, values: dict | None = None) -> list:
    """The rows of ``graph``'s evaluation trace (inputs first), as :class:`TraceRow`.

    ``values`` ({node: value}, as :func:`graphc.interpret.evaluate` gives) fills the
    value columns.  ``header`` starts each ``# grad of:`` block of the backward pass.
    """
    return _rows_and_return(graph, values)[0]


def _header(g, em, nid, label) -> str:
    """``grad of: z5 = z2 + z4``; ``seed: dz6/dz6`` for the backward pass's seed."""
    node = g[nid]
    if node.grad_of is None and node.adjoint_of is not None and node.op == "identity" \
            and g[node.args[0]].op == "const":
        primal = em.name.get(node.adjoint_of, "out")
        return f"seed: d{primal}/d{primal}"
    return f"{label}: {source_text(node.where) or _forward_text(em, node.grad_of)}"


def _rows_and_return(g, values):
    """The rows, the text of the return line's values, and {loop node: its body's records}."""
    em = _TableEmitter(g)
    _reserve_inputs(g, em, g.signature)
    for n in g.inputs:
        em.name.setdefault(n, em.ns.new(g.display_name(n)))
    body, loops = [], {}
    for nid, lines in em.body():
        body.append((nid, lines))
        if em.records:             # a loop: its body's statements (graphc/trace_loops.py)
            loops[nid], em.records = em.records, []
    adj = _adjoints(g, em.name)
    val = (lambda n: summarize(values.get(n))) if values is not None else (lambda n: "")
    rows, last_block = [], None
    items = [(n, [em.name[n]]) for n in g.inputs] + body
    for nid, lines in items:
        node = g[nid]
        section = "input" if nid in g.inputs else (node.section or "forward")
        header = ""
        if section in ("backward", "tangent"):
            label = _head_label(g, node)
            block = (label, node.where or node.grad_of)
            if block != last_block:
                header = _header(g, em, nid, label)
                last_block = block
        else:
            last_block = None
        a = adj.get(nid)
        rows.append(TraceRow(
            nid, em.name.get(nid, node.op), node.op, section, type_str(node.shape, node.dtype),
            node.where or "", source_text(node.where) if node.where else "", "\n".join(lines),
            header, "" if node.op == "guard" else val(nid),
            em.name.get(a, "") if a is not None else "", val(a) if a is not None else ""))
    returns = ", ".join(em.ref(o) for o in g.outputs)
    return rows, returns, loops


def table_text(graph: Graph, values: dict | None = None) -> str:
    """The evaluation trace of ``graph``, with a value column when ``values`` is given."""
    rows, returns, loops = _rows_and_return(graph, values)
    loop_values = {n: first_step_values(graph, n, recs, values)
                   for n, recs in loops.items()} if values is not None else {}
    ins = ", ".join(f"{r.name}: {r.type}" for r in rows if r.section == "input")
    out = [f"{graph.fn_name}({ins}):"]
    lines = []                      # (text, value or None); None: no value column
    for r in rows:
        if r.section == "input":
            if values is not None:
                lines.append(("    " + with_comment(r.name, f"{r.type}  argument"), r.value))
            continue
        if r.header:
            if r.section == "backward":
                lines.append(("", None))
            lines.append((f"    # {r.header}", None))
        if not r.code:                # a loop's results: its own lines name them
            continue
        code = r.code.split("\n")
        if r.op in SUBGRAPH_OPS:      # a loop or branch comments its own lines
            note, step = loop_values.get(r.node) or ("", {})
            for line in code:
                if note and LOOP_HEAD.match(line):
                    lines.append((f"    {note}", None))
                    note = ""
                v = step.get(line)
                lines.append(("    " + line, summarize(v) if v is not None else None))
            continue
        comment = r.type if r.section != "forward" else \
            "  ".join(t for t in (r.type, where_short(r.where)) if t)
        if r.op == "guard":
            comment = where_short(r.where) or "guard"
        for line in code[:-1]:
            lines.append(("    " + line, None))
        lines.append(("    " + with_comment(code[-1], comment), r.value if values is not None
                      else None))
    col = max([_VALUE_COL] + [len(t) + 2 for t, v in lines if v])
    for text, v in lines:
        out.append(f"{text.ljust(col)}= {v}" if v else text)
    out.append(f"    return {returns}")
    return "\n".join(out)


class TraceTable(Graph):
    """A :class:`graphc.Graph` printed as the evaluation-trace table, with values.

    Returned by ``graphc.trace(f, *args, values=True)`` and by
    ``graphc.grad(f).trace(*args)`` (with ``values=True``: the value of every
    node for those arguments).  ``print`` shows the evaluation trace (with a
    value column when it has values); :meth:`rows` gives it as data;
    :meth:`value` looks one value up by its name in the trace.

    Attributes
    ----------
    values : dict or None
        ``{node id: value}`` for every node (NumPy scalars and arrays), or None.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(w1, w2):
    ...     z1 = w1 * w2
    ...     z2 = np.sin(z1)
    ...     return z2
    >>> table = graphc.grad(f).trace(0.5, 2.0, values=True)
    >>> float(table.value("z1")), float(table.value("d_z1"))     # d_z1 = cos(z1)
    (1.0, 0.5403023058681398)
    >>> [(r.name, r.value) for r in table.rows() if r.section == "backward"][:2]
    [('d_z2', '1.0'), ('d_z1', '0.5403023058681398')]
    """

    values: dict | None

    @classmethod
    def of(cls, graph: Graph, values: dict | None) -> "TraceTable":
        out = cls.__new__(cls)
        out.__dict__.update(graph.__dict__)
        out.values = values
        return out

    def rows(self) -> list:
        """The table as a list of :class:`TraceRow` (inputs, forward, backward)."""
        return trace_rows(self, self.values)

    def value(self, name: str):
        """The value of the row named ``name`` (``"z1"``, ``"d_z5"``)."""
        if self.values is None:
            raise KeyError(f"this trace of {self.fn_name} holds no values: trace it with "
                           "values=True")
        for r in self.rows():
            if r.name == name:
                return self.values[r.node]
        raise KeyError(f"no value named {name!r} in the trace of {self.fn_name}")

    def __str__(self) -> str:
        return table_text(self, self.values)

    def __repr__(self) -> str:
        # At a prompt graphc.trace(f, ..., values=True) shows its table (API §11), not the
        # one-line Graph summary a table without values keeps
        return str(self) if self.values is not None else super().__repr__()

    def _repr_html_(self) -> str:
        return rows_html(self.rows())

    _repr_svg_ = None     # a notebook shows the table (graphc.render draws the graph)


def rows_html(rows) -> str:
    """An HTML table of trace rows (notebooks; no scripts, no styles from outside)."""
    esc = html.escape
    td = '<td style="text-align:left">'
    out = ['<table class="graphc-trace"><tr>' + "".join(
        f'<th style="text-align:left">{h}</th>'
        for h in ("name", "computed as", "type", "line", "value", "adjoint")) + "</tr>"]
    for r in rows:
        if r.header:
            out.append(f'<tr>{td[:-1]} colspan="6"><i># {esc(r.header)}</i></td></tr>')
        adj = f"{esc(r.adjoint)} = {esc(r.adjoint_value)}" if r.adjoint else ""
        out.append(f"<tr>{td}<b>{esc(r.name)}</b></td>{td}<code>{esc(r.code)}</code></td>"
                   f"{td}{esc(r.type)}</td>{td}{esc(where_short(r.where))}</td>"
                   f"{td}<code>{esc(r.value)}</code></td>{td}<code>{adj}</code></td></tr>")
    out.append("</table>")
    return "".join(out)


def valued(graph: Graph, leaves) -> TraceTable:
    """``graph`` with its values for the input ``leaves`` (in ``graph.inputs`` order)."""
    return TraceTable.of(graph, evaluate(graph, list(leaves)))
