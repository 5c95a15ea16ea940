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

from dataclasses import dataclass, field

from .codegen_guards import guard_text
from .draw_boxes import const_array_text, layer_text
from .draw_layout import legend_label, order_sections, seed_roots, seed_target, tooltip, value_text
from .draw_options import DRAW_OPTIONS
from .draw_options import check_options
from .errors import OptionError
from .ir import Graph, install_product
from .naming import Namespace
from .ir import SUBGRAPH_OPS
from .primitive import REGISTRY, type_str
from .source_comments import where_short

__all__ = ["to_dot", "FAMILY_COLORS", "DRAW_OPTIONS", "INSTALL_HINT"]

FAMILY_COLORS = {
    "input": "#fde68a", "parameter": "#fbbf24", "const": "#f3f4f6", "output": "#86efac",
    "elementwise": "#bfdbfe", "reduce": "#c7d2fe", "shape": "#e5e7eb", "linalg": "#fca5a5",
    "index": "#ddd6fe", "nn": "#a7f3d0", "conv": "#f9a8d4", "random": "#fed7aa",
    "guard": "#fecaca",
}
_BACKWARD_EDGE = "#dc2626"
_LARGE = 300
_SAVED_EDGE = "#9ca3af"
_SEED = "seed"
# Drawings of more nodes than this draw reshapes/transposes as edges (plumbing=None).
_PLUMBING_AUTO = 80
_PLUMBING_OPS = {"reshape", "transpose", "contiguous", "expand_dims", "squeeze", "astype",
                 "identity", "broadcast_to"}

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
    return const_array_text(value)


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
    values: dict | None = None
    code: object = None
    seed: int | None = None
    has_seed: bool = False
    through: dict = field(default_factory=dict)
    box_of: dict = field(default_factory=dict)
    clusters: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    families: set = field(default_factory=set)

    def add(self, key, item):
        self.clusters.setdefault(key, []).append(item)

    def drawn(self, nid):
        """The drawn node standing for ``nid`` (its source, for a reshape drawn as an edge)."""
        while nid in self.through:
            nid = self.through[nid]
        return nid

    def section(self, nid):
        """``"backward"`` or ``"forward"``: the section ``nid`` is drawn in."""
        return "backward" if self.g[nid].section == "backward" else "forward"

    def drawn_backward(self, nid):
        return self.show_backward and self.g[nid].section == "backward"

    def cluster_key(self, nid):
        node = self.g[nid]
        return ("backward" if self.drawn_backward(nid) else "forward", node.scope)


def to_dot(graph, *, backward=None, collapse=None, flops=False, legend=True, rankdir="TB",
           dpi=None, size=None, values=None, plumbing=None, tooltips=True):
    """Draw ``graph`` as a :class:`graphviz.Digraph`.

    Parameters
    ----------
    backward : bool, optional
        Draw the backward part in its own cluster (default: when there is one).
        ``False`` draws the forward part only.
    collapse : bool or iterable of str, optional
        Draw each scope (or the named ones) as a single box named by what the
        layer computes (``conv 3×3, 1→8 · relu``), with its named inputs and outputs.
    flops : bool
        Add each operation's FLOP count to its label.
    legend : bool
        A one-row legend under the graph.
    rankdir : str
        ``"TB"`` (default), ``"LR"``, ``"BT"`` or ``"RL"``.
    dpi : number, optional
        Resolution of PNG output (Graphviz's ``dpi``).
    size : (width, height) in inches, optional
        Scale the drawing to fit this box (``(13.33, 7.5)``: a 16:9 slide).
    values : mapping, optional
        ``{node id: value}`` (``graphc.render(..., values=True)`` computes it):
        scalars and small arrays are written into labels, every value into tooltips.
    plumbing : bool, optional
        Draw reshapes, transposes and copies as nodes (default: in drawings of at
        most 80 nodes; larger ones draw them as edges).
    tooltips : bool
        Give each node a tooltip (its user line, generated-code line, type, value).
    """
    check_options(collapse=collapse, flops=flops, legend=legend, rankdir=rankdir,
                  backward=backward, dpi=dpi, size=size, plumbing=plumbing)
    if values is not None and not hasattr(values, "get"):
        raise OptionError(f"to_dot(values={values!r:.40}): values takes the node values "
                          "(a mapping), which only a call with example arguments has",
                          hint="use graphc.render(fn, *args, values=True)")
    d = _drawing(graph, backward, collapse, flops, plumbing)
    d.values = values
    d.code = _code_map(graph) if tooltips else None
    for nid in d.visible:
        if nid not in d.box_of:
            d.add(d.cluster_key(nid), _node_item(d, nid))
    for box, members in _group(d.box_of).items():
        d.add(("backward" if box.endswith("__bwd") else "forward", None), _box_item(d, box, members))
    _add_edges(d)
    _add_seed(d)            # its edges after the forward ones: dot's first ordering follows them
    _pin_floating(d)
    dot = _digraph(graph, rankdir, dpi, size)
    _emit_clusters(dot, d, legend)
    for src, dst, attrs in d.edges:
        dot.edge(src, dst, **attrs)
    for nid in d.visible:           # a loop's or branch's bodies: one cluster each
        if graph[nid].bodies:
            SUBGRAPH_OPS[graph[nid].op].draw(dot, graph, nid, _esc)
    if d.has_seed:
        order_sections(dot, _forward_anchor(d), _SEED)
    return dot


