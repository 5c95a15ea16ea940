"""``graphc.report``: one self-contained HTML page of linked views of one graph.

The page (:mod:`graphc.report_page`) shows the graph of ``value_and_grad(fn,
argnums)`` at the example arguments five ways: the drawing (SVG), the forward
and backward evaluation traces with values and adjoints, the generated code,
the SymPy proof (:func:`graphc.check`) and the cost.  All views index the same
node ids, so selecting a node, a trace row or a code line highlights that
value everywhere and shows the user's source line.
"""
from __future__ import annotations

import pathlib

from . import codegen
from ._files import check_path, check_target, write_atomic
from .capture import Spec
from .code_lines import code_map
from .drawing import _NOT_OURS, AUTO_COLLAPSE, Drawing, dot_available, graph_values
from .draw import to_dot
from .draw_layout import value_text
from .errors import GraphcError, RenderPathError
from .file_marks import graphc_wrote, mark
from .primitive import type_str
from .pytree import flatten
from .report_page import esc, page, svg_inline
from .source_comments import source_text, where_short
from .tracebacks import hidden_frames

__all__ = ["report", "Report"]


class Report:
    """A report page: ``.html`` (text), ``.save(path)``; Jupyter shows it in a frame."""

    def __init__(self, html: str, name: str):
        self.html = html
        self.name = name

    def __repr__(self):
        return f"<graphc.Report of {self.name}: {len(self.html):,} characters of HTML>"

    def _repr_html_(self):
        return (f'<iframe srcdoc="{esc(self.html)}" style="width:100%;height:720px;'
                'border:1px solid #e5e7eb"></iframe>')

    def save(self, path, overwrite=False) -> pathlib.Path:
        """Write the page to ``path``: an existing file only if graphc wrote it
        (:mod:`graphc.file_marks`) or with ``overwrite=True``."""
        path = check_path(path, "graphc.report")
        replace = overwrite is True or graphc_wrote(path, "html")
        check_target(path, replace, "graphc.report", RenderPathError, hint=_NOT_OURS)
        return write_atomic(path, mark("html", self.html), overwrite=replace,
                            what="graphc.report", error=RenderPathError, hint=_NOT_OURS)


def report(fn, *args, path=None, argnums=0, proof=True, overwrite=False, **kwargs):
    """Write one self-contained HTML page of linked views of ``fn``'s graph.

    The views: the drawing (SVG), the forward and backward evaluation traces
    with values and adjoints, the generated code of ``value_and_grad(fn,
    argnums)``, the SymPy proof (:func:`graphc.check`) and the cost.  Selecting
    a node, a trace row or a code line highlights the same value in every view
    and shows its user source line.  The page fetches nothing (inline CSS, JS
    and SVG).  A function without a scalar output is shown forward only.

    Parameters
    ----------
    fn : callable
    *args
        Example arguments (``graphc.Spec`` placeholders give no values and no proof).
    path : str or path-like, optional
        The ``.html`` file to write; ``None`` returns the :class:`Report`, which
        Jupyter displays.  An existing file is replaced only if graphc wrote it.
    overwrite : bool
        Replace ``path`` even if graphc did not write it (never a link, folder or device).
    argnums : int or tuple of int
        The differentiated arguments, as in :func:`graphc.grad`.
    proof : bool
        Run :func:`graphc.check` (SymPy) for the proof section.

    Returns
    -------
    pathlib.Path or Report

    Examples
    --------
    >>> import numpy as np, graphc, tempfile, os
    >>> def f(w1, w2):
    ...     z1 = w1 / w2
    ...     return np.sin(z1) * w2
    >>> out = graphc.report(f, 1.5, 0.5, argnums=(0, 1), proof=False,
    ...                     path=os.path.join(tempfile.mkdtemp(), "f.html"))
    >>> "d_w1" in out.read_text() and "http://" not in out.read_text()
    True
    """
    with hidden_frames():         # a user error shows the user's frames only
        return _report(fn, args, kwargs, path, argnums, proof, overwrite)


def _report(fn, args, kwargs, path, argnums, proof, overwrite):
    compiled, graph, what = _graph_of(fn, args, kwargs, argnums)
    has_data = not any(isinstance(x, Spec) for x in flatten((args, kwargs))[0])
    values = graph_values(graph, fn, args, kwargs) if has_data else {}
    code = code_map(graph, compiled.export_name())
    dot = to_dot(graph, values=values or None,
                 collapse=True if len(graph) > AUTO_COLLAPSE else None)
    svg = (svg_inline(Drawing(dot).svg()) if dot_available() else
           "<p>Graphviz's <code>dot</code> is not installed; the DOT text:</p><pre>"
           + esc(dot.source) + "</pre>")
    rows, nodes = _rows(graph, values, code, dot.node_ids)
    html = page(title=f"graphc report: {graph.fn_name}",
                subtitle=f"{what} at {_signature_text(graph)}",
                svg=svg,
                rows_forward=[r for r in rows if r["section"] != "backward"],
                rows_backward=[r for r in rows if r["section"] == "backward"],
                source=code.source,
                proof=_proof(fn, args, kwargs, argnums, proof and has_data,
                             "backward" in {r["section"] for r in rows}),
                cost=_cost(graph, nodes),
                data=_links(nodes, dot.node_ids))
    out = Report(html, graph.fn_name)
    return out if path is None else out.save(path, overwrite=overwrite)


