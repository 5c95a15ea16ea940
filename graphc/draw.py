"""Graph -> Graphviz: the forward graph, and the backward graph beside it.

Nodes are labelled with the user's name, the operation (a math symbol where
one reads better) and the type (``f32[64,6,24,24]``).  Inputs, parameters,
constants, intermediates and outputs are drawn distinctly and operations are
coloured by family from one fixed map.  Backward nodes sit in their own
cluster with red edges; dashed grey edges show the forward values the
backward pass reads.  Scopes (``with graphc.scope("conv1"):``) become
clusters, or single boxes with ``collapse=``.
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess
from dataclasses import dataclass, field

from ._files import check_path, check_target, write_atomic
from .codegen_guards import guard_text
from .draw_options import DRAW_OPTIONS
from .draw_options import check_options
from .errors import OptionError, RenderError
from .ir import Graph, install_product
from .naming import Namespace
from .ir import SUBGRAPH_OPS
from .primitive import REGISTRY, type_str
from .source_comments import where_short

__all__ = ["to_dot", "render_graph", "FAMILY_COLORS", "DRAW_OPTIONS"]

FAMILY_COLORS = {
    "input": "#fde68a", "parameter": "#fbbf24", "const": "#f3f4f6", "output": "#86efac",
    "elementwise": "#bfdbfe", "reduce": "#c7d2fe", "shape": "#e5e7eb", "linalg": "#fca5a5",
    "index": "#ddd6fe", "nn": "#a7f3d0", "conv": "#f9a8d4", "random": "#fed7aa",
    "guard": "#fecaca",
}
_BACKWARD_EDGE = "#dc2626"
_LARGE = 300
_SAVED_EDGE = "#9ca3af"
_RECOMPUTE = {"color": "#7c3aed", "penwidth": "2"}   # a checkpoint's recomputed forward node

INSTALL_HINT = ("install Graphviz's `dot` program: `sudo apt-get install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`; "
                "`make demo` does it for you when run as root. DOT text (.dot/.gv) needs no dot program.")


# Control characters (NUL above all, which ends a C string inside dot) are shown
# as their Unicode "control picture" (NUL -> U+2400 ␀): visible, and never DOT syntax.
_CONTROL_PICTURES = {c: 0x2400 + c for c in range(0x20)} | {0x7F: 0x2421}


def _esc(text: str) -> str:
    return str(text).translate(_CONTROL_PICTURES).replace("\\", "\\\\").replace('"', '\\"') \
        .replace("<", "‹").replace(">", "›").replace("{", "(").replace("}", ")").replace("|", "¦")


def _op_label(node) -> str:
    prim = REGISTRY.get(node.op)
    if prim is None and node.op in SUBGRAPH_OPS:      # a loop or branch: "scan × 1000"
        return SUBGRAPH_OPS[node.op].label(node)
    return prim.label_text(node.params) if prim is not None else node.op


def _kind(g, nid, params):
    node = g[nid]
    if node.op == "input":
        return "parameter" if nid in params else "input"
    if node.op == "const":
        return "const"
    prim = REGISTRY.get(node.op)
    return prim.family if prim else "elementwise"


def _names(g):
    """Each node's drawn name: ``Graph.display_name`` made unique; constants show their value."""
    ns = Namespace()
    names = {}
    for nid in g:
        names[nid] = None if g[nid].op == "const" else ns.new(g.display_name(nid, names))
    return names


def _scalar_const(g, nid):
    node = g[nid]
    return node.op == "const" and node.shape == ()


def _const_text(node):
    value = node.value
    try:
        import numpy as np
        if np.ndim(value) == 0:
            v = value.item() if hasattr(value, "item") else value
            return f"{v:.4g}" if isinstance(v, float) else str(v)
    except Exception:  # pragma: no cover - drawing must never fail on a constant
        pass
    return "const"


@dataclass
class _Drawing:
    """What one drawing knows about its graph, and the DOT items it has collected.

    ``visible`` lists the drawn nodes in program order (``vis`` is the same as a
    set); ``params`` holds every node that has an adjoint (inputs among them
    are drawn as parameters); ``box_of`` maps each node inside a collapsed
    scope to the id of that scope's box; ``clusters`` maps ``(section, scope)``
    to ``(id, label, attrs)`` items in the order they are added.
    """
    g: Graph
    show_backward: bool
    flops: bool
    names: dict
    visible: list
    vis: set
    outputs: set
    params: set
    costs: dict
    collapsed: set
    box_of: dict = field(default_factory=dict)
    clusters: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    families: set = field(default_factory=set)

    def add(self, key, item):
        self.clusters.setdefault(key, []).append(item)

    def section(self, nid):
        """``"backward"`` or ``"forward"``: the section ``nid`` is drawn in."""
        return "backward" if self.g[nid].section == "backward" else "forward"

    def drawn_backward(self, nid):
        return self.show_backward and self.g[nid].section == "backward"

    def cluster_key(self, nid):
        node = self.g[nid]
        return ("backward" if self.drawn_backward(nid) else "forward", node.scope)