def _code_map(graph):
    """Where each node is computed in the generated code (None if it cannot be generated)."""
    from .code_lines import code_map
    try:
        return code_map(graph)
    except Exception:   # a drawing never fails for its tooltips
        return None


def _forward_anchor(d):
    """The first drawn forward node (or its box): the left end of the section order."""
    for n in d.visible:
        if d.section(n) == "forward":
            return d.box_of.get(n, str(n))
    return None


def _differentiated(g):
    """Inputs whose gradient the graph returns (through the reshapes a layer made of them)."""
    out = set()
    for o in g.outputs:
        p = g[o].adjoint_of if g[o].section == "backward" else None
        while p is not None and g[p].op in _PLUMBING_OPS and g[p].args:
            p = g[p].args[0]
        if p is not None and g[p].op == "input":
            out.add(p)
    return out


def _plumbing(g, visible):
    """Reshapes, transposes and copies of one drawn value: drawn as an edge, not a node."""
    outputs = set(g.outputs)
    out = {}
    for n in visible:
        node = g[n]
        args = [a for a in node.args if not _scalar_const(g, a)]
        if node.op in _PLUMBING_OPS and len(args) == 1 and n not in outputs:
            out[n] = args[0]
    return out


def _drawing(g, backward, collapse, flops, plumbing=None) -> _Drawing:
    has_backward = any(g[n].section == "backward" for n in g)
    show_backward = has_backward if backward is None else (backward and has_backward)
    visible = [n for n in g.order()
               if (show_backward or g[n].section != "backward") and not _scalar_const(g, n)]
    through = {}
    if (plumbing is False or plumbing is None and len(visible) > _PLUMBING_AUTO) and not collapse:
        through = _plumbing(g, visible)
        visible = [n for n in visible if n not in through]
    d = _Drawing(g=g, show_backward=show_backward, flops=flops, names=_names(g),
                 visible=visible, vis=set(visible), outputs=set(g.outputs),
                 params={g[n].adjoint_of for n in g} | _differentiated(g),
                 costs=g.cost().by_node if flops else {},
                 collapsed=_collapsed_scopes(g, visible, collapse), through=through)
    for n in visible:
        top = _matching_scope(g[n].scope, d.collapsed)
        if top is None and g[n].op == "const":
            top = _const_scope(g, n, d)     # a constant only one layer reads: inside its box
        if top is not None:
            # no ":" in ids: dot reads "a:b" as node a, port b
            d.box_of[n] = "scope__" + _cluster_id(top) + ("__bwd" if d.section(n) == "backward" else "")
    if show_backward:
        has_seed, d.seed = seed_target(g)
        d.seed = d.seed if has_seed else None
        d.has_seed = has_seed
    return d


def _const_scope(g, n, d):
    scopes = {_matching_scope(g[u].scope, d.collapsed) for u in g.users(n)
              if u in d.vis and d.section(u) == d.section(n)}
    if len(scopes) == 1 and None not in scopes:
        return scopes.pop()
    return None


