"""The parts of a drawing around its nodes: legend, seed, layout, tooltips, values.

* The legend is one compact row (an HTML-like label under the graph), never a
  column beside it.
* The backward seed (``d_loss = 1``) is a node at the top of the backward
  cluster, with edges to the backward values that start from it.
* Forward left, backward right at every size: an invisible root node with
  ``ordering=out`` and edges to a forward source, then to the seed.
* Tooltips (SVG ``<title>``) give a node's user line, generated-code line,
  type and, with values, its value.
"""
from __future__ import annotations

import numpy as np

from .source_comments import source_text, where_short

__all__ = ["legend_label", "value_text", "tooltip", "seed_roots", "seed_target",
           "order_sections"]

FAMILY_ORDER = ["input", "parameter", "const", "elementwise", "reduce", "shape", "linalg",
                "index", "nn", "conv", "random", "guard"]
_SEED_FILL = "#fecaca"


def _html(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def legend_label(families, colors, show_backward, title="") -> str:
    """The graph's title over one legend row: a cell per drawn family, then output,
    and with a backward pass, seed / backward edge / saved value."""
    cells = []
    for fam in FAMILY_ORDER:
        if fam in families:
            cells.append(f'<td bgcolor="{colors[fam]}" border="1" cellpadding="3">{fam}</td>')
    cells.append('<td border="3" cellpadding="3">output</td>')
    if show_backward:
        cells.append(f'<td bgcolor="{_SEED_FILL}" border="1" cellpadding="3">seed</td>')
        cells.append('<td cellpadding="3"><font color="#dc2626">── backward (d_…)</font></td>')
        cells.append('<td cellpadding="3"><font color="#9ca3af">- - reads a forward value</font>'
                     '</td>')
    row = ('<table border="0" cellspacing="4" cellborder="0"><tr>'
           + "".join(cells) + "</tr></table>")
    row = f'<font point-size="10">{row}</font>'
    return (f'<<table border="0" cellborder="0"><tr><td><font point-size="16">{_html(title)}'
            f'</font></td></tr><tr><td>{row}</td></tr></table>>')


def value_text(value, short=False) -> str:
    """A value for a label (``short``) or a tooltip: scalars in full, arrays summarized."""
    try:
        arr = np.asarray(value)
        if arr.dtype == object:
            return type(value).__name__
        if arr.ndim == 0:
            v = arr.item()
            return f"{v:.6g}" if isinstance(v, float) else str(v)
        if arr.size <= 4:
            return np.array2string(arr, precision=4, separator=", ").replace("\n", "")
        if short:
            return ""
        if arr.dtype.kind in "fiu":
            return (f"mean {arr.mean():.4g}, min {arr.min():.4g}, max {arr.max():.4g}, "
                    f"first {arr.reshape(-1)[0]:.4g}")
        return f"{arr.dtype} array"
    except Exception:  # pragma: no cover - a drawing never fails on a value
        return "?"


def tooltip(node, type_text, code, nid, values) -> str:
    """The node's tooltip: its user line, generated-code line, type and value."""
    lines = []
    if node.where:
        src = source_text(node.where)
        lines.append(f"{where_short(node.where)}: {src.strip()}" if src else where_short(node.where))
    if code is not None and nid in code.line_of:
        lines.append(f"code line {code.line_of[nid]}: {code.line_text(nid)}")
    lines.append(type_text)
    if values is not None and nid in values:
        lines.append("value: " + value_text(values[nid]))
    return "\n".join(lines)


def seed_target(g):
    """``(has_seed, loss)``: whether a backward pass is drawn, and the forward output
    it starts from (None when the graph does not return it: ``grad``, not
    ``value_and_grad``)."""
    starts = [g[n].grad_of for n in g if g[n].section == "backward" and g[n].grad_of is not None
              and g[n].grad_of in g and g[g[n].grad_of].section != "backward"]
    if not starts:
        return False, None
    first = max(starts)
    outs = [o for o in g.outputs if o >= first and g[o].section != "backward"
            and g[o].shape == () and g[o].dtype.kind == "f"]
    return True, (min(outs) if outs else None)


def seed_roots(g, visible):
    """Drawn backward nodes that start from the seed: adjoints (or values made from
    adjoints) none of whose arguments (but a folded scalar) carries the seed."""
    vis = set(visible)
    carries = {}
    roots = []
    for n in g.order():
        node = g[n]
        if node.section != "backward":
            continue
        blocking = [a for a in node.args if carries.get(a)
                    and not (g[a].op == "const" and g[a].shape == ())]
        carries[n] = node.adjoint_of is not None or any(carries.get(a) for a in node.args)
        if carries[n] and not blocking and n in vis:
            roots.append(n)
    return roots


def order_sections(dot, forward_anchor, seed):
    """Keep the forward cluster left of the backward one: an invisible root whose
    out-edges (``ordering=out``) go to a forward source, then to the seed."""
    if forward_anchor is None or seed is None:
        return
    dot.node("order_root", "", style="invis", shape="point", width="0", height="0",
             ordering="out")
    dot.edge("order_root", forward_anchor, style="invis")
    dot.edge("order_root", seed, style="invis")