def to_dot(graph, *, backward=None, collapse=None, flops=False, legend=True, rankdir="TB"):
    """Draw ``graph`` as a :class:`graphviz.Digraph`.

    Parameters
    ----------
    backward : bool, optional
        Draw the backward part in its own cluster (default: when there is one).
        ``False`` draws the forward part only.
    collapse : bool or iterable of str, optional
        Draw each scope (or the named ones) as a single box with its input and
        output shapes.
    flops : bool
        Add each operation's FLOP count to its label.
    """
    check_options(collapse=collapse, flops=flops, legend=legend, rankdir=rankdir,
                   backward=backward)
    d = _drawing(graph, backward, collapse, flops)
    for nid in d.visible:
        if nid not in d.box_of:
            d.add(d.cluster_key(nid), _node_item(d, nid))
    for box, members in _group(d.box_of).items():
        d.add(("backward" if box.endswith("__bwd") else "forward", None), _box_item(d, box, members))
    _add_edges(d)
    dot = _digraph(graph, rankdir)
    _emit_clusters(dot, d)
    for src, dst, attrs in d.edges:
        dot.edge(src, dst, **attrs)
    for nid in d.visible:           # a loop's or branch's bodies: one cluster each
        if graph[nid].bodies:
            SUBGRAPH_OPS[graph[nid].op].draw(dot, graph, nid, _esc)
    if legend:
        _legend(dot, d.families, d.show_backward)
    return dot


def _drawing(g, backward, collapse, flops) -> _Drawing:
    has_backward = any(g[n].section == "backward" for n in g)
    show_backward = has_backward if backward is None else (backward and has_backward)
    visible = [n for n in g.order()
               if (show_backward or g[n].section != "backward") and not _scalar_const(g, n)]
    d = _Drawing(g=g, show_backward=show_backward, flops=flops, names=_names(g),
                 visible=visible, vis=set(visible), outputs=set(g.outputs),
                 params={g[n].adjoint_of for n in g},
                 costs=g.cost().by_node if flops else {},
                 collapsed=_collapsed_scopes(g, visible, collapse))
    for n in visible:
        top = _matching_scope(g[n].scope, d.collapsed)
        if top is not None:
            # no ":" in ids: dot reads "a:b" as node a, port b
            d.box_of[n] = "scope__" + _cluster_id(top) + ("__bwd" if d.section(n) == "backward" else "")
    return d


def _digraph(g, rankdir):
    import graphviz
    graph_attr = {"rankdir": rankdir, "fontname": "Helvetica", "label": _esc(f"{g.fn_name}"),
                  "labelloc": "t", "fontsize": "16"}
    if len(g) > _LARGE:
        # dot's network-simplex and crossing minimization are superlinear: cap
        # their iterations so thousands of nodes lay out in seconds.
        graph_attr.update(nslimit="1", nslimit1="1", mclimit="0.2", searchsize="10",
                          splines="line", remincross="false")
    return graphviz.Digraph(name=_esc(g.fn_name), graph_attr=graph_attr,
                            node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled",
                                       "shape": "box"},
                            edge_attr={"arrowsize": "0.6"})


# -- one node --------------------------------------------------------------------------

def _node_item(d, nid):
    """``(id, label, attrs)`` of one drawn node: its shape, colour and label."""
    g, node = d.g, d.g[nid]
    kind = _kind(g, nid, d.params)
    d.families.add(kind)
    attrs = {"fillcolor": FAMILY_COLORS.get(kind, "#ffffff")}
    typ = type_str(node.shape, node.dtype)
    if node.op == "input":
        label = f"{d.names[nid]}\\n{typ}"
        attrs.update(shape="box", style="filled,rounded,bold")
    elif node.op == "const":
        label = _const_text(node) + (f"\\n{typ}" if node.shape != () else "")
        attrs.update(shape="plaintext", style="filled", fontsize="9")
    elif node.op == "guard":              # a decision the trace took: a diamond
        label = f"{guard_text(g, nid)}\\n{where_short(node.where) or 'guard'}"
        attrs.update(shape="diamond", fontsize="9")
    else:
        label = f"{d.names[nid]} = {_op_text(g, node)}\\n{typ}"
        if d.flops and d.costs.get(nid):
            label += f"\\n{d.costs[nid]:,} FLOPs"
        prim = REGISTRY.get(node.op)
        attrs["shape"] = "ellipse" if prim is not None and prim.elementwise else \
            "box3d" if node.bodies else "box"
    if nid in d.outputs:
        attrs.update(peripheries="2", penwidth="1.5")
    if node.section == "backward":
        attrs["style"] = attrs.get("style", "filled") + ",dashed"
    if node.recompute:
        attrs.update(_RECOMPUTE)
        d.families.add("recomputed")
    return str(nid), _esc_label(label), attrs