def _add_seed(d):
    """The backward seed ``d_<loss> = 1``, above the backward values that start from it."""
    if not d.has_seed:
        return
    g = d.g
    out = d.names.get(d.seed) if d.seed is not None else g.fn_name
    label = f"d_{out} = 1\\nseed"
    tip = f"the seed of the backward pass: d{out}/d{out} = 1"
    d.add(("backward", None), (_SEED, _esc_label(label),
                               {"shape": "ellipse", "style": "filled,bold", "fillcolor": "#fecaca",
                                "color": _BACKWARD_EDGE, "id": "seed", "tooltip": _esc(tip)}))
    d.families.add("seed")
    seen = set()
    for n in seed_roots(g, d.visible):
        dst = d.box_of.get(n, str(n))
        if dst not in seen:
            seen.add(dst)
            d.edges.append((_SEED, dst, {"color": _BACKWARD_EDGE}))


def _pin_floating(d):
    """A backward node computed from forward values only (``cos``, a relu mask) would
    float to the top of the backward pass; an invisible edge from the adjoint computed
    just before it keeps it beside the adjoints that use it."""
    g = d.g
    if not d.has_seed or d.collapsed or not any(g[n].scope for n in d.visible
                                                 if d.drawn_backward(n)):
        return      # only scope clusters suffer from it (they would stand side by side)
    fed = {dst for src, dst, attrs in d.edges if attrs.get("color") == _BACKWARD_EDGE}
    roots = set(seed_roots(g, d.visible))
    last = None
    for n in d.visible:
        if not d.drawn_backward(n):
            continue
        if str(n) not in fed and n not in roots and last is not None:
            d.edges.append((str(last), str(n), {"style": "invis"}))
        if g[n].adjoint_of is not None or str(n) in fed:
            last = n


def _digraph(g, rankdir, dpi=None, size=None):
    import graphviz
    graph_attr = {"rankdir": rankdir, "fontname": "Helvetica", "label": _esc(f"{g.fn_name}"),
                  "labelloc": "t", "fontsize": "16", "newrank": "true", "nodesep": "0.3",
                  "ranksep": "0.35"}
    if dpi is not None:
        graph_attr["dpi"] = str(float(dpi))
    if size is not None:
        w, h = size
        graph_attr["size"] = f"{float(w):g},{float(h):g}!"      # "!": scale up to fit, too
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
        if node.adjoint_of is not None and d.names.get(node.adjoint_of):
            # an adjoint constant folding made (the seed through a mean): named as one
            label = f"d_{d.names[node.adjoint_of]} = {label}"
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
    if d.values is not None and nid in d.values and node.op not in ("const", "guard"):
        shown = value_text(d.values[nid], short=True)
        if shown:
            label += f"\\n= {shown}"
    if nid in d.outputs:
        attrs.update(peripheries="2", penwidth="1.5")
    if node.section == "backward":
        attrs["style"] = attrs.get("style", "filled") + ",dashed"
    attrs["id"] = f"v{nid}"
    attrs["tooltip"] = _esc_lines(tooltip(node, typ, d.code, nid, d.values))
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
    """One collapsed scope's box: the scope, what it computes, its named inputs and outputs."""
    g = d.g
    bwd = box.endswith("__bwd")
    ins, outs = _box_values(d, box, members)
    scope = next(_matching_scope(g[m].scope, d.collapsed) for m in members
                 if _matching_scope(g[m].scope, d.collapsed) is not None or m == members[-1])
    forward = [n for n in d.visible if d.section(n) == "forward"
               and d.box_of.get(n) == box.removesuffix("__bwd")] if bwd else ()
    lines = [f"{'∂ ' if bwd else ''}{scope}", layer_text(g, members, bwd, forward)]
    lines += [f"in: {t}" for t in ins] + [f"out: {t}" for t in outs]
    wheres = sorted({where_short(g[m].where) for m in members if g[m].where})
    attrs = {"fillcolor": "#fef3c7" if not bwd else "#fee2e2", "shape": "box3d",
             "id": box, "tooltip": _esc_lines("\n".join([lines[1]] + wheres[:6]))}
    if bwd:
        attrs["style"] = "filled,dashed"
    return box, _esc_label("\\n".join(lines)), attrs


