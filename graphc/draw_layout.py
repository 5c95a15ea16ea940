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
           "order_sections", "emit_clusters", "esc", "esc_label", "esc_lines", "cluster_id",
           "collapsed_scopes", "matching_scope", "group", "FAMILY_COLORS"]

RECOMPUTE_COLOR = "#7c3aed"     # graphc.checkpoint's recomputed nodes (draw.py) and their legend cell
FAMILY_COLORS = {
    "input": "#fde68a", "parameter": "#fbbf24", "const": "#f3f4f6", "output": "#86efac",
    "elementwise": "#bfdbfe", "reduce": "#c7d2fe", "shape": "#e5e7eb", "linalg": "#fca5a5",
    "index": "#ddd6fe", "nn": "#a7f3d0", "conv": "#f9a8d4", "random": "#fed7aa",
    "guard": "#fecaca",
}
BACKWARD_EDGE = "#dc2626"
SAVED_EDGE = "#9ca3af"
SEED = "seed"
LARGE = 300           # drawings larger than this get cheaper layout settings and proxies

# Control characters (NUL above all, which ends a C string inside dot) are shown
# as their Unicode "control picture" (NUL -> U+2400 ␀): visible, and never DOT syntax.
_CONTROL_PICTURES = {c: 0x2400 + c for c in range(0x20)} | {0x7F: 0x2421}

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
    if "recomputed" in families:        # graphc.checkpoint's recomputed forward nodes
        cells.append(f'<td cellpadding="3"><font color="{RECOMPUTE_COLOR}">▭ recomputed (checkpoint)</font>'
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


def esc(text: str) -> str:
    return str(text).translate(_CONTROL_PICTURES).replace("\\", "\\\\").replace('"', '\\"') \
        .replace("<", "‹").replace(">", "›").replace("{", "(").replace("}", ")").replace("|", "¦")


def esc_lines(text):
    """Text of several lines as one DOT escString (``\\n`` between the lines)."""
    return "\\n".join(esc(line) for line in str(text).split("\n"))


def esc_label(label):
    # keep our own "\n" line breaks, escape everything else
    return "\\n".join(esc(part) for part in label.split("\\n"))


def cluster_id(name):
    """A DOT-safe id for ``name``, distinct for distinct names.

    Names that are already safe keep their id; any other gets a short hash of the
    exact name, so scopes "layer 1", "layer_1" and "layer.1" stay three clusters.
    """
    import hashlib
    import re
    safe = re.sub(r"[^0-9A-Za-z_]", "_", name)
    if safe == name:
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}_{digest}"


def collapsed_scopes(g, visible, collapse):
    if not collapse:
        return set()
    scopes = {g[n].scope for n in visible} - {None}
    tops = {s.split("/")[0] for s in scopes}
    if collapse is True:
        return tops
    if isinstance(collapse, str):
        collapse = [collapse]
    return {c for c in collapse if c in scopes or c in tops}


def matching_scope(scope, collapsed):
    if scope is None:
        return None
    parts = scope.split("/")
    for i in range(1, len(parts) + 1):
        if "/".join(parts[:i]) in collapsed:
            return "/".join(parts[:i])
    return None


def group(box_of):
    out = {}
    for n, b in box_of.items():
        out.setdefault(b, []).append(n)
    return out


def emit_clusters(dot, d, legend):
    """The sections and scopes; with ``legend``, a one-row legend under the title."""
    if legend:
        dot.attr(label=legend_label(d.families, FAMILY_COLORS, d.show_backward,
                                    title=esc(d.g.fn_name)))
    emit_sections(dot, d)


def emit_sections(dot, d):
    by_section: dict = {}
    for (section, scope), nodes in d.clusters.items():
        by_section.setdefault(section, {}).setdefault(scope, []).extend(nodes)
    for section in sorted(by_section, key=lambda s: s != "forward"):
        if not d.show_backward:
            emit_scopes(dot, section, by_section[section])
            continue
        # scopes nest inside their section's cluster
        with dot.subgraph(name=f"cluster_{section}") as c:
            c.attr(label=section, style="rounded", fontsize="12", labelloc="t", peripheries="1",
                   color="#dc2626" if section == "backward" else "#2563eb")
            emit_scopes(c, section, by_section[section])


def emit_scopes(target, section, items):
    for scope, nodes in sorted(items.items(), key=lambda kv: kv[0] or ""):
        if scope is None:
            for nid, label, attrs in nodes:
                target.node(nid, label, **attrs)
            continue
        with target.subgraph(name=cluster_id(f"cluster_{section}_{scope}")) as c:
            c.attr(label=esc(scope), style="rounded,dashed", color="#9ca3af", fontsize="12",
                   labelloc="t", peripheries="1")
            for nid, label, attrs in nodes:
                c.node(nid, label, **attrs)