def _op_text(g, node):
    """The operation's label, with its scalar constant arguments written in."""
    op = _op_label(node)
    if not any(_scalar_const(g, a) for a in node.args):
        return op
    parts = [_const_text(g[a]) if _scalar_const(g, a) else "·" for a in node.args]
    prim = REGISTRY.get(node.op)
    if len(parts) == 2 and prim is not None and prim.prec < 100:
        return f"{parts[0]} {op} {parts[1]}"        # 1 − ·, · ^ 2, 2 × ·
    return f"{op}({', '.join(parts)})"              # max(·, 0.5)


# -- collapsed scopes --------------------------------------------------------------------

def _box_item(d, box, members):
    """One collapsed scope's box, with the shapes going in and out."""
    g = d.g
    bwd = box.endswith("__bwd")
    ins, outs = _box_shapes(d, box, members)
    scope = _matching_scope(g[members[0]].scope, d.collapsed)
    label = (f"{'∂ ' if bwd else ''}{scope}\\n{len(members)} ops\\n"
             f"in: {', '.join(ins) or '-'}\\nout: {', '.join(outs) or '-'}")
    attrs = {"fillcolor": "#fef3c7" if not bwd else "#fee2e2", "shape": "box3d"}
    return box, _esc_label(label), attrs


def _box_shapes(d, box, members):
    """Sorted types going into and out of ``box``.

    Only values crossing the box's border within its own section count: saved
    values read by the backward pass show as dashed edges instead.
    """
    g, box_of = d.g, d.box_of
    section = g[members[0]].section or "forward"

    def crosses(n):
        return box_of.get(n) != box and (g[n].section or "forward") == section
    ins = {type_str(g[a].shape, g[a].dtype) for m in members for a in g[m].args
           if crosses(a) and not _scalar_const(g, a)}
    outs = {type_str(g[m].shape, g[m].dtype) for m in members
            if any(crosses(u) for u in g.users(m) if u in d.vis) or m in d.outputs}
    return sorted(ins), sorted(outs)


# -- edges -------------------------------------------------------------------------------

def _add_edges(d):
    """Forward, backward and saved-value edges, one per (source, destination) pair.

    In large drawings a value used far away (a saved forward value read by the
    backward pass, a parameter used by every layer) gets a small proxy node
    beside each consumer instead of one long edge: long edges make dot's layout
    quadratic in the graph size.
    """
    g, box_of = d.g, d.box_of
    large = len(d.visible) > _LARGE
    fanout = {n: sum(1 for u in g.users(n) if u in d.vis) for n in d.visible}
    seen = set()
    for nid in d.visible:
        dst = box_of.get(nid, str(nid))
        for a in g[nid].args:
            src = box_of.get(a, str(a))
            if a not in d.vis or src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            saved = d.drawn_backward(nid) and g[a].section != "backward"
            if large and (saved or fanout[a] > 3) and a not in box_of:
                _add_proxy_edge(d, nid, a, src, dst, saved)
            else:
                d.edges.append((src, dst, _edge_style(d, nid, saved)))


def _edge_style(d, nid, saved):
    if saved:
        return {"color": _SAVED_EDGE, "style": "dashed", "constraint": "false"}
    if d.drawn_backward(nid):
        return {"color": _BACKWARD_EDGE}
    return {}


def _add_proxy_edge(d, nid, a, src, dst, saved):
    proxy = f"p{src}_{dst}"
    d.add(d.cluster_key(nid), (proxy, _esc(d.names.get(a) or "value"),
                              {"shape": "box", "style": "dashed,rounded", "fontsize": "8",
                               "fillcolor": "#ffffff", "color": _SAVED_EDGE}))
    # a short edge: it keeps its rank constraint
    d.edges.append((proxy, dst, {"color": _SAVED_EDGE, "style": "dashed"} if saved else {}))


# -- clusters ----------------------------------------------------------------------------

def _emit_clusters(dot, d):
    """The forward and backward sections (when both are drawn), with scopes inside."""
    by_section: dict = {}
    for (section, scope), nodes in d.clusters.items():
        by_section.setdefault(section, {}).setdefault(scope, []).extend(nodes)
    for section in sorted(by_section, key=lambda s: s != "forward"):
        if not d.show_backward:
            _emit_scopes(dot, section, by_section[section])
            continue
        # scopes nest inside their section's cluster
        with dot.subgraph(name=f"cluster_{section}") as c:
            c.attr(label=section, style="rounded", fontsize="12",
                   color="#dc2626" if section == "backward" else "#2563eb")
            _emit_scopes(c, section, by_section[section])