def _box_values(d, box, members):
    """``name type`` of the values going into and out of ``box``, in program order.

    Only values crossing the box's border within its own section count: saved
    values read by the backward pass show as dashed edges instead.
    """
    g, box_of = d.g, d.box_of
    section = g[members[0]].section or "forward"

    def crosses(n):
        return box_of.get(n) != box and (g[n].section or "forward") == section

    def text(n):
        name = d.names.get(n) or _const_text(g[n])
        return f"{name} {type_str(g[n].shape, g[n].dtype)}"
    ins = [a for m in sorted(members) for a in g[m].args if crosses(a) and not _scalar_const(g, a)]
    outs = [m for m in sorted(members)
            if any(crosses(u) for u in g.users(m) if u in d.vis) or m in d.outputs]
    return [text(n) for n in dict.fromkeys(ins)], [text(n) for n in dict.fromkeys(outs)]


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
    # many saved values (or layer boxes): a small "reads x" box beside each reader, no tangle
    n_saved = sum(1 for n in d.visible if d.drawn_backward(n)
                  for a in map(d.drawn, g[n].args) if a in d.vis and g[a].section != "backward")
    proxies = large or bool(d.collapsed) or n_saved > 12
    fanout = {n: sum(1 for u in g.users(n) if u in d.vis) for n in d.visible}
    seen = set()
    reads: dict = {}
    for nid in d.visible:
        dst = box_of.get(nid, str(nid))
        for a in map(d.drawn, g[nid].args):
            src = box_of.get(a, str(a))
            if a not in d.vis or src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            saved = d.drawn_backward(nid) and g[a].section != "backward"
            if saved and proxies:
                reads.setdefault(dst, (nid, []))[1].append(d.names.get(a) or _const_text(g[a]))
            elif large and fanout[a] > 3 and a not in box_of:
                _add_proxy_edge(d, nid, a, src, dst, saved)
            else:
                d.edges.append((src, dst, _edge_style(d, nid, saved)))
    _add_reads(d, reads)


def _add_reads(d, reads):
    """One small "reads x, y" box above each backward reader of saved forward values."""
    for dst, (nid, names) in reads.items():
        names = list(dict.fromkeys(names))
        rows = [", ".join(names[i:i + 3]) for i in range(0, len(names), 3)]
        label = "\\n".join(["reads " + rows[0]] + rows[1:])
        proxy = f"r_{dst}"
        d.add(("backward", None),           # outside scope clusters: they stay compact
              (proxy, _esc_label(label), {"shape": "box", "style": "dashed,rounded",
                                          "fontsize": "8", "fillcolor": "#ffffff",
                                          "color": _SAVED_EDGE, "fontcolor": "#6b7280"}))
        d.edges.append((proxy, dst, {"color": _SAVED_EDGE, "style": "dashed", "arrowsize": "0.4"}))


def _edge_style(d, nid, saved):
    if saved:
        return {"color": _SAVED_EDGE, "style": "dashed", "constraint": "false",
                "penwidth": "0.7", "arrowsize": "0.4"}
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

def _emit_clusters(dot, d, legend):
    """The sections and scopes; with ``legend``, a one-row legend under the title."""
    if legend:
        dot.attr(label=legend_label(d.families, FAMILY_COLORS, d.show_backward,
                                    title=_esc(d.g.fn_name)))
    _emit_sections(dot, d)


def _emit_sections(dot, d):
    by_section: dict = {}
    for (section, scope), nodes in d.clusters.items():
        by_section.setdefault(section, {}).setdefault(scope, []).extend(nodes)
    for section in sorted(by_section, key=lambda s: s != "forward"):
        if not d.show_backward:
            _emit_scopes(dot, section, by_section[section])
            continue
        # scopes nest inside their section's cluster
        with dot.subgraph(name=f"cluster_{section}") as c:
            c.attr(label=section, style="rounded", fontsize="12", labelloc="t", peripheries="1",
                   color="#dc2626" if section == "backward" else "#2563eb")
            _emit_scopes(c, section, by_section[section])


def _emit_scopes(target, section, items):
    for scope, nodes in sorted(items.items(), key=lambda kv: kv[0] or ""):
        if scope is None:
            for nid, label, attrs in nodes:
                target.node(nid, label, **attrs)
            continue
        with target.subgraph(name=_cluster_id(f"cluster_{section}_{scope}")) as c:
            c.attr(label=_esc(scope), style="rounded,dashed", color="#9ca3af", fontsize="12",
                   labelloc="t", peripheries="1")
            for nid, label, attrs in nodes:
                c.node(nid, label, **attrs)


def _esc_lines(text):
    """Text of several lines as one DOT escString (``\\n`` between the lines)."""
    return "\\n".join(_esc(line) for line in str(text).split("\n"))


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


install_product("to_dot", to_dot)