def _graph_of(fn, args, kwargs, argnums):
    """``(compiled, graph, description)``: ``value_and_grad``'s, or ``compile``'s when
    the function has no scalar output to differentiate."""
    from .api import compile as compile_, value_and_grad
    name = getattr(fn, "__name__", "fn")
    try:
        compiled = value_and_grad(fn, argnums=argnums)
        return (compiled, compiled.graph(*args, **kwargs),
                f"graphc.value_and_grad({name}, argnums={argnums!r})")
    except GraphcError:
        compiled = compile_(fn)
        return compiled, compiled.graph(*args, **kwargs), f"graphc.compile({name})"


def _signature_text(g):
    return "(" + ", ".join(f"{g[i].name or 'arg'}: {type_str(g[i].shape, g[i].dtype)}"
                           for i in g.inputs) + ")"


def _trace_texts(g):
    """``({nid: "z1 = w1 / w2"}, {nid: name})``: the evaluation trace, one line per node."""
    em = codegen.Emitter(g, inline=False)
    codegen._reserve_inputs(g, em, g.signature)
    for n in g.inputs:
        em.name.setdefault(n, em.ns.new(g.display_name(n)))
    texts = {n: f"{em.name[n]}  (input)" for n in g.inputs}
    for nid, lines in em.body():
        lines = [line.strip() for line in lines if line.strip()]
        if not lines:       # written by another node's lines (a loop's or branch's results)
            continue
        texts[nid] = lines[0] if len(lines) == 1 else lines[0] + " …"
    return texts, em.name


def _rows(g, values, code, svg_ids):
    texts, names = _trace_texts(g)
    rows, nodes = [], {}
    for i, nid in enumerate(n for n in g.order() if n in texts):
        node = g[nid]
        value = value_text(values[nid]) if nid in values else ""
        where = where_short(node.where)
        src = (source_text(node.where) or "").strip() if node.where else ""
        section = "backward" if node.section == "backward" else "forward"
        rows.append({"nid": nid, "i": i, "text": texts[nid], "section": section,
                     "type": type_str(node.shape, node.dtype), "value": value,
                     "where": where})
        nodes[nid] = {"name": names.get(nid, str(nid)), "type": type_str(node.shape, node.dtype),
                      "value": value, "where": f"{where}: {src}" if src else where,
                      "line": code.line_of.get(nid), "svg": svg_ids.get(nid),
                      "own": nid in code.name_of}       # the variable its line assigns
    return rows, nodes


def _links(nodes, svg_ids):
    by_svg, by_line = {}, {}
    for nid, d in nodes.items():
        if d["svg"]:
            own = d["svg"] == f"v{nid}"
            lst = by_svg.setdefault(d["svg"], [])
            lst.insert(0, nid) if own else lst.append(nid)
        if d["line"]:
            by_line.setdefault(d["line"], []).append(nid)
    for nids in by_line.values():     # the value a line assigns first
        nids.sort(key=lambda n: (not nodes[n]["own"], n))
    return {"nodes": {str(k): v for k, v in nodes.items()},
            "svg": {k: [str(n) for n in v] for k, v in by_svg.items()},
            "lines": {str(k): [str(n) for n in v] for k, v in by_line.items()}}


def _proof(fn, args, kwargs, argnums, run, has_backward):
    if not has_backward:
        return "<p>No backward pass: the function does not return a scalar.</p>"
    if not run:
        return ("<p>Not run (<code>proof=False</code>, or placeholder arguments: "
                "graphc.check needs values).</p>")
    from .check import check
    try:
        rep = check(fn, *args, argnums=argnums, **kwargs)
    except GraphcError as e:
        return f'<p class="bad">graphc.check could not run: {esc(e)}</p>'
    verdict = '<p class="ok">OK</p>' if rep.ok else '<p class="bad">NOT OK</p>'
    return verdict + f"<pre>{esc(rep)}</pre>"


def _cost(g, nodes):
    c = g.cost()
    top = sorted(((f, n) for n, f in c.by_node.items() if f and n in nodes), reverse=True)[:8]
    rows = "".join(f'<tr class="row" data-nid="{n}"><td class="code">{esc(nodes[n]["name"])}</td>'
                   f"<td>{f:,}</td></tr>" for f, n in top)
    return (f"<p>forward {c.forward_flops:,} FLOPs · backward {c.backward_flops:,} FLOPs · "
            f"total {c.total_flops:,} FLOPs · {c.bytes:,} bytes of values</p>"
            f"<table><tr><th>most expensive</th><th>FLOPs</th></tr>{rows}</table>")