def _emit_scopes(target, section, items):
    for scope, nodes in sorted(items.items(), key=lambda kv: kv[0] or ""):
        if scope is None:
            for nid, label, attrs in nodes:
                target.node(nid, label, **attrs)
            continue
        with target.subgraph(name=_cluster_id(f"cluster_{section}_{scope}")) as c:
            c.attr(label=_esc(scope), style="rounded,dashed", color="#9ca3af", fontsize="12")
            for nid, label, attrs in nodes:
                c.node(nid, label, **attrs)


def _esc_label(label):
    # keep our own "\n" line breaks, escape everything else
    return "\\n".join(_esc(part) for part in label.split("\\n"))


def _cluster_id(name):
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


def _collapsed_scopes(g, visible, collapse):
    if not collapse:
        return set()
    scopes = {g[n].scope for n in visible} - {None}
    tops = {s.split("/")[0] for s in scopes}
    if collapse is True:
        return tops
    if isinstance(collapse, str):
        collapse = [collapse]
    return {c for c in collapse if c in scopes or c in tops}


def _matching_scope(scope, collapsed):
    if scope is None:
        return None
    parts = scope.split("/")
    for i in range(1, len(parts) + 1):
        if "/".join(parts[:i]) in collapsed:
            return "/".join(parts[:i])
    return None


def _group(box_of):
    out = {}
    for n, b in box_of.items():
        out.setdefault(b, []).append(n)
    return out


def _legend(dot, families, show_backward):
    with dot.subgraph(name="cluster_legend") as c:
        c.attr(label="legend", style="rounded", color="#d1d5db", fontsize="10")
        order = ["input", "parameter", "const", "elementwise", "reduce", "shape", "linalg",
                 "index", "nn", "conv", "random"]
        prev = None
        for fam in order:
            if fam not in families:
                continue
            nid = f"legend_{fam}"
            c.node(nid, fam, fillcolor=FAMILY_COLORS[fam], fontsize="9",
                   shape="plaintext" if fam == "const" else "box")
            if prev:
                c.edge(prev, nid, style="invis")
            prev = nid
        c.node("legend_output", "output", fillcolor="#ffffff", peripheries="2", fontsize="9")
        if prev:
            c.edge(prev, "legend_output", style="invis")
        if show_backward:
            c.node("legend_bwd", "backward (∂)", fillcolor="#ffffff", style="filled,dashed", fontsize="9")
            c.edge("legend_output", "legend_bwd", style="invis")
        if "recomputed" in families:
            c.node("legend_recomputed", "recomputed (checkpoint)", fillcolor="#ffffff",
                   style="filled,dashed", fontsize="9", **_RECOMPUTE)


def dot_available() -> bool:
    return shutil.which("dot") is not None


def render_graph(graph, path, **kwargs) -> pathlib.Path:
    """Write ``graph`` to ``path``; the format comes from the suffix.

    ``.svg``, ``.png``, ``.pdf`` need Graphviz's ``dot`` program; ``.dot`` and
    ``.gv`` write DOT text and need nothing.
    """
    path = check_path(path, "graphc.render")
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png", "pdf", "dot", "gv"):
        raise OptionError(f"cannot render to {path.name}: unknown format {fmt!r}",
                          hint="use a .svg, .png, .pdf, .dot or .gv file name")
    check_options(**kwargs)
    dot = to_dot(graph, **kwargs)
    exe = None
    if fmt not in ("dot", "gv"):
        exe = shutil.which("dot")
        if exe is None:
            raise RenderError("Graphviz's `dot` program was not found on PATH, so graphc cannot "
                              f"write {path.name}", hint=INSTALL_HINT)
    # dot writes to its stdout, never to a file name it was given; the bytes then
    # go through write_atomic (a fresh O_EXCL temporary file, then a rename), so a
    # failure (dot crashing, a full disk) never leaves a half-written drawing at
    # `path`, and a link, FIFO or device at `path` is refused, never written.
    check_target(path, True, "graphc.render", RenderError)
    if exe is None:
        data = dot.source
    else:
        try:
            proc = subprocess.run([exe, f"-T{fmt}"], input=dot.source.encode(),
                                  capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RenderError(f"Graphviz's `dot` ({exe}) failed to run: {e}",
                              hint="reinstall Graphviz; " + INSTALL_HINT) from None
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode(errors="replace").strip()[:500] or "no error output"
            raise RenderError(
                f"Graphviz's `dot` ({exe}) failed on {path.name} with exit status "
                f"{proc.returncode}: {err}",
                hint="check the Graphviz installation (`dot -V`); a .dot or .gv file name "
                     "writes the DOT text without running dot")
        data = proc.stdout
    write_atomic(path, data, overwrite=True, what="graphc.render", error=RenderError)
    return path


install_product("to_dot", to_dot)


install_product("render", render_graph)
